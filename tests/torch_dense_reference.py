"""A compact PyTorch reference of the dense heads: DeepLabv3 and SSDLite on the backbones
of tests/torch_reference.py. Written from the papers and the official code's numerics;
torch only. Not part of the minivit package.

- State dicts use the official key names (encoder., seg_head., extra_layers., ssd_heads.),
  so tests/synth.py weights load strictly and minivit's cvnets converter is exercised.
- `dilate(backbone, output_stride)` turns a classifier backbone into a DeepLab one the way
  the official builder does: in each dilated stage the stride-2 inverted residual gets
  stride 1 at the dilation so far, and the dilation doubles; v2-family blocks dilate their
  depthwise local conv, v1-family blocks are never dilated.
- Activations in the heads are ReLU; eval() mode.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

import torch_reference as tr


def _set_dilation(conv, stride, dilation):
    conv.stride, conv.dilation = (stride, stride), (dilation, dilation)
    conv.padding = ((conv.kernel_size[0] - 1) // 2 * dilation,) * 2


def dilate(backbone, output_stride):
    """Make `backbone` (a torch_reference.MobileViT) run at output stride 16 or 8, in place."""
    stages = {32: (), 16: (5,), 8: (4, 5)}[output_stride]
    dilation = 1
    for k in stages:
        ir, block = getattr(backbone, f"layer_{k}")
        _set_dilation(ir.block.conv_3x3.block.conv, 1, dilation)   # stride 2 -> 1, previous dilation
        dilation *= 2
        if isinstance(block, tr.MobileViTv2Block):                 # v2 and v2-based v3
            _set_dilation(block.local_rep[0].block.conv, 1, dilation)
    return backbone


class conv_bn_relu(nn.Module):
    """The official ConvLayer with ReLU (keys block.conv / block.norm); BN and ReLU optional."""

    def __init__(self, cin, cout, k=1, stride=1, groups=1, dilation=1, norm=True, act=True, bias=False):
        super().__init__()
        layers = OrderedDict(conv=nn.Conv2d(cin, cout, k, stride, (k - 1) // 2 * dilation, dilation, groups, bias))
        if norm:
            layers["norm"] = nn.BatchNorm2d(cout)
        if act:
            layers["act"] = nn.ReLU()
        self.block = nn.Sequential(layers)

    def forward(self, x):
        return self.block(x)


class ASPPPooling(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.aspp_pool = nn.Sequential(OrderedDict(global_pool=nn.AdaptiveAvgPool2d(1),
                                                   conv_1x1=conv_bn_relu(cin, cout)))

    def forward(self, x):
        return F.interpolate(self.aspp_pool(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    def __init__(self, cin, cout, rates):
        super().__init__()
        self.convs = nn.ModuleList([conv_bn_relu(cin, cout)] + [conv_bn_relu(cin, cout, 3, dilation=r)
                                                                 for r in rates] + [ASPPPooling(cin, cout)])
        self.project = conv_bn_relu(5 * cout, cout)

    def forward(self, x):
        return self.project(torch.cat([c(x) for c in self.convs], dim=1))


class DeepLabV3(nn.Module):
    """v01_layout: the v0.1 head wraps its classifier in a Sequential (seg_head.classifier.classifier)."""

    def __init__(self, backbone_name, num_classes, output_stride, channels, rates, align_corners, v01_layout):
        super().__init__()
        self.encoder = dilate(tr.build(backbone_name), output_stride)
        self.encoder.conv_1x1_exp, self.encoder.classifier = None, None
        head = nn.Module()
        head.aspp = nn.Sequential(OrderedDict(aspp_layer=ASPP(self.encoder.cfg.stages[-1].out, channels, rates)))
        cls = conv_bn_relu(channels, num_classes, norm=False, act=False, bias=True)
        head.classifier = nn.Sequential(OrderedDict(classifier=cls)) if v01_layout else cls
        self.seg_head = head
        self.align_corners = align_corners

    def forward(self, x):
        """-> (logits before upsampling, logits upsampled to the input size)."""
        e = self.encoder
        y = e.conv_1(x)
        for k in range(1, 6):
            y = getattr(e, f"layer_{k}")(y)
        low = self.seg_head.classifier(self.seg_head.aspp(y))
        return low, F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=self.align_corners)


class SeparableConv(nn.Module):
    def __init__(self, cin, cout, stride=1, head=False):
        super().__init__()
        self.dw_conv = conv_bn_relu(cin, cin, 3, stride, groups=cin, act=False)
        self.pw_conv = (conv_bn_relu(cin, cout, norm=False, act=False, bias=True) if head
                        else conv_bn_relu(cin, cout))

    def forward(self, x):
        return self.pw_conv(self.dw_conv(x))


class SSDHead(nn.Module):
    def __init__(self, cin, proj, n_anchors, n_classes, kernel):
        super().__init__()
        self.proj_layer = conv_bn_relu(cin, proj) if kernel > 1 and proj != cin else None
        c = proj if self.proj_layer is not None else cin
        out = n_anchors * (4 + n_classes)
        self.loc_cls_layer = (SeparableConv(c, out, head=True) if kernel > 1
                              else conv_bn_relu(c, out, norm=False, act=False, bias=True))
        self.n_classes = n_classes

    def forward(self, x):
        if self.proj_layer is not None:
            x = self.proj_layer(x)
        # (B, a*(4+K), h, w) -> (B, h, w, a*(4+K)) -> (B, h*w*a, 4+K)
        y = self.loc_cls_layer(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, 4 + self.n_classes)
        return y[..., :4], y[..., 4:]


class SSDLite(nn.Module):
    def __init__(self, backbone_name, n_classes=81, proj=(512, 256, 256, 128, 128, 64)):
        super().__init__()
        self.encoder = tr.build(backbone_name)
        self.encoder.conv_1x1_exp, self.encoder.classifier = None, None
        st = self.encoder.cfg.stages
        c = st[4].out
        self.extra_layers = nn.ModuleDict()
        for os_, p in zip((64, 128, 256), proj[2:5]):
            self.extra_layers[f"os_{os_}"] = SeparableConv(c, p, stride=2)
            c = p
        self.extra_layers["os_-1"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv_bn_relu(c, proj[5], norm=False))
        widths = [st[3].out, st[4].out, *proj[2:]]
        anchors = [6, 6, 6, 6, 6, 4]
        self.ssd_heads = nn.ModuleList([SSDHead(w, p, a, n_classes, 3 if i < 5 else 1)
                                        for i, (w, p, a) in enumerate(zip(widths, proj, anchors))])

    def forward(self, x):
        """-> (class logits (B, A, K), box offsets (B, A, 4))."""
        e = self.encoder
        y = e.conv_1(x)
        maps = []
        for k in range(1, 6):
            y = getattr(e, f"layer_{k}")(y)
            if k >= 4:
                maps.append(y)
        for layer in self.extra_layers.values():
            y = layer(y)
            maps.append(y)
        locs, logits = zip(*(h(m) for h, m in zip(self.ssd_heads, maps)))
        return torch.cat(logits, dim=1), torch.cat(locs, dim=1)


def deeplab_for(config):
    """The torch DeepLabV3 matching a minivit DeepLabConfig."""
    family = tr.PRESETS[config.backbone][0]
    return DeepLabV3(config.backbone, config.num_classes, config.output_stride, config.aspp_channels,
                     config.rates, config.align_corners, v01_layout=family in ("v1", "v3_v1")).eval()
