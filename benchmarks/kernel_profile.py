"""Where a model's time goes, by kernel: a timing wrapper around every kernel call.

Not a benchmark against other engines (that is bench.py): this wraps each public
kernel (conv2d, layer_norm, mha, ...) where the layers and blocks call it, runs
the model, and reports the time spent in each, per forward pass. Convolutions
are split by kind (pointwise, depthwise, dense kxk, strided), because each kind
goes down a different path. Whatever is not inside a kernel (concatenations,
residual adds, Python) is reported as "glue".

With --onnxruntime, the same model exported to ONNX (engines.py) is profiled by ONNX
Runtime's own profiler, by operator type, for comparison (its profiler adds some
overhead of its own, so its total is above its benchmark time).

With --blocks, the comparison is by network block instead (conv_1, layer_1.0, ...,
layer_5.1, head): minivit's time for each block inside whole passes, beside ONNX
Runtime's operator time for the nodes of that block (its node names carry the
PyTorch module path; a node without one, such as an inserted Transpose or layout
Reorder, counts towards the block it runs in). A batch above 1 is timed at one
thread only, the way the model runs it there: the blocks before `joint` image by
image (summed over the images), the rest on the whole batch.

Usage: python benchmarks/kernel_profile.py [--models mobilevit_xxs,...] [--batch 1,8]
       [--threads 2] [--repeat 20] [--clock wall|cpu] [--onnxruntime] [--markdown out.md]
       python benchmarks/kernel_profile.py --blocks [--models ...] [--batch 1] [--threads 1] [--repeat 30]
"""
import argparse
import os
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _conv_kind(args, kwargs):
    """A label for a conv2d call: its path (pointwise / depthwise / dense) and kernel."""
    x, w = args[0], args[1]
    groups = kwargs.get("groups", args[6] if len(args) > 6 else 1)
    stride = kwargs.get("stride", args[3] if len(args) > 3 else 1)
    stride = stride if isinstance(stride, int) else stride[0]
    co, cig, kh, kw = w.shape
    if groups == x.shape[1] == co and cig == 1:
        kind = f"depthwise {kh}x{kw}"
    elif kh == kw == 1 and stride == 1 and groups == 1:
        kind = "pointwise 1x1"
    else:
        kind = f"dense {kh}x{kw}"
    return f"conv2d {kind}" + (f" s{stride}" if stride != 1 else "")


CLOCK = time.perf_counter


class KernelTimer:
    """Replaces each kernel function by a timing wrapper in every non-kernel minivit module."""

    def __init__(self):
        self.totals = defaultdict(float)
        self.calls = defaultdict(int)
        self._saved = []

    def _wrap(self, name, fn):
        totals, calls, lock = self.totals, self.calls, threading.Lock()

        def timed(*args, **kwargs):
            key = _conv_kind(args, kwargs) if name == "conv2d" else name
            t0 = CLOCK()
            out = fn(*args, **kwargs)
            spent = CLOCK() - t0
            with lock:                         # a batch runs its images on several threads at once
                totals[key] += spent
                calls[key] += 1
            return out
        timed.__wrapped__ = fn
        return timed

    def __enter__(self):
        import minivit.kernels as K
        kernel_fns = {}
        for modname, mod in list(sys.modules.items()):
            if modname.startswith("minivit.kernels.") and mod is not None:
                for attr, v in vars(mod).items():
                    if callable(v) and getattr(v, "__module__", None) == modname and not attr.startswith("_") \
                            and not attr.endswith("_ref") and not isinstance(v, type):
                        kernel_fns[id(v)] = (attr, v)
        del K
        for modname, mod in list(sys.modules.items()):
            if not modname.startswith("minivit.") or modname.startswith("minivit.kernels") or mod is None:
                continue
            for attr, v in list(vars(mod).items()):
                if id(v) in kernel_fns:
                    self._saved.append((mod, attr, v))
                    setattr(mod, attr, self._wrap(kernel_fns[id(v)][0], v))
        return self

    def __exit__(self, *exc):
        for mod, attr, v in self._saved:
            setattr(mod, attr, v)
        self._saved.clear()

    def reset(self):
        self.totals.clear()
        self.calls.clear()


def profile(model, x, repeat, workers=1):
    """{kernel: (ms per forward, calls per forward)} and the total ms per forward.

    Each number is the minimum over `repeat` forward passes (of that kernel's summed time
    within one pass): on a shared machine the minimum is the steadiest estimate. `workers`:
    how many threads run the batch's images side by side (the model splits a batch over its
    threads); a kernel's time is then summed over them, and what is left of workers × the pass
    is glue and waiting.
    """
    model(x)                                   # compile and warm up outside the timer
    best, calls, best_total = {}, {}, float("inf")
    with KernelTimer() as kt:
        for _ in range(repeat):
            kt.reset()
            t0 = CLOCK()
            model(x)
            total = CLOCK() - t0
            best_total = min(best_total, total)
            for k, v in kt.totals.items():
                best[k] = min(best.get(k, float("inf")), v)
                calls[k] = kt.calls[k]
    rows = {k: (1e3 * v, calls[k]) for k, v in best.items()}
    glue = "glue (outside kernels)" if workers == 1 else "glue and waiting (outside kernels)"
    rows[glue] = (max(0.0, 1e3 * workers * best_total - sum(ms for ms, _ in rows.values())), 0)
    return rows, 1e3 * best_total


def table(name, batch, threads, rows, total, workers=1):
    """Markdown for profile()'s rows; with workers > 1, % is of workers × the pass."""
    lines = [f"### {name}, batch {batch}, {threads} thread(s): {total:.2f} ms per forward", ""]
    if workers > 1:
        lines += [f"Its images run on {workers} threads side by side: each kernel's time is summed over the "
                  f"threads, and % is of {workers} × the pass ({workers * total:.2f} ms of thread time).", ""]
    lines += ["| kernel | ms | % | calls |", "|---|---:|---:|---:|"]
    for k, (ms, n) in sorted(rows.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {k} | {ms:.2f} | {100 * ms / (workers * total):.1f} | {n or ''} |")
    return "\n".join(lines) + "\n"


def _ort_node_events(name, batch, threads, runs, size):
    """ONNX Runtime's profiler events for its nodes (the "*_kernel_time" ones, in execution order)
    over `runs` runs of the variant exported to ONNX (engines.py), batch `batch`."""
    import json
    import tempfile

    import numpy as np
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import engines
    session = engines.ort_session(engines.onnx_bytes(name), threads,
                                  profile_prefix=str(Path(tempfile.gettempdir()) / f"ort_profile_{os.getpid()}"))
    x = np.random.default_rng(0).uniform(0, 1, (batch, 3, size, size)).astype(np.float32)
    for _ in range(runs):
        session.run(None, {"image": x})
    path = session.end_profiling()
    events = json.loads(Path(path).read_text())
    os.remove(path)
    return sorted((e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")),
                  key=lambda e: e["ts"])


def profile_onnxruntime(name, batch, threads, repeat, size=256):
    """{ONNX operator type: (ms per run, calls per run)} from ONNX Runtime's profiler, and their total."""
    runs = repeat + 5
    totals, calls = defaultdict(float), defaultdict(int)
    for e in _ort_node_events(name, batch, threads, runs, size):
        totals[e["args"]["op_name"]] += e["dur"] / 1e3 / runs     # microseconds -> ms per run
        calls[e["args"]["op_name"]] += 1
    rows = {k: (v, calls[k] // runs) for k, v in totals.items()}
    return rows, sum(totals.values())


def block_times(model, x, repeat):
    """{block: ms}: each block of a MobileViT classifier timed inside whole forward passes
    (the minimum over `repeat` passes), in forward order; "head" is conv_1x1_exp (if any), the
    global pool and the classifier. A batch runs as the model runs it on one thread: the
    blocks before `joint` image by image (a block's time is the sum over the images), the
    rest on the whole batch. Inside a pass, as in ONNX Runtime's profile: a
    block called alone, again and again on the same input, finds its data in cache and measured
    about 12% faster (mobilevitv2_050: 12.7 against 14.2 ms summed over the blocks)."""
    import numpy as np
    from minivit.blocks.inverted_residual import InvertedResidual
    from minivit.kernels.pool import global_avg_pool
    from minivit.memory import keep_freed_memory
    from minivit.threads import blas_single_thread, pool_guard
    def one_input(block):                      # MobileViT blocks also take a `record` callback
        return block if isinstance(block, InvertedResidual) else (lambda a: block(a, None))

    def head(a):
        a = a if model.conv_1x1_exp is None else model.conv_1x1_exp(a)
        return model.classifier(global_avg_pool(a))
    blocks = [("conv_1", model.conv_1)] + [(f"layer_{k}.{i}", one_input(b)) for k in range(1, 6)
                                          for i, b in enumerate(getattr(model, f"layer_{k}"))] + [("head", head)]
    joins = 1 + len(model.split_blocks()[0]) if len(x) > 1 else len(blocks)   # conv_1 comes first in `blocks`
    best = {}
    keep_freed_memory()
    with pool_guard(), blas_single_thread():   # as the model's own __call__ sets them up, once
        for p in range(repeat + 2):            # the first two passes warm up
            parts = [x[i:i + 1] for i in range(len(x))]                 # B arrays (1, 3, H, W)
            for j, (name, block) in enumerate(blocks):
                if j == joins:
                    parts = [np.concatenate(parts)]                     # one (B, C, h, w)
                spent = 0.0
                for i, a in enumerate(parts):
                    t0 = CLOCK()
                    parts[i] = block(a)
                    spent += CLOCK() - t0
                if p >= 2:
                    best[name] = min(best.get(name, float("inf")), spent)
    return {name: 1e3 * t for name, t in best.items()}


def block_times_onnxruntime(name, threads, repeat, size=256, batch=1):
    """{block: ms per run}: ONNX Runtime's operator time per block, the minimum over
    runs of each node's time, summed over the block's nodes. A node's block is the first part
    of its name (/layer_3.1/...); nodes that ONNX Runtime inserted (Transpose_token_*,
    ReorderInput, ...) belong to the block of the named node that ran before them."""
    durations, block_of, current = defaultdict(list), {}, "conv_1"
    for e in _ort_node_events(name, batch, threads, repeat + 5, size):
        node = e["name"][:-len("_kernel_time")]
        if node.startswith("/"):
            top = node.split("/")[1]
            current = top if top == "conv_1" or top.startswith("layer_") else "head"
        block_of.setdefault(node, current)
        durations[node].append(e["dur"] / 1e3)
    rows = defaultdict(float)
    for node, ds in durations.items():
        rows[block_of[node]] += min(ds[5:] or ds)          # the first runs warm up
    return dict(rows)


def block_table(name, batch, threads, mine, theirs):
    lines = [f"### {name} by block, batch {batch}, {threads} thread(s)", "",
             "| block | minivit (ms) | ONNX Runtime (ms) | ONNX Runtime / minivit |", "|---|---:|---:|---:|"]
    for block, ms in mine.items():
        other = theirs.get(block, 0.0)
        lines.append(f"| {block} | {ms:.3f} | {other:.3f} | {other / ms:.2f} |")
    a, b = sum(mine.values()), sum(theirs.values())
    lines.append(f"| all | {a:.2f} | {b:.2f} | {b / a:.2f} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mobilevit_xxs")
    ap.add_argument("--batch", help="batch sizes, comma-separated (default 1,8; with --blocks 1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--markdown", help="append the tables to this file")
    ap.add_argument("--onnxruntime", action="store_true", help="also ONNX Runtime's own per-operator profile")
    ap.add_argument("--blocks", action="store_true",
                    help="by network block, beside ONNX Runtime (instead of the kernel tables); "
                         "batches above 1 at one thread only")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: process CPU time, steadier on a busy machine (meaningful with 1 thread)")
    args = ap.parse_args()
    args.batch = args.batch or ("1" if args.blocks else "1,8")
    if args.blocks and args.threads != 1 and args.batch != "1":
        ap.error("--blocks times a batch above 1 at one thread only (--threads 1)")
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter

    import numpy as np
    import minivit
    try:
        from minivit.threads import set_num_threads
    except ImportError:                        # before minivit/threads.py existed
        def set_num_threads(n):
            import numba
            import threadpoolctl
            numba.set_num_threads(n)
            threadpoolctl.threadpool_limits(n)
    set_num_threads(args.threads)
    out = []
    for name in args.models.split(","):
        model = minivit.create_model(name)
        if args.blocks:
            for b in (int(v) for v in args.batch.split(",")):
                x = np.random.default_rng(0).uniform(0, 1, (b, 3, args.size, args.size)).astype(np.float32)
                out.append(block_table(name, b, args.threads, block_times(model, x, args.repeat),
                                       block_times_onnxruntime(name, args.threads, args.repeat, args.size, b)))
                print(out[-1], flush=True)
            continue
        for b in (int(v) for v in args.batch.split(",")):
            x = np.random.default_rng(0).uniform(0, 1, (b, 3, args.size, args.size)).astype(np.float32)
            workers = min(b, args.threads) if args.clock == "wall" else 1     # see model.split_images
            rows, total = profile(model, x, max(2, args.repeat // b), workers)
            out.append(table(name, b, args.threads, rows, total, workers))
            print(out[-1], flush=True)
            if args.onnxruntime:
                rows, total = profile_onnxruntime(name, b, args.threads, max(2, args.repeat // b), args.size)
                out.append(table(name, b, args.threads, rows, total).replace(
                    "### ", "### ONNX Runtime, ").replace("| kernel |", "| operator |").replace(
                    "ms per forward", "ms in operators per run"))
                print(out[-1], flush=True)
    if args.markdown:
        with open(args.markdown, "a") as f:
            f.write("\n".join(out))


if __name__ == "__main__":
    main()
