"""The three engines the benchmark compares, built for one variant with the same weights.

- minivit: the model from minivit.create_model, weights converted from the official
  (cvnets) naming of the deterministic synthetic weights (tests/synth.py);
- PyTorch eager: tests/torch_reference.py's model with the same weights, eval(),
  run under torch.inference_mode();
- ONNX Runtime: that PyTorch model exported to ONNX (onnx_friendly=True: the v2
  unfold/fold as reshapes), the legacy TorchScript exporter (dynamo=False, which
  needs no onnxscript), opset 17, batch axis dynamic; CPU execution provider,
  all graph optimisations, sequential execution, one session per thread count.

Each engine is a `run(x) -> logits` function and a `threads(n)` setter.
"""
import io
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

ENGINES = ("minivit", "torch", "onnxruntime")


@dataclass
class Engine:
    name: str
    run: object          # x (B, 3, H, W) float32 -> logits (B, classes) as a NumPy array
    threads: object      # n -> None: use n threads from now on


def build_minivit(name):
    import minivit
    from minivit.threads import set_num_threads
    from reference import synthetic_model
    model = synthetic_model(name)
    minivit.warmup(model)
    return Engine("minivit", model, set_num_threads)


def torch_model(name, onnx_friendly=False):
    from torch_reference import build, load_synthetic
    return load_synthetic(build(name, onnx_friendly=onnx_friendly), name)


def build_torch(name):
    import torch
    model = torch_model(name)

    def run(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()
    return Engine("torch", run, torch.set_num_threads)


def onnx_bytes(name):
    """The variant exported to ONNX (bytes), batch axis dynamic."""
    import torch
    model = torch_model(name, onnx_friendly=True)
    buf = io.BytesIO()
    x = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=17, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    return buf.getvalue()


def ort_session(model_bytes, threads, profile_prefix=None, level="ALL"):
    """An ONNX Runtime session as the benchmark runs it; with profile_prefix, its profiler on too
    (the JSON goes to a file starting with that prefix; session.end_profiling() names it).
    level: the graph optimisation level, "ALL" (the benchmark's) or "EXTENDED" (all but the
    layout transformation to channel-blocked NCHWc; see ort_layout.py)."""
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, f"ORT_ENABLE_{level}")
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def build_onnxruntime(name, thread_counts=(1, 2)):
    model_bytes = onnx_bytes(name)
    sessions = {n: ort_session(model_bytes, n) for n in thread_counts}
    current = [sessions[max(thread_counts)]]

    def threads(n):
        current[0] = sessions[n]

    def run(x):
        return current[0].run(None, {"image": x})[0]
    return Engine("onnxruntime", run, threads)


def build_all(name, thread_counts=(1, 2)):
    return [build_minivit(name), build_torch(name), build_onnxruntime(name, thread_counts)]


def agreement(engines, x):
    """{engine: max |logits - PyTorch's logits|} on input x."""
    outs = {e.name: np.asarray(e.run(x), np.float64) for e in engines}
    ref = outs["torch"]
    return {k: float(np.abs(v - ref).max()) for k, v in outs.items() if k != "torch"}, float(np.abs(ref).max())
