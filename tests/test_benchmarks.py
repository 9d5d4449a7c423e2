"""The benchmark's own logic (benchmarks/bench.py, report.py), on made-up numbers and fake engines:
ratios taken inside each window, the engines' order rotating between windows, the targets' thresholds,
and no timing of engines that disagree. Nothing here is timed."""
import sys
from pathlib import Path

import numpy as np
import pytest


def _import_benchmarks():
    """bench and report from benchmarks/, with sys.path as it was afterwards, so that the scripts'
    modules shadow nothing for later tests (a benchmarks/profile.py once hid the standard library's)."""
    saved = sys.path[:]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    try:
        import bench
        import report
    finally:
        sys.path[:] = saved
    return bench, report


bench, report = _import_benchmarks()


def test_ratios_are_taken_inside_each_window():
    # per window: onnxruntime / minivit = 1, 2, 1 -> median 1; the ratio of the medians would be 2
    row = bench.summarise({"minivit": [0.001, 0.002, 0.004], "onnxruntime": [0.001, 0.004, 0.004]})
    assert row["minivit"] == dict(median_ms=2.0, min_ms=1.0, max_ms=4.0)
    o = row["onnxruntime"]
    assert (o["ratio"], o["ratio_min"], o["ratio_max"]) == (1.0, 1.0, 2.0)
    assert o["median_ms"] / row["minivit"]["median_ms"] == 2.0


class FakeEngine:
    def __init__(self, name, log, out=0.0):
        self.name, self.log, self.out = name, log, out

    def run(self, x):
        self.log.append(self.name)
        return np.full((len(x), 3), self.out)

    def threads(self, n):
        pass


def test_windows_interleave_the_engines_in_rotating_order(monkeypatch):
    monkeypatch.setattr(bench, "PAUSE", 0.0)
    log = []
    engines = [FakeEngine(n, log) for n in ("minivit", "torch", "onnxruntime")]
    out = bench.windows(engines, np.zeros((1, 3, 4, 4), np.float32), 3)
    assert {k: len(v) for k, v in out.items()} == {"minivit": 3, "torch": 3, "onnxruntime": 3}
    timed = log[3 * 3:]                     # after each engine's 2 warm-up runs and 1 sizing run
    reps = len(timed) // 9                  # runs per engine per window (the same for all: instant runs)
    firsts = [timed[w * 3 * reps] for w in range(3)]
    assert firsts == ["minivit", "torch", "onnxruntime"]
    for w in range(3):                      # each window runs every engine, one after the other
        window = timed[w * 3 * reps:(w + 1) * 3 * reps]
        assert [window[i * reps] for i in range(3)] == (["minivit", "torch", "onnxruntime"] * 2)[w:w + 3]


def row(model, batch, threads, torch_ratio, ort_ratio):
    return dict(model=model, batch=batch, threads=threads, torch=dict(ratio=torch_ratio),
                onnxruntime=dict(ratio=ort_ratio))


def test_target_thresholds():
    checks = report.target_checks([
        row("mobilevit_xxs", 1, 2, 1.6, 0.8),       # headline model: PyTorch 1.6, exactly met
        row("mobilevit_xs", 1, 2, 1.59, 0.79),      # other model: PyTorch 1.3
        row("mobilevitv2_050", 1, 2, 1.59, 0.8),    # headline model, just under
        row("mobilevit_xs", 1, 1, 0.5, 0.8),        # one thread: no PyTorch target
        row("mobilevit_xs", 8, 2, 0.5, 0.996),      # batch 8: ONNX Runtime / minivit >= 1.0
        row("mobilevit_xs", 8, 1, 0.5, 1.0),
    ], bench.HEADLINE)
    got = [(what.split(": ")[1], value, met) for what, value, met in checks]
    assert got == [
        ("PyTorch / minivit >= 1.6", "1.60", True), ("ONNX Runtime / minivit >= 0.8", "0.80", True),
        ("PyTorch / minivit >= 1.3", "1.59", True), ("ONNX Runtime / minivit >= 0.8", "0.79", False),
        ("PyTorch / minivit >= 1.6", "1.59", False), ("ONNX Runtime / minivit >= 0.8", "0.80", True),
        ("ONNX Runtime / minivit >= 0.8", "0.80", True),
        ("ONNX Runtime / minivit >= 1.0", "0.996", False),      # not "1.00" beside a miss
        ("ONNX Runtime / minivit >= 1.0", "1.00", True),
    ]


def test_engines_that_disagree_are_not_timed(monkeypatch):
    log = []
    engines = [FakeEngine("minivit", log, 0.0), FakeEngine("torch", log, 0.0), FakeEngine("onnxruntime", log, 0.01)]
    monkeypatch.setattr(bench.E, "build_all", lambda name, thread_counts: engines)
    with pytest.raises(SystemExit, match="onnxruntime"):
        bench.bench_model("mobilevit_xxs", [1], [1], 3, log=lambda line: None)
    assert log == ["minivit", "torch", "onnxruntime"]       # the agreement check ran, nothing else
