"""Property-based fuzzing of convert_state_dict: whatever is done to a valid
checkpoint (keys dropped, renamed or added, shapes, dtypes and values changed),
the converter either returns weights that load, or raises WeightsError.
Derandomized, so CI runs the same 200 examples every time."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minivit
from reference import official_weights

OFFICIAL = official_weights("mobilevit_xxs")
KEYS = list(OFFICIAL)
MODEL = minivit.create_model("mobilevit_xxs")

mutation = st.one_of(
    st.tuples(st.just("drop"), st.sampled_from(KEYS)),
    st.tuples(st.just("rename"), st.sampled_from(KEYS), st.text(min_size=0, max_size=12)),
    st.tuples(st.just("add"), st.text(min_size=0, max_size=40), st.integers(0, 5)),
    st.tuples(st.just("reshape"), st.sampled_from(KEYS), st.lists(st.integers(0, 5), max_size=4)),
    st.tuples(st.just("dtype"), st.sampled_from(KEYS),
              st.sampled_from(["float16", "float64", "int8", "int64", "bool", "complex64", "uint8"])),
    st.tuples(st.just("value"), st.sampled_from(KEYS), st.sampled_from([np.nan, np.inf, -np.inf, 1e30, 0.0])),
)


def apply(sd, m):
    kind, key = m[0], m[1]
    if key not in sd:
        return
    if kind == "drop":
        del sd[key]
    elif kind == "rename":
        sd[key + m[2]] = sd.pop(key)
    elif kind == "add":
        sd[m[1]] = np.zeros(m[2], np.float32)
    elif kind == "reshape":
        sd[key] = np.zeros(tuple(m[2]), np.float32)
    elif kind == "dtype":
        sd[key] = np.asarray(sd[key]).astype(m[2])
    elif kind == "value":
        a = np.array(sd[key], dtype=np.float32)
        if a.size:
            a.reshape(-1)[0] = m[2]
        sd[key] = a


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=4), st.sampled_from(["cvnets", "hf", "timm"]))
def test_converter_only_raises_weights_errors(mutations, source):
    sd = dict(OFFICIAL)
    for m in mutations:
        if m[0] == "add":
            apply(sd, ("add", m[1], m[2]))
        else:
            apply(sd, m)
    try:
        out = minivit.convert_state_dict(sd, MODEL, source)
    except minivit.WeightsError as e:
        assert str(e)
        return
    MODEL.load_state_dict(out)           # whatever passed the converter must load
    assert all(np.isfinite(v).all() for v in out.values())
