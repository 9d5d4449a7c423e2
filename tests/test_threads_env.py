"""Sharing one model between threads, and running under unusual Numba settings."""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import minivit

MODELS = ["mobilevit_xxs"]


def inputs(n, size=64):
    return [np.random.default_rng(i).uniform(0, 1, (1 + i % 2, 3, size, size + 8 * i)).astype(np.float32)
            for i in range(n)]


@pytest.mark.parametrize("name", MODELS)
def test_one_model_many_threads_equals_serial(name):
    model = minivit.create_model(name)
    xs = inputs(6)
    serial = [model(x) for x in xs]
    results = [[] for _ in xs]
    errors = []
    start = threading.Barrier(len(xs))

    def work(i):
        try:
            start.wait()
            for _ in range(3):
                results[i].append(model(xs[i]))
        except Exception as e:          # surfaced below with the thread's index
            errors.append((i, e))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i, outs in enumerate(results):
        for out in outs:
            np.testing.assert_array_equal(out, serial[i], err_msg=f"thread {i} differs from the serial answer")


SCRIPT = textwrap.dedent("""
    import sys, warnings, numpy as np, minivit
    x = np.random.default_rng(3).uniform(0, 1, (2, 3, 40, 36)).astype(np.float32)
    np.save(sys.argv[1], minivit.create_model("mobilevit_xxs")(x))
""")


def run_fresh(tmp_path, **env):
    out = tmp_path / "out.npy"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.load(out), proc.stderr


def reference():
    x = np.random.default_rng(3).uniform(0, 1, (2, 3, 40, 36)).astype(np.float32)
    return minivit.create_model("mobilevit_xxs")(x)


def test_numba_disabled_gives_the_same_answer(tmp_path):
    got, _ = run_fresh(tmp_path, NUMBA_DISABLE_JIT="1")
    np.testing.assert_allclose(got, reference(), rtol=0, atol=1e-5)


def test_unwritable_cache_dir_still_works(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should be")
    got, stderr = run_fresh(tmp_path, NUMBA_CACHE_DIR=str(blocker / "numba"))
    np.testing.assert_allclose(got, reference(), rtol=0, atol=1e-6)
    assert "Traceback" not in stderr


THREADS_SCRIPT = textwrap.dedent("""
    import threading, numpy as np, minivit, numba
    m = minivit.create_model("mobilevit_xxs")
    xs = [np.random.default_rng(i).uniform(0, 1, (1 + i % 3, 3, 64, 64 + 8 * i)).astype(np.float32)
          for i in range(4)]
    serial = [m(x) for x in xs]
    assert numba.threading_layer() == "workqueue", numba.threading_layer()
    res = [[] for _ in xs]
    def run(i):
        for _ in range(4):
            res[i].append(m(xs[i]))
    ts = [threading.Thread(target=run, args=(i,)) for i in range(len(xs))]
    [t.start() for t in ts]; [t.join() for t in ts]
    assert all(np.array_equal(r, s) for rs, s in zip(res, serial) for r in rs)
    print("ok")
""")


def test_threads_under_the_workqueue_layer_do_not_abort():
    """Numba's fallback layer aborts on concurrent launches; minivit serialises passes there."""
    proc = subprocess.run([sys.executable, "-c", THREADS_SCRIPT], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NUMBA_THREADING_LAYER": "workqueue"})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


@pytest.mark.parametrize("B,per", [(8, 4), (7, 3), (3, 5), (4, 1)])
def test_split_batch_hands_out_groups_in_order(B, per):
    import numba
    from minivit.threads import get_num_threads, set_num_threads, split_batch
    seen, lock = [], threading.Lock()

    def fn(a):
        with lock:
            seen.append((a[:, 0].astype(int).tolist(), get_num_threads()))
        return a * 2
    x = np.arange(B, dtype=np.float32)[:, None]
    before = get_num_threads()
    pool = min(2, numba.config.NUMBA_NUM_THREADS)
    set_num_threads(pool)
    try:
        out = split_batch(fn, x, per)
    finally:
        set_num_threads(before)
    np.testing.assert_array_equal(out, x * 2)
    groups = [list(range(i, min(B, i + per))) for i in range(0, B, per)]
    assert sorted(g for g, _ in seen) == groups
    # each group on one thread; a single group runs on the caller with the whole pool
    assert {n for _, n in seen} == ({1} if len(groups) > 1 else {pool})
