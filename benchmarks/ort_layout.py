"""How much of ONNX Runtime's speed is its channel-blocked layout: one thread, batch 1, 256x256.

For each variant, three engines on the same weights (engines.py), interleaved run by run with a
pause before each (ONNX Runtime's threads spin for a while after a run): ONNX Runtime as the
benchmark runs it (all graph optimisations, which include the NCHWc layout transformation),
ONNX Runtime with every optimisation but that one (ORT_ENABLE_EXTENDED), and minivit.
Prints the medians as a Markdown table (benchmarks/PROFILE.md quotes one).

    python benchmarks/ort_layout.py [--models mobilevitv2_050,mobilevit_xxs] [--repeat 15]
"""
import argparse
import time

import numpy as np

import engines

PAUSE = 0.08


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mobilevitv2_050,mobilevitv2_100,mobilevit_xxs,mobilevitv3_xxs,mobilevitv3_050")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    x = np.random.default_rng(0).standard_normal((1, 3, 256, 256)).astype(np.float32)
    print("| model | ONNX Runtime, NCHWc (ms) | ONNX Runtime, plain NCHW (ms) | minivit (ms) |")
    print("|---|---:|---:|---:|")
    for name in args.models.split(","):
        model_bytes = engines.onnx_bytes(name)
        blocked, plain = (engines.ort_session(model_bytes, 1, level=lv) for lv in ("ALL", "EXTENDED"))
        mv = engines.build_minivit(name)
        mv.threads(1)
        runs = [lambda: blocked.run(None, {"image": x}), lambda: plain.run(None, {"image": x}), lambda: mv.run(x)]
        times = [[] for _ in runs]
        for f in runs:                                   # warm-up (and minivit's compile)
            f()
            f()
        for _ in range(args.repeat):
            for f, t in zip(runs, times):
                time.sleep(PAUSE)
                t0 = time.perf_counter()
                f()
                t.append(time.perf_counter() - t0)
        print(f"| {name} | " + " | ".join(f"{1e3 * np.median(t):.2f}" for t in times) + " |", flush=True)


if __name__ == "__main__":
    main()
