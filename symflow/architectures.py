"""The architecture registry: one stax definition per architecture serves both the
infinite-width kernels (kernel_fn) and the finite networks trained by SGD
(init_fn, apply_fn), so the two cannot drift apart.

The paper's six (Sec. 5.1, App. B.1; 8 hidden layers, ReLU, NTK parameterisation,
sigma_w^2 = 2, sigma_b^2 = 0.01, 3x3 filters, circular padding):

    FCN   dense layers on the flattened image
    LCN   locally connected (unshared 3x3) layers, flatten, dense readout
    VEC   3x3 conv layers, flatten, dense readout
    GAP   3x3 conv layers, global average pool, dense readout
    LAP4  3x3 conv layers, 4x4 average pool (stride 4), flatten, dense readout
    LAP8  the same with an 8x8 window

Each entry declares the transform groups it is claimed invariant to (Theorem 4.1),
separately for infinite width (kernel regression) and finite width (SGD). The
symmetry audit checks every claim numerically; kernel reuse across transforms is
only used where the audit agrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from symflow.registry import Registry

NUM_CLASSES = 10  # the outputs of a network built without a class count (the kernel does not depend on it)


@dataclass(frozen=True)
class ModelHP:
    """Hyperparameters shared by every architecture (config section `model`)."""

    depth: int = 8
    weight_variance: float = 2.0
    bias_variance: float = 0.01
    filter_size: int = 3

    @property
    def W_std(self) -> float:
        return math.sqrt(self.weight_variance)

    @property
    def b_std(self) -> float | None:
        return math.sqrt(self.bias_variance) if self.bias_variance > 0 else None

    @property
    def tag(self) -> str:
        """Short text for paths: 'L8-w2-b0.01-f3'."""
        return f"L{self.depth}-w{self.weight_variance:g}-b{self.bias_variance:g}-f{self.filter_size}"

    @classmethod
    def from_tag(cls, tag: str) -> "ModelHP":
        """The inverse of :attr:`tag` ('L8-w2-b0.01-f3'), for paths that name a model."""
        import re

        match = re.fullmatch(r"L(\d+)-w([0-9.e+-]+?)-b([0-9.e+-]+?)-f(\d+)", tag)
        if not match:
            raise ValueError(f"{tag!r} is not a model tag such as 'L8-w2-b0.01-f3'")
        hp = cls(int(match[1]), float(match[2]), float(match[3]), int(match[4]))
        if hp.tag != tag:
            raise ValueError(f"{tag!r} is not in canonical form (that model's tag is {hp.tag!r})")
        return hp

    @classmethod
    def from_config(cls, model: dict) -> "ModelHP":
        return cls(
            depth=int(model["depth"]),
            weight_variance=float(model["weight_variance"]),
            bias_variance=float(model["bias_variance"]),
            filter_size=int(model["filter_size"]),
        )


StaxTriple = tuple[Callable, Callable, Callable]

KERNEL_COSTS = ("dense", "pixels", "pixel_pairs")
LAYER_KINDS = ("dense", "conv", "local")
ENGINE_RECURSIONS = ("fcn", "pixel", "spatial")


@dataclass(frozen=True)
class Architecture:
    """A registered architecture.

    build(hp, width, num_classes) -> (init_fn, apply_fn, kernel_fn), a stax triple.
    invariant_infinite / invariant_finite: group names the kernel / the SGD-trained
    finite network is claimed invariant to (identity is implied).
    check_resolution(R) raises ValueError if the architecture cannot take R x R images.
    kernel_cost: how the kernel's state per pair of images grows with the image
    (neural-tangents' stax, the fallback for any architecture): "dense" one entry
    (FCN), "pixels" one per pixel (VEC, LCN: a flatten readout needs only same-pixel
    covariances), "pixel_pairs" one per pair of pixels (GAP, LAP: pooling needs them
    all). It sizes the memory and runtime of kernel jobs; a plug-in that does not say
    gets the most expensive class.
    layers: the hidden layers of the finite network, "dense", "conv" (shared filters)
    or "local" (unshared filters); it sizes the memory and runtime of SGD jobs.
    same_kernel_as: architectures whose infinite-width kernels are claimed equal to
    this one's (LCN_inf = VEC_inf); the symmetry audit checks each such claim.
    engine_recursion: which recursion of symflow's kernel engine (symflow.engine) computes
    its kernels, or None (the default): the engine cannot, and neural-tangents does, also
    where the config asks for the engine. "fcn": dense layers on the flattened image (FCN);
    "pixel": circular conv or locally connected layers, flatten readout (VEC, LCN);
    "spatial": circular conv layers, average pool over meta["window"] x meta["window"]
    blocks (LAPk) or, without a window, over the image (GAP). Naming one claims that the
    engine's recursion (the paper's layers: ReLU, filter_size x filter_size filters, NTK
    parameterisation, dense readout) is this architecture's kernel; tests/test_engine.py
    checks it against neural-tangents for the paper's six.
    default_width: the hidden width n of its finite networks where the config's sgd.widths
    does not name it. For the paper's six architectures, the one place the default run's
    widths live (sized for a 2-core CPU, LCN : VEC = 1 : 4 as the paper's): FCN 256, LCN 8,
    VEC, GAP, LAP 32 (the paper's 1024, 32, 128, 128, 128 are in config/paper.yaml).
    """

    name: str
    description: str
    build: Callable[[ModelHP, int, int], StaxTriple]
    invariant_infinite: tuple[str, ...] = ()
    invariant_finite: tuple[str, ...] = ()
    default_width: int = 128
    check_resolution: Callable[[int], None] = field(default=lambda r: None)
    kernel_cost: str = "pixel_pairs"
    layers: str = "conv"
    same_kernel_as: tuple[str, ...] = ()
    engine_recursion: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kernel_cost not in KERNEL_COSTS:
            raise ValueError(f"architecture {self.name!r}: kernel_cost must be one of {KERNEL_COSTS}")
        if self.layers not in LAYER_KINDS:
            raise ValueError(f"architecture {self.name!r}: layers must be one of {LAYER_KINDS}")
        if self.engine_recursion is not None and self.engine_recursion not in ENGINE_RECURSIONS:
            raise ValueError(
                f"architecture {self.name!r}: engine_recursion must be None or one of {ENGINE_RECURSIONS}"
            )

    @property
    def spatial(self) -> bool:
        """Does the kernel keep per-pixel state (anything but a dense network)?"""
        return self.kernel_cost != "dense"

    def kernel_entries(self, resolution: int) -> int:
        """Covariance entries per pair of R x R images that the kernel's recursion keeps."""
        pixels = int(resolution) ** 2
        return {"dense": 1, "pixels": pixels, "pixel_pairs": pixels * pixels}[self.kernel_cost]

    def stax(self, hp: ModelHP, width: int | None = None, num_classes: int = NUM_CLASSES) -> StaxTriple:
        return self.build(hp, int(width or self.default_width), num_classes)

    def claims(self, group: str, infinite: bool = True) -> bool:
        """Is this architecture claimed invariant to `group` (at infinite / finite width)?

        A claim for a group covers its declared subgroups (Group.subgroup_of): a model
        invariant to O(C)^d is invariant to O(C) x I_d and to the SO(3)^d path. The claims
        name groups, not channel counts: Thm 4.1 holds for images with any C channels.
        """
        from symflow.groups import GROUPS, supergroups

        if group in GROUPS and GROUPS.get(group).trivial:
            return True  # the identity
        claimed = set(self.invariant_infinite if infinite else self.invariant_finite)
        return bool(claimed & supergroups(group))


ARCHITECTURES: Registry[Architecture] = Registry("architecture")


def _dense(hp: ModelHP, width: int):
    from symflow._nt import stax

    return stax.Dense(width, W_std=hp.W_std, b_std=hp.b_std, parameterization="ntk")


def _conv_body(hp: ModelHP, width: int, local: bool = False) -> list:
    from symflow._nt import stax

    layer = stax.ConvLocal if local else stax.Conv
    f = hp.filter_size
    out = []
    for _ in range(hp.depth):
        out += [
            layer(width, (f, f), padding="CIRCULAR", W_std=hp.W_std, b_std=hp.b_std, parameterization="ntk"),
            stax.Relu(),
        ]
    return out


def build_fcn(hp: ModelHP, width: int, k: int) -> StaxTriple:
    from symflow._nt import stax

    layers = [stax.Flatten()]
    for _ in range(hp.depth):
        layers += [_dense(hp, width), stax.Relu()]
    return stax.serial(*layers, _dense(hp, k))


def build_lcn(hp: ModelHP, width: int, k: int) -> StaxTriple:
    from symflow._nt import stax

    return stax.serial(*_conv_body(hp, width, local=True), stax.Flatten(), _dense(hp, k))


def build_vec(hp: ModelHP, width: int, k: int) -> StaxTriple:
    from symflow._nt import stax

    return stax.serial(*_conv_body(hp, width), stax.Flatten(), _dense(hp, k))


def build_gap(hp: ModelHP, width: int, k: int) -> StaxTriple:
    from symflow._nt import stax

    return stax.serial(*_conv_body(hp, width), stax.GlobalAvgPool(), _dense(hp, k))


def make_lap(window: int) -> Callable[[ModelHP, int, int], StaxTriple]:
    def build_lap(hp: ModelHP, width: int, k: int) -> StaxTriple:
        from symflow._nt import stax

        return stax.serial(
            *_conv_body(hp, width),
            stax.AvgPool((window, window), strides=(window, window), padding="VALID"),
            stax.Flatten(),
            _dense(hp, k),
        )

    return build_lap


def _needs_window(window: int) -> Callable[[int], None]:
    def check(resolution: int) -> None:
        if resolution % window:
            raise ValueError(f"its {window}x{window} pooling window needs a resolution divisible by {window}")

    return check


# Theorem 4.1, as the largest group each model is invariant to; the groups declare what
# they are subgroups of (o3_shared < o3_pixel < o3d, perm < o3d, so3_path < o3_pixel),
# so a claim covers every subgroup. For C channels (the paper's C = 3) the groups are
# O(C) x I_d, O(C)^d, P(Cd), O(Cd): the same table (tests/test_symmetry_channels.py, C = 1).
_O3D = ("o3d",)
_O3_PIXEL = ("o3_pixel",)
_O3_SHARED = ("o3_shared",)

ARCHITECTURES.register(
    Architecture(
        "FCN",
        "fully connected: dense layers on the flattened image",
        build_fcn,
        invariant_infinite=_O3D,
        invariant_finite=_O3D,
        default_width=256,  # paper 1024
        kernel_cost="dense",
        layers="dense",
        engine_recursion="fcn",
    )
)
ARCHITECTURES.register(
    Architecture(
        "LCN",
        "locally connected (unshared 3x3 filters), flatten, dense readout",
        build_lcn,
        invariant_infinite=_O3_PIXEL,
        invariant_finite=_O3_PIXEL,
        default_width=8,  # paper 32
        kernel_cost="pixels",
        layers="local",
        same_kernel_as=("VEC",),
        engine_recursion="pixel",
    )
)
ARCHITECTURES.register(
    Architecture(
        "VEC",
        "3x3 circular conv layers, flatten (vectorise), dense readout",
        build_vec,
        invariant_infinite=_O3_PIXEL,
        invariant_finite=_O3_SHARED,
        default_width=32,  # paper 128
        kernel_cost="pixels",
        engine_recursion="pixel",
    )
)
ARCHITECTURES.register(
    Architecture(
        "GAP",
        "3x3 circular conv layers, global average pooling, dense readout",
        build_gap,
        invariant_infinite=_O3_SHARED,
        invariant_finite=_O3_SHARED,
        default_width=32,  # paper 128
        engine_recursion="spatial",
    )
)
for _w in (4, 8):
    ARCHITECTURES.register(
        Architecture(
            f"LAP{_w}",
            f"3x3 circular conv layers, {_w}x{_w} average pooling, flatten, dense readout",
            make_lap(_w),
            invariant_infinite=_O3_SHARED,
            invariant_finite=_O3_SHARED,
            default_width=32,  # paper 128
            check_resolution=_needs_window(_w),
            engine_recursion="spatial",
            meta={"window": _w},
        )
    )
