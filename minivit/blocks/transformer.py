"""The pre-norm transformer layer of MobileViT v1 (cvnets TransformerEncoder).

x -> x + MHA(LayerNorm(x)) -> x + FFN(LayerNorm(x)), FFN = Linear, SiLU,
Linear. Tokens are (T, N, D): T sequences of N patches with D channels.
Dropout is inactive at inference and absent here.
"""
from ..kernels.attention import mha
from ..nn import LayerNorm, Linear, Module


class MultiHeadAttention(Module):
    def __init__(self, dim, heads):
        self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)
        self.heads = heads

    def __call__(self, x, return_attn=False, residual=None):
        """x (T, N, D) -> (T, N, D) (+ residual) [and the attention (T, h, N, N)]."""
        return mha(x, self.qkv._wt, self.qkv.bias, self.proj._wt, self.proj.bias,
                   self.heads, return_attn, residual)


class MLP(Module):
    def __init__(self, dim, hidden):
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)

    def __call__(self, x, residual=None):
        return self.fc2(self.fc1(x, act="silu"), residual=residual)


class TransformerLayer(Module):
    def __init__(self, dim, ffn_dim, heads):
        self.norm1 = LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.norm2 = LayerNorm(dim)
        self.mlp = MLP(dim, ffn_dim)

    def __call__(self, x):
        """x (T, N, D) -> (T, N, D)."""
        x = self.attn(self.norm1(x), residual=x)       # a new array: the caller's x is left as it was
        return self.mlp(self.norm2(x), residual=x)
