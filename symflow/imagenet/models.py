"""ImageNet models in flax: ResNet-18..200 with BatchNorm and MLP-Mixer-S/16 (Sec. 6.2, App. B.2).

ResNet: the flax ImageNet example's (examples/imagenet/models.py), which is ResNet v1.5 (the
stride of a bottleneck block sits on its 3x3 convolution, He et al. 2016 with the torchvision
change); BatchNorm momentum 0.9, epsilon 1e-5; the last norm of each block starts at zero.
Mixer: Tolstikhin et al. (2021), App. E; S/16 has 8 blocks, hidden width 512, token-mixing MLP
256 and channel-mixing MLP 2048 on 16x16 patches; its head starts at zero.

Models are chosen by name from :data:`MODELS` (a registry, as symflow's groups and
architectures); ``ResNetTiny`` and ``MixerTiny`` are the small variants the tests train on CPU,
and :func:`build_model` takes overrides of any field (e.g. ``stage_sizes=(1, 1)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp

from symflow.registry import Registry


class _Block(nn.Module):
    """A residual block: its fields, and relu(x + y) with x projected where its shape is not y's."""

    filters: int
    conv: Callable
    norm: Callable
    strides: tuple[int, int] = (1, 1)

    def shortcut(self, x, y):
        if x.shape != y.shape:  # a strided 1x1 convolution and a norm
            x = self.norm(name="norm_proj")(self.conv(y.shape[-1], (1, 1), self.strides, name="conv_proj")(x))
        return nn.relu(x + y)


class ResNetBlock(_Block):
    """Two 3x3 convolutions (ResNet-18 and 34)."""

    @nn.compact
    def __call__(self, x):
        y = nn.relu(self.norm()(self.conv(self.filters, (3, 3), self.strides)(x)))
        y = self.norm(scale_init=nn.initializers.zeros_init())(self.conv(self.filters, (3, 3))(y))
        return self.shortcut(x, y)


class BottleneckBlock(_Block):
    """1x1, 3x3 (strided), 1x1 with 4x the filters (ResNet-50 and deeper)."""

    @nn.compact
    def __call__(self, x):
        y = nn.relu(self.norm()(self.conv(self.filters, (1, 1))(x)))
        y = nn.relu(self.norm()(self.conv(self.filters, (3, 3), self.strides)(y)))
        y = self.norm(scale_init=nn.initializers.zeros_init())(self.conv(4 * self.filters, (1, 1))(y))
        return self.shortcut(x, y)


class ResNet(nn.Module):
    stage_sizes: Sequence[int]
    bottleneck: bool
    num_classes: int = 1000
    num_filters: int = 64
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = True):
        conv = partial(nn.Conv, use_bias=False, dtype=self.dtype)
        norm = partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=self.dtype)
        x = conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], name="conv_init")(x)
        x = nn.relu(norm(name="bn_init")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        block = BottleneckBlock if self.bottleneck else ResNetBlock
        for i, size in enumerate(self.stage_sizes):
            for j in range(size):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                x = block(self.num_filters * 2**i, conv=conv, norm=norm, strides=strides)(x)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, dtype=self.dtype)(x).astype(jnp.float32)


class MlpBlock(nn.Module):
    mlp_dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        y = nn.gelu(nn.Dense(self.mlp_dim, dtype=self.dtype)(x))
        return nn.Dense(x.shape[-1], dtype=self.dtype)(y)


class MixerBlock(nn.Module):
    tokens_mlp_dim: int
    channels_mlp_dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        y = jnp.swapaxes(nn.LayerNorm(dtype=self.dtype)(x), 1, 2)
        x = x + jnp.swapaxes(MlpBlock(self.tokens_mlp_dim, self.dtype, name="token_mixing")(y), 1, 2)
        y = nn.LayerNorm(dtype=self.dtype)(x)
        return x + MlpBlock(self.channels_mlp_dim, self.dtype, name="channel_mixing")(y)


class MlpMixer(nn.Module):
    patch_size: int
    num_blocks: int
    hidden_dim: int
    tokens_mlp_dim: int
    channels_mlp_dim: int
    num_classes: int = 1000
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = True):
        p = self.patch_size
        x = nn.Conv(self.hidden_dim, (p, p), strides=(p, p), dtype=self.dtype, name="stem")(x)
        x = x.reshape(x.shape[0], -1, x.shape[-1])  # (N, tokens, hidden)
        for _ in range(self.num_blocks):
            x = MixerBlock(self.tokens_mlp_dim, self.channels_mlp_dim, self.dtype)(x)
        x = jnp.mean(nn.LayerNorm(dtype=self.dtype, name="pre_head_layer_norm")(x), axis=1)
        head = nn.Dense(self.num_classes, kernel_init=nn.initializers.zeros, dtype=self.dtype, name="head")
        return head(x).astype(jnp.float32)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    module: type
    kwargs: dict = field(default_factory=dict)
    description: str = ""
    batch_norm: bool = False  # has batch statistics (a 'batch_stats' collection)


MODELS: Registry[ModelSpec] = Registry("ImageNet model")

RESNET_STAGES = {
    18: ((2, 2, 2, 2), False),
    34: ((3, 4, 6, 3), False),
    50: ((3, 4, 6, 3), True),
    101: ((3, 4, 23, 3), True),
    152: ((3, 8, 36, 3), True),
    200: ((3, 24, 36, 3), True),
}
for _depth, (_stages, _bottleneck) in RESNET_STAGES.items():
    MODELS.register(ModelSpec(f"ResNet{_depth}", ResNet, {"stage_sizes": _stages, "bottleneck": _bottleneck},
                              f"ResNet-{_depth} v1.5 with BatchNorm (the flax ImageNet example)", batch_norm=True))
MODELS.register(ModelSpec("MixerS16", MlpMixer, dict(patch_size=16, num_blocks=8, hidden_dim=512, tokens_mlp_dim=256,
                                                     channels_mlp_dim=2048),
                          "MLP-Mixer-S/16: 8 blocks, hidden 512, token MLP 256, channel MLP 2048"))
# small variants for tests on CPU
MODELS.register(ModelSpec("ResNetTiny", ResNet, {"stage_sizes": (1, 1), "bottleneck": False, "num_filters": 8},
                          "a ResNet of two basic blocks, 8 and 16 filters (tests)", batch_norm=True))
MODELS.register(ModelSpec("MixerTiny", MlpMixer, dict(patch_size=8, num_blocks=2, hidden_dim=32, tokens_mlp_dim=16,
                                                      channels_mlp_dim=64),
                          "a Mixer of two blocks, hidden 32, 8x8 patches (tests)"))


def build_model(name: str, num_classes: int = 1000, dtype: Any = jnp.float32, **overrides) -> nn.Module:
    """The model `name` of MODELS, with `num_classes` outputs, computing in `dtype` (parameters stay
    float32), any field overridden by `overrides`."""
    spec = MODELS.get(name)
    return spec.module(**{**spec.kwargs, **overrides}, num_classes=int(num_classes), dtype=dtype)


def resnet_depth(name: str) -> int | None:
    """18 for 'ResNet18', ... ; None for other models."""
    digits = name[len("ResNet"):] if name.startswith("ResNet") else ""
    return int(digits) if digits.isdigit() else None
