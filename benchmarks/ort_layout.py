"""How much of ONNX Runtime's speed is its channel-blocked layout: one thread, batch 1, 256x256.

For each variant, three engines on the same weights (engines.py), timed in bench.py's interleaved
windows (`bench.windows`: a few runs of each engine per window, rotating order, with bench.py's
pause between engines): ONNX Runtime as the benchmark runs it (all graph optimisations, which
include the NCHWc layout transformation), ONNX Runtime with every optimisation but that one
(ORT_ENABLE_EXTENDED), and minivit. Prints the medians over the windows as a Markdown table
(benchmarks/PROFILE.md quotes one).

    python benchmarks/ort_layout.py [--models mobilevitv2_050,mobilevit_xxs] [--windows 7]
"""
import argparse

import numpy as np

import bench
import engines

MODELS = "mobilevitv2_050,mobilevitv2_100,mobilevit_xxs,mobilevitv3_xxs,mobilevitv3_050"


def ort_engine(name, model_bytes, level):
    """ONNX Runtime on one thread at the given graph optimisation level, as an engines.Engine."""
    session = engines.ort_session(model_bytes, 1, level=level)
    return engines.Engine(name, lambda x: session.run(None, {"image": x})[0], lambda n: None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--windows", type=int, default=7)
    args = ap.parse_args()
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, 256, 256)).astype(np.float32)
    print("| model | ONNX Runtime, NCHWc (ms) | ONNX Runtime, plain NCHW (ms) | minivit (ms) |")
    print("|---|---:|---:|---:|")
    for name in args.models.split(","):
        model_bytes = engines.onnx_bytes(name)
        mv = engines.build_minivit(name)
        mv.threads(1)
        runs = [ort_engine("nchwc", model_bytes, "ALL"), ort_engine("nchw", model_bytes, "EXTENDED"), mv]
        per_window = bench.windows(runs, x, args.windows)
        print(f"| {name} | " + " | ".join(f"{1e3 * np.median(per_window[e.name]):.2f}" for e in runs) + " |",
              flush=True)


if __name__ == "__main__":
    main()
