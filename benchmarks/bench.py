"""minivit against PyTorch eager and ONNX Runtime, on every variant, with honest numbers.

For each variant at 256x256, batch 1 and batch 8, with 2 threads and with 1 thread:
1. builds the three engines with the same weights (engines.py) and checks that they
   agree (max |difference| of the logits; stops loudly if any is far off) before
   timing anything;
2. warms each engine up, then times them in short interleaved windows (each window
   runs every engine a few times, in a rotating order, with a short pause between
   engines so that one engine's spinning threads do not tax the next), repeated,
   because this shared machine drifts;
3. reports each engine's median over the windows (of the windows' medians) with the
   spread (min-max over windows), and the ratios PyTorch/minivit and ORT/minivit
   computed inside each window, then their median and spread.
It also measures, in fresh processes (startup.py): the time to the first mobilevit_xxs
result with a warm and with a cold Numba cache, the cold compile time of the kernels of
one model per family (and per kernel), and the peak memory at batch 1 and 8.
Writes benchmarks/RESULTS.md and benchmarks/results.png; raw numbers to results.json.

Usage: python benchmarks/bench.py [--models a,b | --quick] [--batches 1,8] [--threads 2,1]
                                  [--windows 7] [--no-startup] [--no-memory] [--report-only]
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import engines as E          # noqa: E402
import report                # noqa: E402
import startup               # noqa: E402

HEADLINE = ["mobilevit_xxs", "mobilevitv2_050", "mobilevitv3_xxs"]
FAMILY_REPS = ["mobilevit_xxs", "mobilevitv2_050", "mobilevitv3_xxs", "mobilevitv3_050"]
AGREE_ATOL = 1e-3            # logits of float32 engines differ by ~1e-5; 1e-3 means something is wrong
WINDOW_SECONDS = 0.3         # aim for this much running per engine per window
PAUSE = 0.1                  # seconds between engines inside a window: ONNX Runtime's intra-op
                             # threads spin for ~40 ms after a run (CPU time its process uses while
                             # sleeping), and the next engine must not share the cores with them


def time_runs(run, x, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run(x)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def windows(engines, x, n_windows):
    """{engine: [median seconds per window]} with the engines interleaved in every window."""
    reps = {}
    for e in engines:                                  # warm up; size each engine's share of a window
        for _ in range(2):
            e.run(x)
        one = time_runs(e.run, x, 1)
        reps[e.name] = max(1, min(20, round(WINDOW_SECONDS / max(one, 1e-6))))
    out = {e.name: [] for e in engines}
    for w in range(n_windows):
        order = engines[w % len(engines):] + engines[:w % len(engines)]
        for e in order:
            out[e.name].append(time_runs(e.run, x, reps[e.name]))
            time.sleep(PAUSE)
    return out


def summarise(per_window):
    """Medians with spread, and the in-window ratios."""
    mv = np.array(per_window["minivit"])
    row = {}
    for name, ts in per_window.items():
        ts = np.array(ts)
        row[name] = dict(median_ms=1e3 * float(np.median(ts)), min_ms=1e3 * float(ts.min()),
                         max_ms=1e3 * float(ts.max()))
        if name != "minivit":
            r = ts / mv                                # > 1: minivit is faster
            row[name].update(ratio=float(np.median(r)), ratio_min=float(r.min()), ratio_max=float(r.max()))
    return row


def bench_model(name, batches, thread_counts, n_windows, log):
    engines = E.build_all(name, thread_counts)
    x8 = np.random.default_rng(1).uniform(0, 1, (max(batches), 3, 256, 256)).astype(np.float32)
    diffs, scale = E.agreement(engines, x8)
    log(f"{name}: max |logits - torch| {diffs} (torch max |logit| {scale:.3g})")
    bad = {k: v for k, v in diffs.items() if not v <= AGREE_ATOL}
    if bad:
        raise SystemExit(f"{name}: engines disagree with PyTorch: {bad} > {AGREE_ATOL}; not timing a wrong answer")
    results = []
    for batch in batches:
        x = np.ascontiguousarray(x8[:batch])
        for n in thread_counts:
            for e in engines:
                e.threads(n)
            row = summarise(windows(engines, x, n_windows))
            results.append(dict(model=name, batch=batch, threads=n, agreement=diffs, **row))
            log(f"  batch {batch}, {n} thread(s): " + ", ".join(
                f"{k} {v['median_ms']:.1f} ms" + (f" (x{v['ratio']:.2f})" if "ratio" in v else "")
                for k, v in row.items()))
    return results


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    mem = next((int(line.split()[1]) // 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    flags = open("/proc/cpuinfo").read()
    return dict(cpu=cpu, cores=os.cpu_count(), memory_mib=mem, avx512="avx512f" in flags,
                os=platform.platform(), python=platform.python_version())


def versions():
    import numba
    import onnxruntime
    import torch

    import minivit
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                            text=True).stdout.strip()
    outputs = [f":(exclude)benchmarks/{f}" for f in ("RESULTS.md", "results.json", "results.png")]
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "minivit", "benchmarks", *outputs],
                           cwd=HERE.parent, capture_output=True, text=True).stdout.strip()
    from minivit.threads import blas
    lib = blas()
    return dict(minivit=f"{minivit.__version__} ({commit}{', modified' if dirty else ''})", numpy=np.__version__,
                numba=numba.__version__, torch=torch.__version__, onnxruntime=onnxruntime.__version__,
                numba_threading_layer=numba.threading_layer(),
                minivit_blas="cblas_sgemm by address (tiles on Numba's pool)" if lib.sgemm else f"np.matmul ({lib.why})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", help="comma-separated variants (default: every registered one)")
    ap.add_argument("--quick", action="store_true", help="the three headline variants, 5 windows, no memory")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="2,1")
    ap.add_argument("--windows", type=int, default=7)
    ap.add_argument("--no-startup", action="store_true", help="skip the fresh-process measurements")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--report-only", action="store_true", help="rewrite RESULTS.md and the plot from results.json")
    args = ap.parse_args()
    if args.report_only:
        saved = json.loads((HERE / "results.json").read_text())
        return write_report(saved["meta"], saved["rows"], saved["extra"], Path(args.out))

    import minivit
    names = args.models.split(",") if args.models else (HEADLINE if args.quick else minivit.list_models())
    n_windows = 5 if args.quick and args.windows == 7 else args.windows
    batches = [int(b) for b in args.batches.split(",")]
    thread_counts = [int(t) for t in args.threads.split(",")]
    started = datetime.datetime.now().astimezone()
    meta = dict(date=started.isoformat(timespec="seconds"), command=" ".join(sys.argv[1:]) or "(defaults)",
                machine=machine(), load_before=os.getloadavg(), windows=n_windows)
    print(json.dumps(meta, indent=1), flush=True)

    rows, extra = [], {}
    raw = HERE / "results.json"

    def save():                                   # after every model: a late failure loses nothing
        raw.write_text(json.dumps(dict(meta=meta, rows=rows, extra=extra), indent=1))
    for name in names:
        rows += bench_model(name, batches, thread_counts, n_windows, lambda s: print(s, flush=True))
        save()
    meta["load_after_timing"] = os.getloadavg()
    meta["versions"] = versions()                # after the timing: Numba's threading layer is known by now

    if not args.no_startup:
        extra["first_result"] = startup.first_result()
        print("first result:", extra["first_result"], flush=True)
        extra["command"] = startup.command()
        print("minivit predict, launch to exit:", [round(w, 2) for w in extra["command"]], flush=True)
        extra["cold_compile"] = {n: startup.cold_compile(n) for n in
                                 ([names[0]] if args.quick else [n for n in FAMILY_REPS if n in names] or names[:1])}
        print("cold compile:", {k: round(v[1]["total"], 1) for k, v in extra["cold_compile"].items()}, flush=True)
        save()
    if not (args.no_memory or args.quick):
        extra["memory"] = measure_memory([n for n in FAMILY_REPS if n in names] or names[:1], batches)
        print("memory:", extra["memory"], flush=True)
    meta["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    meta["load_after"] = os.getloadavg()
    save()
    write_report(meta, rows, extra, Path(args.out))


def write_report(meta, rows, extra, out):
    out.write_text(report.markdown(meta, rows, extra, HEADLINE))
    report.plot(rows, HERE / "results.png", HEADLINE)
    print(f"wrote {out}, {HERE / 'results.png'}, {HERE / 'results.json'}")


def measure_memory(names, batches):
    import tempfile
    out = []
    for name in names:
        with tempfile.NamedTemporaryFile(suffix=".onnx") as f:
            f.write(E.onnx_bytes(name))
            f.flush()
            for batch in batches:
                for engine in E.ENGINES:
                    m = startup.peak_memory(engine, name, batch, f.name if engine == "onnxruntime" else None)
                    out.append(dict(model=name, batch=batch, engine=engine, **m))
    return out


if __name__ == "__main__":
    main()
