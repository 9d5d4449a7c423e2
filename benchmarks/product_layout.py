"""How the layout of its operands changes a 1x1 convolution's matrix product: one thread, caches cold.

A 1x1 conv from Ci to Co channels on a map of N pixels is the product (Co, Ci) @ (Ci, N). minivit
keeps activations channel-major (NCHW): the Ci input rows and Co output rows are whole planes, N
floats apart, and a BLAS tile of 64 pixels reads Ci runs of 256 bytes from Ci planes and writes Co
such runs. In a pixel-tiled layout, (N/64, C, 64), a tile's operands are contiguous: (Ci, 64) in,
(Co, 64) out. This script times the same product seven ways, each as single-threaded cblas_sgemm
calls on minivit's thread pool (the kernels' way, minivit/kernels/matmul.py), with no bias or
activation:

- `minivit tiles`: NCHW in and out, minivit's own product (matmul.gemm, in its tiles);
- `64-pixel tiles`: NCHW in and out, tiles of 64 pixels;
- `tiled out`: NCHW in, pixel-tiled out; `tiled in`: the reverse; `tiled both`;
- `256-pixel tiles`, and the same with `padded planes`: NCHW, with each plane 16 floats longer
  in the second. Planes of 4096 or 16384 floats are a multiple of 4 KiB apart, so a tile's rows
  all fall into the same few cache sets; the padding spreads them.

Where the buffers sit matters as much: the input and output arrays here are large enough to be
mapped fresh, so both start 16 bytes past a 4 KiB boundary, and an input row and the output row
at the same pixels share cache sets too. Inside a forward pass they mostly do not, and the NCHW
columns here are slower than the same products in a pass (PROFILE.md, "Pixel tiles from the
stem"): compare layouts with each other, not with a model's layer times.

Before every run a 32 MB buffer is rewritten, so that the operands are no longer in L2 (as inside
a forward pass, where other layers ran in between) and the input is re-read into L3. The seven
variants rotate within each repetition. Prints min and median per variant as a Markdown table
(benchmarks/PROFILE.md quotes one).

    python benchmarks/product_layout.py [--shapes 64x32x16384,64x64x4096] [--repeat 30]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minivit.jit import pjit, prange, sgemm                     # noqa: E402
from minivit.kernels.matmul import gemm                          # noqa: E402
from minivit.threads import blas, blas_single_thread, set_num_threads   # noqa: E402

L = 64                                                           # pixels per tile
PAD = 16                                                         # floats added to each plane in `padded planes`
SHAPES = "32x16x16384,32x32x16384,64x32x16384,64x64x16384,128x64x16384,64x64x4096,128x64x4096,64x128x4096,128x128x4096"


@pjit
def _products(fn, ilp64, w, x, ldx, x_step, y, ldy, y_step, T, tn):
    # T products (Co, Ci) @ (Ci, tn) -> (Co, tn): tile t reads B at x + t*x_step (row stride ldx)
    # and writes C at y + t*y_step (row stride ldy); steps and strides in floats, addresses in bytes
    Co, Ci = w.shape
    for t in prange(T):
        sgemm(fn, ilp64, 111, 111, Co, tn, Ci, 1.0, w.ctypes.data, Ci, x + 4 * t * x_step, ldx, 0.0,
              y + 4 * t * y_step, ldy)


def variants(Co, Ci, N, lib):
    """The product (Co, Ci) @ (Ci, N) seven ways: {name: (run, input array to re-read before each run,
    result as (Co, N))}, and NumPy's product in float64."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((Co, Ci), dtype=np.float32)
    x = rng.standard_normal((Ci, N), dtype=np.float32)               # NCHW: (Ci, N)
    xt = np.ascontiguousarray(x.reshape(Ci, N // L, L).transpose(1, 0, 2))   # tiled: (N/L, Ci, L)
    y = np.empty((Co, N), np.float32)
    yt = np.empty((N // L, Co, L), np.float32)
    f, i64 = lib.sgemm, lib.ilp64
    Np = N + PAD
    xp = np.zeros((Ci, Np), np.float32)                               # NCHW planes Np apart
    xp[:, :N] = x
    yp = np.empty((Co, Np), np.float32)
    plain = lambda: y                                                     # noqa: E731
    untile = lambda: yt.transpose(1, 0, 2).reshape(Co, N)                 # noqa: E731  (N/L, Co, L) -> (Co, N)

    def tiles_of(tn, src, ldx, x_step, dst, ldy, y_step):
        # N/tn products of tn pixels, src and dst addressed as _products describes
        return lambda: _products(f, i64, w, src.ctypes.data, ldx, x_step, dst.ctypes.data, ldy, y_step, N // tn, tn)
    runs = {
        "minivit tiles": (lambda: gemm(w, x, out=y[None]), x, plain),
        "64-pixel tiles": (tiles_of(L, x, N, L, y, N, L), x, plain),
        "tiled out": (tiles_of(L, x, N, L, yt, L, Co * L), x, untile),
        "tiled in": (tiles_of(L, xt, L, Ci * L, y, N, L), xt, plain),
        "tiled both": (tiles_of(L, xt, L, Ci * L, yt, L, Co * L), xt, untile),
        "256-pixel tiles": (tiles_of(4 * L, x, N, 4 * L, y, N, 4 * L), x, plain),
        "padded planes": (tiles_of(4 * L, xp, Np, 4 * L, yp, Np, 4 * L), xp, lambda: yp[:, :N]),
    }
    return runs, w.astype(np.float64) @ x.astype(np.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default=SHAPES, help="Co x Ci x pixels, comma-separated (pixels a multiple of 256)")
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    set_num_threads(1)
    lib = blas()
    if not lib.sgemm:
        sys.exit("product_layout.py needs a BLAS with a cblas_sgemm address (see minivit/threads.py)")
    flush = np.ones(8 << 20, np.float32)
    names = list(variants(16, 16, L, lib)[0])
    print("| Co x Ci x pixels | " + " | ".join(f"{n} (ms)" for n in names) + " |")
    print("|---|" + "---:|" * len(names))
    with blas_single_thread():
        for shape in args.shapes.split(","):
            Co, Ci, N = (int(v) for v in shape.split("x"))
            if N % (4 * L):
                sys.exit(f"{shape}: the pixel count must be a multiple of {4 * L}")
            runs, ref = variants(Co, Ci, N, lib)
            times = {n: [] for n in runs}
            for name, (run, _, result) in runs.items():           # compile, touch the outputs, check
                run()
                err = np.abs(result() - ref).max() / np.abs(ref).max()
                if not err < 1e-5:
                    sys.exit(f"{shape}: '{name}' is off NumPy's product by {err:.2g} (relative to its largest entry)")
            for _ in range(args.repeat):
                for name, (run, src, _) in runs.items():
                    np.add(flush, 1.0, out=flush)                  # evict the operands from L2
                    np.add(src, 0.0, out=src)                      # the input, as the layer before left it
                    t0 = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - t0)
            cells = [f"{min(v) * 1e3:.2f} / {np.median(v) * 1e3:.2f}" for v in times.values()]
            print(f"| {Co} x {Ci} x {N} | " + " | ".join(cells) + " |", flush=True)
    print("\n(min / median over the repetitions)")


if __name__ == "__main__":
    main()
