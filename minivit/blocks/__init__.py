"""Blocks: the building blocks of MobileViT, as plain classes of layers.

inverted_residual (MobileNetV2), transformer (v1 attention layers),
mobilevit_v1 / mobilevit_v2 / mobilevit_v3 (the three MobileViT blocks).
"""
