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

    def __call__(self, x, return_attn=False):
        """x (T, N, D) -> (T, N, D) [and the attention (T, h, N, N)]."""
        return mha(x, self.qkv._wt, self.qkv.bias, self.proj._wt, self.proj.bias,
                   self.heads, return_attn)


class MLP(Module):
    def __init__(self, dim, hidden):
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)

    def __call__(self, x):
        return self.fc2(self.fc1(x, act="silu"))


class TransformerLayer(Module):
    def __init__(self, dim, ffn_dim, heads):
        self.norm1 = LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.norm2 = LayerNorm(dim)
        self.mlp = MLP(dim, ffn_dim)

    def __call__(self, x):
        """x (T, N, D) -> (T, N, D)."""
        x = x + self.attn(self.norm1(x))
        x += self.mlp(self.norm2(x))
        return x
