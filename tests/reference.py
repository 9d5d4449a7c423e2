"""Shared test helpers: the official reference data, synthetic weights, and a
comparison that says which tensor differs and by how much."""
from pathlib import Path

import numpy as np

import minivit
from synth import make_inputs, read_keys_file, synth_state_dict

DATA = Path(__file__).parent / "data"


def official_weights(name):
    """The deterministic synthetic weights in the official (cvnets) naming."""
    return synth_state_dict(read_keys_file(DATA / "keys" / f"{name}.txt"))


def synthetic_model(name, state_dict=None):
    """minivit's `name` with synthetic weights in the official (cvnets) naming: `state_dict`, else
    official_weights(name). Synthetic weights are RGB, so no channel flip, whatever the variant's
    checkpoints default to."""
    sd = official_weights(name) if state_dict is None else state_dict
    return minivit.create_model(name, weights=minivit.convert_state_dict(sd, name, "cvnets",
                                                                          checkpoint_channels="rgb"))


def official_input():
    return make_inputs()["256"]


def assert_close(name, mine, ref, atol, rtol=0.0):
    """assert_allclose with a message naming the tensor, the worst element and the max difference."""
    mine, ref = np.asarray(mine, np.float64), np.asarray(ref, np.float64)
    assert mine.shape == ref.shape, f"{name}: shape {mine.shape} != reference {ref.shape}"
    diff = np.abs(mine - ref)
    bound = atol + rtol * np.abs(ref)
    if not (diff <= bound).all():
        i = np.unravel_index(np.argmax(diff - bound), diff.shape)
        raise AssertionError(f"{name}: max |diff| {diff.max():.3g} (atol {atol:g}); worst at {i}: "
                             f"{mine[i]:.7g} vs {ref[i]:.7g}; {(diff > bound).sum()} of {diff.size} off")


def check_against_official(ref, key, mine, atol):
    """The reference README's harness: whole arrays, subsamples, and mean/std."""
    mine = np.asarray(mine, dtype=np.float64)
    checked = False
    if key in ref.files:
        assert_close(key, mine, ref[key], atol)
        checked = True
    elif key + "_idx" in ref.files:
        assert mine.shape == tuple(ref[key + "_shape"]), f"{key}: shape {mine.shape}"
        assert_close(key + " (subsample)", mine.reshape(-1)[ref[key + "_idx"]], ref[key + "_val"], atol)
        checked = True
    if key + "_mean" in ref.files:
        assert_close(key + " mean/std", [mine.mean(), mine.std()],
                     [ref[key + "_mean"], ref[key + "_std"]], 1e-6)
        checked = True
    assert checked, f"{key} is not in the reference file"
