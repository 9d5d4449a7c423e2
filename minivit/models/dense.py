"""The dense-prediction presets: DeepLabv3 (segmentation) and SSDLite (detection)
on every classifier backbone, kept apart from the classifier registry.

`dense_configs()` derives them from the classifier presets each time it is
called, so a backbone family registered later gets its heads too. Building and
weight loading go through `minivit.create_model`, like the classifiers.
"""
import dataclasses

import numpy as np

from ..boxes import anchors_per_cell
from .config import MODELS
from .deeplab import DeepLabV3, deeplab_presets
from .ssd import SSDLite, ssd_presets

TASKS = ("classification", "segmentation", "detection")


def dense_configs():
    """{name: DeepLabConfig or SSDConfig} for every backbone, DeepLab first."""
    return {**deeplab_presets(MODELS.values()), **ssd_presets(MODELS.values())}


def num_classes_in(config, weights):
    """The class count the weights carry (their classifier's width), or None if they do not say."""
    if config.task == "segmentation":
        b = weights.get("classifier.conv.bias")
        return None if b is None else int(np.shape(b)[0])
    b = weights.get(f"ssd_heads.{len(config.proj_channels) - 1}.loc_cls_layer.conv.bias")
    if b is None:
        return None
    n, rem = divmod(int(np.shape(b)[0]), anchors_per_cell(config.aspect_ratios[-1]))
    return n - 4 if rem == 0 else None


def build_dense(config, num_classes=None, weights=None):
    """An (unloaded) DeepLabV3 or SSDLite for `config`; num_classes defaults to what the weights
    carry, else the preset's (21 VOC, 150 ADE20K, 81 COCO)."""
    n = num_classes or (num_classes_in(config, weights) if weights else None)
    if n and n != config.num_classes:
        config = dataclasses.replace(config, num_classes=n)
    cls = DeepLabV3 if config.task == "segmentation" else SSDLite
    return cls(config, MODELS[config.backbone])
