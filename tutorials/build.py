"""Execute the tutorial notebooks in order and save them with their outputs.

    python tutorials/build.py              # run every notebook, save outputs in place
    python tutorials/build.py --check      # run every notebook into a temporary folder, change nothing
    python tutorials/build.py 03 05        # only the notebooks whose names start with 03 or 05
    python tutorials/build.py --threads 1  # Numba and BLAS on one thread each (steadier timings on a busy machine)

The .ipynb files are the single source of truth: they are committed with their
outputs so that their figures show on a code-hosting site, and this script only
re-executes them. Each notebook runs in a fresh kernel of the interpreter that
runs this script, with tutorials/ as its working directory. A notebook fails
when one of its cells raises, which includes its inline assertions.
tests/test_tutorials.py uses `execute` from here, so CI runs the same thing.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
KERNEL = "minivit-tutorials"
# what the saved notebooks say they need: a plain Python 3 kernel
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def notebooks():
    """The tutorial notebooks, in reading order (their names start with a two-digit number)."""
    return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))


def _kernel_manager(folder):
    """A kernel manager whose only kernel is this interpreter, wherever Jupyter's own specs point."""
    spec = Path(folder) / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (minivit tutorials)", "language": "python"}))
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(folder)]))


THREAD_VARS = ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def execute(path, timeout=600, threads=None):
    """Run one notebook top to bottom; return (executed notebook, seconds). Raises on a failing cell.

    threads: if given, the kernel's Numba and BLAS thread pools get this many threads each.
    """
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    if threads:
        env.update({v: str(threads) for v in THREAD_VARS})
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"   # figures become image outputs
    with tempfile.TemporaryDirectory() as kernels:
        client = NotebookClient(nb, km=_kernel_manager(kernels), timeout=timeout, record_timing=False,
                                resources={"metadata": {"path": str(HERE)}})
        start = time.perf_counter()
        client.execute(env=env)
        seconds = time.perf_counter() - start
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    return nb, seconds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("only", nargs="*", help="run only notebooks whose names start with these prefixes")
    ap.add_argument("--check", action="store_true", help="execute into a temporary folder; write nothing here")
    ap.add_argument("--timeout", type=int, default=600, help="seconds allowed for one cell")
    ap.add_argument("--threads", type=int, help="threads for Numba and BLAS in the kernels (default: theirs)")
    args = ap.parse_args(argv)
    paths = [p for p in notebooks() if not args.only or p.name.startswith(tuple(args.only))]
    if not paths:
        sys.exit(f"no notebook matches {args.only} in {HERE}")
    total = 0.0
    with tempfile.TemporaryDirectory() as out:
        for path in paths:
            nb, seconds = execute(path, args.timeout, args.threads)
            total += seconds
            nbformat.write(nb, Path(out) / path.name if args.check else path)
            print(f"{seconds:6.1f} s  {path.name}", flush=True)
    print(f"{total:6.1f} s  in all ({len(paths)} notebooks{', checked, nothing written' if args.check else ''})")


if __name__ == "__main__":
    main()
