"""The data transform tau on the device, applied to each batch after augmentation and normalisation.

The element of the group is symflow.groups' own: :func:`symflow.groups.sample_element` draws it
from (group, seed) exactly as for CIFAR-10 (so O(3)^d with seed 1 is the same family of draws
at any resolution), and this module only applies it with jax on a batch, inside the jitted
step, to the final network input of both training and evaluation (App. B.3):

    identity   x
    o3_shared  O(3) x I_d   one 3x3 orthogonal Q on every pixel's RGB vector
    o3_pixel   O(3)^d       Q_(h,w) on pixel (h, w): independent, fixed per seed
    so3_path   tau_t        a per-pixel rotation, as o3_pixel
    perm       P(3d)        one permutation of all 3d = H W 3 input coordinates
    o3d        O(3d)        one 3d x 3d orthogonal matrix (small images only: at 224 x 224 it
                            would be 150,528^2 floats, 90 GB)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from symflow.groups import parse_spec, sample_element

O3D_MAX_DIM = 16_384  # largest 3d for which the O(3d) matrix (1 GiB in float32) is applied on device


def _per_pixel(el, x):
    import jax.numpy as jnp

    n, h, w, c = x.shape
    return jnp.einsum("pij,npj->npi", el["q"], x.reshape(n, h * w, c)).reshape(x.shape)


def _shared(el, x):
    return x @ el["q"].T


def _perm(el, x):
    import jax.numpy as jnp

    return jnp.take(x.reshape(x.shape[0], -1), el["perm"], axis=1).reshape(x.shape)


def _dense(el, x):
    return (x.reshape(x.shape[0], -1) @ el["q"].T).reshape(x.shape)


DEVICE_ACTIONS: dict[str, Callable[[dict, Any], Any]] = {
    "identity": lambda el, x: x,
    "o3_shared": _shared,
    "o3_pixel": _per_pixel,
    "so3_path": _per_pixel,
    "perm": _perm,
    "o3d": _dense,
}


@dataclass(frozen=True)
class DeviceTransform:
    """tau of `spec` drawn with `seed` for images of `image_shape` (H, W, 3), applied by __call__
    inside jit. `element` holds jax arrays: pass it as a jit argument (not a closed-over constant)."""

    spec: str
    seed: int
    image_shape: tuple[int, int, int]
    element: dict

    def __call__(self, x, element: dict | None = None):
        return DEVICE_ACTIONS[parse_spec(self.spec).group](self.element if element is None else element, x)


def device_transform(spec: str, seed: int, image_shape: tuple[int, int, int]) -> DeviceTransform:
    """The fixed element tau of `spec` for `seed`, its arrays on the default device (float32, int32)."""
    import jax.numpy as jnp

    parsed = parse_spec(spec)
    if parsed.group not in DEVICE_ACTIONS:
        raise ValueError(f"transform {spec!r} has no action on device; those that do: {', '.join(DEVICE_ACTIONS)}")
    dim = int(np.prod(image_shape))
    if parsed.group == "o3d" and dim > O3D_MAX_DIM:
        raise ValueError(f"transform o3d on {image_shape} images needs a {dim} x {dim} matrix "
                         f"({4 * dim * dim / 2**30:.0f} GiB): only 3d <= {O3D_MAX_DIM} is supported")
    element = sample_element(parsed, seed, tuple(image_shape))
    arrays = {k: jnp.asarray(v, jnp.int32 if k == "perm" else jnp.float32) for k, v in element.items() if k != "a"}
    return DeviceTransform(parsed.id, int(seed), tuple(int(s) for s in image_shape), arrays)


def normalise(images, mean, std, dtype=None):
    """(x - mean) / std per channel of uint8 images, in float32 (cast to `dtype` after, if given)."""
    import jax.numpy as jnp

    x = (images.astype(jnp.float32) - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
    return x if dtype is None else x.astype(dtype)
