"""Transform groups: a fixed random element tau of a group, applied to every image.

Each group is a registry entry with a name, a sampler that draws one element
from an explicit seed, and its action on a batch of images of shape
(N, H, W, C). The paper's groups (Sec. 5.1 and App. B.3 of Xiao & Pennington
2022) are registered here through the same call a plug-in uses. The paper's
images have C = 3 colour channels, hence the names; every group but the path
acts on any C, read from the image shape (d = H W pixels):

    identity   I_Cd
    o3_shared  O(C) x I_d   one Haar-random C x C orthogonal Q on every pixel
    o3_pixel   O(C)^d       an independent Haar-random C x C orthogonal Q per pixel
    perm       P(Cd)        a random permutation of all Cd coordinates
    o3d        O(Cd)        one Haar-random Cd x Cd orthogonal matrix
    so3_path   tau_t = exp(-t A), A skew-symmetric 3x3 per pixel (App. E); the
               continuous path from the identity (t = 0) to a Haar-random
               element of SO(3)^d (t = 1). Its spec names t: ``so3_path-t0.5``.
               C = 3 only (a one-line error otherwise; SO(1) is trivial).

For one channel, O(1) = {+1, -1}: ``o3_shared`` multiplies the whole image by one
random sign (so half the seeds draw +1, the identity), ``o3_pixel`` each pixel by its
own random sign. For C = 3 the draws are the ones symflow always made (the same
generator calls in the same order), so CIFAR-10's data are unchanged.

A transform *spec* is the group name, plus ``-t<value>`` for a path group.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from symflow.registry import Registry

Element = dict[str, np.ndarray]


@dataclass(frozen=True)
class Group:
    """A transform group usable as a data transformation.

    sample(rng, image_shape, t) -> element (a dict of arrays; t is None unless
    the group is a path). apply(element, x) -> tau x for x of shape (N, H, W, C).
    """

    name: str
    description: str
    sample: Callable[[np.random.Generator, tuple[int, ...], float | None], Element]
    apply: Callable[[Element, np.ndarray], np.ndarray]
    path: bool = False  # a one-parameter path tau_t, t in [0, 1]
    random: bool = True  # False: one element only, so every seed gives the same data
    trivial: bool = False  # the group {I}: tau x = x (every model is invariant to it)
    orthogonal: bool = True  # tau preserves the Euclidean norm of each image
    subgroup_of: tuple[str, ...] = field(default_factory=tuple)  # a model invariant to these is to this one
    tags: tuple[str, ...] = field(default_factory=tuple)
    label: str = ""  # for figures (matplotlib mathtext); empty: the name


GROUPS: Registry[Group] = Registry("transform group")

# the trivial group: the untransformed data every invariance is measured against
IDENTITY = "identity"


# -- specs -------------------------------------------------------------------

_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_]+?)(?:-t(?P<t>\d+(?:\.\d+)?))?$")


@dataclass(frozen=True)
class TransformSpec:
    group: str
    t: float | None = None

    @property
    def id(self) -> str:
        return self.group if self.t is None else f"{self.group}-t{format_t(self.t)}"

    def __str__(self) -> str:
        return self.id


def format_t(t: float) -> str:
    """Canonical text for a path parameter: 0.5 -> '0.5', 1 -> '1.0' (6 decimals at most)."""
    text = f"{float(t):.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def parse_spec(spec: str) -> TransformSpec:
    """'o3_pixel' -> TransformSpec('o3_pixel'); 'so3_path-t0.25' -> ('so3_path', 0.25)."""
    match = _SPEC.match(str(spec))
    if not match:
        raise ValueError(f"bad transform spec {spec!r}: expected NAME or NAME-t<number>")
    name, t = match.group("name"), match.group("t")
    group = GROUPS.get(name)
    if group.path and t is None:
        raise ValueError(f"transform {name!r} is a path: give its t, e.g. {name}-t0.5")
    if not group.path and t is not None:
        raise ValueError(f"transform {name!r} takes no t (got {spec!r})")
    tval = None if t is None else float(t)
    if tval is not None and not 0.0 <= tval <= 1.0:
        raise ValueError(f"transform {spec!r}: t must lie in [0, 1]")
    return TransformSpec(name, tval)


def spec_id(group: str, t: float | None = None) -> str:
    return TransformSpec(group, t).id


def supergroups(name: str) -> set[str]:
    """`name` and every registered group it is (transitively) declared a subgroup of."""
    seen, todo = set(), [name]
    while todo:
        g = todo.pop()
        if g in seen:
            continue
        seen.add(g)
        if g in GROUPS:
            todo.extend(GROUPS.get(g).subgroup_of)
    return seen


def canonical_seed(spec: str | TransformSpec, seed: int) -> int:
    """The seed whose data equal `seed`'s: 0 for a group with a single element (identity)."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    return int(seed) if GROUPS.get(spec.group).random else 0


# -- sampling and applying -----------------------------------------------------


def element_rng(group: str, seed: int) -> np.random.Generator:
    """The generator for the element of `group` drawn with `seed`.

    Keyed by (seed, group name) so that two groups never share a stream, and the
    path parameter t is *not* part of the key: every t of a path uses the same
    A, which is what makes tau_t a path.
    """
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(group.encode())]))


def sample_element(spec: str | TransformSpec, seed: int, image_shape: tuple[int, ...]) -> Element:
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    group = GROUPS.get(spec.group)
    return group.sample(element_rng(spec.group, seed), tuple(image_shape), spec.t)


def transform_images(spec: str | TransformSpec, seed: int, x: np.ndarray, element: Element | None = None) -> np.ndarray:
    """tau x for a batch x of shape (N, H, W, C); computed in float64, returned in x's dtype."""
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    group = GROUPS.get(spec.group)
    if element is None:
        element = sample_element(spec, seed, x.shape[1:])
    out = group.apply(element, np.asarray(x, dtype=np.float64))
    return out.astype(x.dtype, copy=False)


def haar_orthogonal(rng: np.random.Generator, n: int, batch: tuple[int, ...] = ()) -> np.ndarray:
    """Haar-distributed orthogonal matrices of shape batch + (n, n) (Mezzadri 2007)."""
    z = rng.standard_normal(batch + (n, n))
    q, r = np.linalg.qr(z)
    d = np.sign(np.diagonal(r, axis1=-2, axis2=-1))
    d[d == 0] = 1.0
    return q * d[..., None, :]


def _skew(v: np.ndarray) -> np.ndarray:
    """[v]_x for v of shape (..., 3)."""
    z = np.zeros(v.shape[:-1])
    return np.stack(
        [
            np.stack([z, -v[..., 2], v[..., 1]], -1),
            np.stack([v[..., 2], z, -v[..., 0]], -1),
            np.stack([-v[..., 1], v[..., 0], z], -1),
        ],
        -2,
    )


def _haar_so3_angle(rng: np.random.Generator, size: int) -> np.ndarray:
    """Rotation angles of Haar-random SO(3) elements: density (1 - cos a) / pi on [0, pi]."""
    u = rng.uniform(0.0, 1.0, size) * np.pi  # solve a - sin(a) = u by bisection
    lo, hi = np.zeros(size), np.full(size, np.pi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = mid - np.sin(mid) < u
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def skew_exp(a: np.ndarray, t: float) -> np.ndarray:
    """exp(-t A) for skew-symmetric A = [a]_x, by Rodrigues' formula (exact)."""
    theta = np.linalg.norm(a, axis=-1)
    safe = np.where(theta > 0, theta, 1.0)
    k = _skew(a / safe[..., None])
    s = np.sin(t * theta)[..., None, None]
    c = (1.0 - np.cos(t * theta))[..., None, None]
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye - s * k + c * (k @ k)


# -- the paper's groups ------------------------------------------------------------


def _pixels(shape: tuple[int, ...]) -> int:
    if len(shape) != 3:
        raise ValueError(f"images must be (H, W, C), got {shape}")
    return shape[0] * shape[1]


def _channels(shape: tuple[int, ...]) -> int:
    """C, the channel count of (H, W, C) images: the groups act on any C >= 1."""
    _pixels(shape)
    if shape[-1] < 1:
        raise ValueError(f"images must have at least one channel, got shape {shape}")
    return int(shape[-1])


def _apply_per_pixel(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    out = np.einsum("pij,npj->npi", q, x.reshape(n, h * w, c))
    return out.reshape(x.shape)


GROUPS.register(
    Group(
        name=IDENTITY,
        label=r"$I_{3d}$",
        description="I_Cd: no transformation",
        sample=lambda rng, shape, t: {},
        apply=lambda el, x: x.copy(),
        random=False,
        trivial=True,
    )
)
GROUPS.register(
    Group(
        name="o3_shared",
        label=r"$O(3)\otimes I_d$",
        description="O(C) x I_d: one Haar-random CxC orthogonal matrix on every pixel (C = 1: one random sign)",
        subgroup_of=("o3_pixel",),
        sample=lambda rng, shape, t: {"q": haar_orthogonal(rng, _channels(shape))},
        apply=lambda el, x: x @ el["q"].T,
    )
)
GROUPS.register(
    Group(
        name="o3_pixel",
        label=r"$O(3)^d$",
        description="O(C)^d: an independent Haar-random CxC orthogonal matrix per pixel (C = 1: a sign per pixel)",
        subgroup_of=("o3d",),
        sample=lambda rng, shape, t: {"q": haar_orthogonal(rng, _channels(shape), (_pixels(shape),))},
        apply=lambda el, x: _apply_per_pixel(el["q"], x),
    )
)
GROUPS.register(
    Group(
        name="perm",
        label=r"$P(3d)$",
        description="P(Cd): a random permutation of all Cd coordinates",
        subgroup_of=("o3d",),
        sample=lambda rng, shape, t: {"perm": rng.permutation(int(np.prod(shape)))},
        apply=lambda el, x: x.reshape(x.shape[0], -1)[:, el["perm"]].reshape(x.shape),
    )
)
GROUPS.register(
    Group(
        name="o3d",
        label=r"$O(3d)$",
        description="O(Cd): one Haar-random orthogonal matrix on the flattened image",
        sample=lambda rng, shape, t: {"q": haar_orthogonal(rng, int(np.prod(shape)))},
        apply=lambda el, x: (x.reshape(x.shape[0], -1) @ el["q"].T).reshape(x.shape),
    )
)


def _sample_so3_path(rng: np.random.Generator, shape: tuple[int, ...], t: float | None) -> Element:
    d = _pixels(shape)
    if _channels(shape) != 3:
        raise ValueError(
            f"so3_path needs 3 channels: the rotation path exp(-tA) is implemented for SO(3) only "
            f"(for C = 1, SO(1) is trivial), images have {shape[-1]}"
        )
    axis = rng.standard_normal((d, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = _haar_so3_angle(rng, d)
    a = axis * angle[:, None]  # A_p = [a_p]_x, so tau_1 = exp(-A) is Haar on SO(3)
    return {"a": a, "q": skew_exp(a, 0.0 if t is None else t)}


GROUPS.register(
    Group(
        name="so3_path",
        label=r"$\tau_t=e^{-tA}$",
        description=(
            "tau_t = exp(-t A), A = (A_1..A_d) skew-symmetric 3x3 per pixel, drawn so that "
            "tau_1 is a Haar-random element of SO(3)^d; t = 0 is the identity (3 channels only)"
        ),
        sample=_sample_so3_path,
        apply=lambda el, x: _apply_per_pixel(el["q"], x),
        path=True,
        subgroup_of=("o3_pixel",),  # a path in SO(3)^d, inside O(3)^d
    )
)
