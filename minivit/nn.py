"""Plain layer classes holding NumPy weights, and the Module base they share.

A Module's weights are its array attributes; its sub-layers are its Module (or
list-of-Module) attributes. Walking them in definition order gives the state
dict, so minivit's canonical key names are simply attribute paths
("layer_3.1.transformer.0.attn.qkv.weight"). Attributes whose names start with
"_" are derived (folded or packed weights) and never part of the state dict.

After weights load, `prepare()` runs once on every layer: batch norm is folded
into the preceding convolution and linear weights are stored transposed, so the
forward pass does no weight arithmetic. Layers are stateless during forward,
so one model may be called from several threads at once.
"""
import numpy as np

from .errors import WeightsError
from .kernels.conv import conv2d
from .kernels.norm import group_norm1, layer_norm
from .kernels.pool import linear

BUFFERS = ("running_mean", "running_var")


class Module:
    def children(self):
        """(name, Module) pairs in definition order; list items are named by index."""
        for name, v in vars(self).items():
            if name.startswith("_"):
                continue
            if isinstance(v, Module):
                yield name, v
            elif isinstance(v, list):
                for i, m in enumerate(v):
                    if isinstance(m, Module):
                        yield f"{name}.{i}", m

    def state_dict(self, prefix=""):
        """Ordered {key: array} of every weight and buffer below this module."""
        out = {}
        for name, v in vars(self).items():
            if not name.startswith("_") and isinstance(v, np.ndarray):
                out[prefix + name] = v
        for name, m in self.children():
            out.update(m.state_dict(prefix + name + "."))
        return out

    def num_params(self):
        """Learnable parameters, as PyTorch counts them (batch norm statistics excluded)."""
        return sum(v.size for k, v in self.state_dict().items() if not k.endswith(BUFFERS))

    def load_state_dict(self, weights):
        """Strict copy: every key present, none extra, every shape equal; then prepare()."""
        own = self.state_dict()
        missing = [k for k in own if k not in weights]
        unexpected = [k for k in weights if k not in own]
        bad = [(k, own[k].shape, np.shape(weights[k])) for k in own
               if k in weights and own[k].shape != np.shape(weights[k])]
        if missing or unexpected or bad:
            raise WeightsError(describe_mismatch(missing, unexpected, bad))
        for key, value in weights.items():
            *path, attr = key.split(".")
            owner = self
            for p in path:
                owner = owner[int(p)] if isinstance(owner, list) else getattr(owner, p)
            setattr(owner, attr, np.ascontiguousarray(value, dtype=np.float32))
        self.prepare()
        return self

    def prepare(self):
        """Derive the packed weights of every layer (after a load)."""
        for _, m in self.children():
            m.prepare()
        self._prepare()

    def _prepare(self):
        pass


def describe_mismatch(missing, unexpected, bad, limit=20):
    """One message listing missing, unexpected and wrongly shaped keys."""
    lines = [f"weights do not fit the model: {len(missing)} missing, "
             f"{len(unexpected)} unexpected, {len(bad)} with the wrong shape"]
    for title, items in (("missing", missing), ("unexpected", unexpected)):
        for k in items[:limit]:
            lines.append(f"  {title}: {k}")
        if len(items) > limit:
            lines.append(f"  ... and {len(items) - limit} more {title}")
    for k, want, got in bad[:limit]:
        lines.append(f"  wrong shape: {k}: model wants {tuple(want)}, weights have {tuple(got)}")
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more with the wrong shape")
    return "\n".join(lines)


class Conv2d(Module):
    def __init__(self, cin, cout, k, groups=1, bias=False):
        self.weight = np.zeros((cout, cin // groups, k, k), np.float32)   # (Co, Ci/g, kh, kw)
        self.bias = np.zeros(cout, np.float32) if bias else None


class BatchNorm2d(Module):
    eps = 1e-5

    def __init__(self, c):
        self.weight = np.ones(c, np.float32)
        self.bias = np.zeros(c, np.float32)
        self.running_mean = np.zeros(c, np.float32)
        self.running_var = np.ones(c, np.float32)


class ConvBNAct(Module):
    """Conv2d, optional BatchNorm2d, optional activation (cvnets' ConvLayer).

    Padding is (k - 1) // 2 * dilation, as in cvnets, so stride 1 keeps the size.
    """

    def __init__(self, cin, cout, k, stride=1, groups=1, dilation=1, bn=True, act="silu", bias=False):
        self.conv = Conv2d(cin, cout, k, groups, bias)
        self.bn = BatchNorm2d(cout) if bn else None
        self.stride, self.groups, self.dilation, self.act = stride, groups, dilation, act
        self.padding = (k - 1) // 2 * dilation
        self._prepare()

    def _prepare(self):
        w = self.conv.weight.astype(np.float64)
        b = np.zeros(w.shape[0]) if self.conv.bias is None else self.conv.bias.astype(np.float64)
        if self.bn is not None:
            # BN(conv(x)) = s * (conv(x) + b - mean) + beta, with s = gamma / sqrt(var + eps)
            s = self.bn.weight / np.sqrt(self.bn.running_var.astype(np.float64) + self.bn.eps)
            w = w * s[:, None, None, None]
            b = (b - self.bn.running_mean) * s + self.bn.bias
        self._w = np.ascontiguousarray(w, dtype=np.float32)
        self._b = b.astype(np.float32) if (self.bn is not None or self.conv.bias is not None) else None

    def __call__(self, x, residual=None):
        """x (B, Ci, H, W) -> (B, Co, Ho, Wo), plus residual (B, Co, Ho, Wo) after the activation if given."""
        return conv2d(x, self._w, self._b, self.stride, self.padding, self.dilation, self.groups, self.act,
                      residual)


class Linear(Module):
    def __init__(self, din, dout, bias=True):
        self.weight = np.zeros((dout, din), np.float32)   # (Dout, Din), as PyTorch stores it
        self.bias = np.zeros(dout, np.float32) if bias else None
        self._prepare()

    def _prepare(self):
        self._wt = np.ascontiguousarray(self.weight.T)    # (Din, Dout): x @ _wt needs no transpose

    def __call__(self, x, act=None, residual=None):
        """x (..., Din) -> (..., Dout), plus residual (..., Dout) after the activation if given."""
        return linear(x, self._wt, self.bias, act, residual)


class LayerNorm(Module):
    eps = 1e-5

    def __init__(self, d):
        self.weight = np.ones(d, np.float32)
        self.bias = np.zeros(d, np.float32)

    def __call__(self, x):
        """x (..., D): each token normalised over its D channels."""
        return layer_norm(x, self.weight, self.bias, self.eps)


class GroupNorm1(Module):
    eps = 1e-5

    def __init__(self, c):
        self.weight = np.ones(c, np.float32)
        self.bias = np.zeros(c, np.float32)

    def __call__(self, x):
        """x (B, C, ...): each sample normalised over all its values (one group)."""
        return group_norm1(x, self.weight, self.bias, self.eps)
