"""Measurements that need a fresh process: first result, cold compile, peak memory.

- first result: wall time from launching `python` to the moment the first mobilevit_xxs
  logits exist in the child (import, create_model, one 256x256 forward pass; the child
  reads the same system-wide monotonic clock as the parent), with the Numba cache warm
  (the normal case after the first run or `minivit warmup`) and cold (NUMBA_CACHE_DIR set
  to a new empty directory, so every kernel compiles). Python's own bytecode cache is made
  warm too, whatever PYTHONDONTWRITEBYTECODE says: minivit's modules are compiled first
  (`compileall`), as pip does when it installs a package and as Python does at a first
  import; without it every child would compile minivit's sources again (30-50 ms). The
  whole process, interpreter shutdown included, is timed too and reported beside it;
- the command: wall time of `python -m minivit predict` on one shipped digit image (the
  shipped digit model), launch to exit, with the Numba cache warm: what a user of the
  README's first command waits for;
- cold compile: in a fresh process with an empty cache, `minivit.warmup(model)`:
  the time to compile every kernel the model needs, in total and kernel by kernel
  (from Numba's compile events; a kernel's time includes the helpers it compiles);
- peak memory: the peak resident set size (VmHWM) of a process that has loaded the
  model and then runs batch 1 or batch 8 at 256x256, and how much that pass added
  (the peak is reset just before the pass through /proc/self/clear_refs).
Each child prints one JSON line; this module runs them and parses it.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FIRST_RESULT = """
import time; t0 = time.perf_counter()
import json, numpy as np, minivit
t1 = time.perf_counter()
model = minivit.create_model("mobilevit_xxs")
t2 = time.perf_counter()
x = np.random.default_rng(0).uniform(0, 1, (1, 3, 256, 256)).astype(np.float32)
logits = model(x)
t3 = time.perf_counter()
result_at = time.monotonic()
print(json.dumps(dict(imports=t1 - t0, create=t2 - t1, first_forward=t3 - t2, result_at=result_at)))
"""

COLD_COMPILE = """
import json, sys, time
from numba.core import event
import minivit
name = sys.argv[1]
model = minivit.create_model(name)
with event.install_recorder("numba:compile") as rec:
    seconds = minivit.warmup(model)
per_kernel, stack = {}, []
for ts, ev in rec.buffer:                   # nested START/END pairs; keep the outermost ones
    if ev.is_start:
        stack.append(ts)
    else:
        start = stack.pop()
        if not stack:
            d = ev.data["dispatcher"].py_func
            key = d.__module__.replace("minivit.kernels.", "") + "." + d.__qualname__
            per_kernel[key] = per_kernel.get(key, 0.0) + ts - start
print(json.dumps(dict(total=seconds, kernels=per_kernel)))
"""

PEAK_MEMORY = """
import json, sys
import numpy as np
sys.path.insert(0, {bench!r})
engine, name, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024          # MiB
if engine == "minivit":
    import engines; e = engines.build_minivit(name)
elif engine == "torch":
    import engines; e = engines.build_torch(name)
else:
    import engines, onnxruntime
    e = engines.Engine("onnxruntime", None, None)
    session = engines.ort_session(open(sys.argv[4], "rb").read(), 2)
    e.run = lambda x: session.run(None, {{"image": x}})[0]
e.run(np.zeros((1, 3, 256, 256), np.float32))          # warm up (the ONNX model takes 256 x 256 only)
x = np.random.default_rng(0).uniform(0, 1, (batch, 3, 256, 256)).astype(np.float32)
before = status("VmRSS")
try:
    open("/proc/self/clear_refs", "w").write("5")     # reset the peak to the current size
    reset = True
except OSError:
    reset = False
for _ in range(2):
    e.run(x)
peak = status("VmHWM")
print(json.dumps(dict(peak=peak, before=before, added=peak - before if reset else None)))
"""


def _launch(argv, env=None, timeout=1800):
    """Run `python argv` from the project root with the project on the path; (monotonic launch
    time, wall seconds, stdout). Raises if the child fails."""
    launched = time.monotonic()
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *map(str, argv)], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child process failed ({' '.join(map(str, argv))[:80]}):\n{proc.stderr[-3000:]}")
    return launched, wall, proc.stdout


def run_child(code, args=(), env=None, timeout=1800):
    """Run `python -c code args`; (wall seconds, parsed JSON of its last line).

    If the child reports `result_at` (its time.monotonic() when it had the result; the
    clock is system-wide on Linux), the JSON also gets `to_result`: seconds from launch.
    """
    launched, wall, stdout = _launch(["-c", code, *args], env, timeout)
    out = json.loads(stdout.strip().splitlines()[-1])
    if "result_at" in out:
        out["to_result"] = out["result_at"] - launched
    return wall, out


def compile_bytecode():
    """Write minivit's .pyc files (Python's cache; PYTHONDONTWRITEBYTECODE=1 would keep them unwritten)."""
    _launch(["-m", "compileall", "-q", ROOT / "minivit"])


def first_result(repeats=5):
    """{"warm": [...], "cold": [...]}: (whole-process wall seconds, the child's breakdown with
    `to_result`), per run."""
    compile_bytecode()
    run_child(FIRST_RESULT)                                    # make sure the default cache is warm
    out = {"warm": [], "cold": []}
    for _ in range(repeats):
        out["warm"].append(run_child(FIRST_RESULT))
    for _ in range(max(1, repeats // 2)):
        with tempfile.TemporaryDirectory() as cache:
            out["cold"].append(run_child(FIRST_RESULT, env={"NUMBA_CACHE_DIR": cache}))
    return out


def command(repeats=5):
    """Wall seconds of `python -m minivit predict <shipped digit>`, launch to exit, per run (warm cache)."""
    argv = ["-m", "minivit", "predict", ROOT / "minivit" / "data" / "digits" / "digit_7.png"]
    compile_bytecode()
    _launch(argv)                                              # make sure the default cache is warm
    return [_launch(argv)[1] for _ in range(repeats)]


def cold_compile(name):
    """(wall seconds of the child, {"total": s, "kernels": {kernel: s}}) with an empty cache."""
    with tempfile.TemporaryDirectory() as cache:
        return run_child(COLD_COMPILE, [name], env={"NUMBA_CACHE_DIR": cache})


def peak_memory(engine, name, batch, onnx_path=None):
    """{"peak": MiB, "before": MiB, "added": MiB} for one engine, model and batch."""
    code = PEAK_MEMORY.format(bench=str(ROOT / "benchmarks"))
    args = [engine, name, batch] + ([onnx_path] if onnx_path else [])
    return run_child(code, args)[1]
