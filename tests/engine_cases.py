"""Cases shared by tests/test_engine.py and tests/make_engine_golden.py.

Each case is an architecture, hyperparameters, a resolution and a number of images
per side; its inputs are half random (standard normal), half real CIFAR-10 images
(the shipped sample, standardised per channel, block-averaged to R x R). x1 and x2
share no image, so (x1, x2) has no self-pairs and (x1, None) has n on its diagonal.

Also a plain numpy reference of the kernels in extended precision (np.longdouble),
written from neural-tangents' layer rules on the full pixel-pair covariance
[p, q] (not the engine's relative coordinates).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from symflow.architectures import ModelHP

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "symflow" / "cifar-10-sample"
GOLDEN = Path(__file__).resolve().parent / "data" / "engine_nt_golden.npz"

DEFAULT = ModelHP()
OTHER = ModelHP(depth=2, weight_variance=1.5, bias_variance=0.0, filter_size=5)

# (arch, hp, resolution, images per side)
CASES = (
    [(a, DEFAULT, 4, 4) for a in ("FCN", "LCN", "VEC", "GAP", "LAP4")]
    + [(a, OTHER, 4, 4) for a in ("FCN", "LCN", "VEC", "GAP", "LAP4")]
    + [(a, DEFAULT, 8, 4) for a in ("FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8")]
    + [(a, DEFAULT, 16, 2) for a in ("GAP", "LAP4")]
)


def case_id(arch: str, hp: ModelHP, resolution: int, n: int) -> str:
    return f"{arch}-{hp.tag}-R{resolution}-n{n}"


def real_images(resolution: int, count: int) -> np.ndarray:
    """The first `count` training images of the sample, standardised per channel, R x R, float64."""
    from symflow.data import downsample, load_cifar10

    x = load_cifar10(SAMPLE).x_train[:256].astype(np.float64) / 255.0
    x = (x - x.mean(axis=(0, 1, 2))) / x.std(axis=(0, 1, 2))
    return downsample(x[:count], resolution)


def inputs(resolution: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(x1, x2), each (n, R, R, 3) float64: n - n // 2 random and n // 2 real images."""
    rng = np.random.default_rng(1000 + resolution)
    rand = rng.standard_normal((2 * n, resolution, resolution, 3))
    real = real_images(resolution, 2 * n)
    h = n // 2
    x1 = np.concatenate([rand[: n - h], real[:h]])
    x2 = np.concatenate([real[h : 2 * h], rand[n - h : 2 * (n - h)]])
    return x1, x2


def reference(arch: str, hp: ModelHP, x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NNGP and NTK (n1, n2) in np.longdouble, from nt's layer rules on the full [p, q] covariance.

    The ReLU uses nt's form, theta = arctan2(sqrt(v1 v2 - K^2), K), except that a
    pixel paired with itself (same image, p = q) gets theta = 0 exactly, as it is
    in exact arithmetic; nt's own float64 evaluation rounds v1 v2 - K^2 there to
    about eps v^2 and theta to about sqrt(eps).
    """
    ld = np.longdouble
    pi = np.arccos(ld(-1))
    wv, bv = ld(hp.weight_variance), ld(hp.bias_variance)
    x1, x2 = np.asarray(x1, ld), np.asarray(x2, ld)
    n1, h, w, c = x1.shape
    n2 = x2.shape[0]
    same = np.array([[np.array_equal(a, b) for b in x2] for a in x1])  # (n1, n2)
    if arch == "FCN":
        d = h * w * c
        a1, a2 = x1.reshape(n1, d), x2.reshape(n2, d)
        k = a1 @ a2.T / d
        v1, v2 = (a1 * a1).sum(1) / d, (a2 * a2).sum(1) / d
        prod_shape = lambda u1, u2: u1[:, None] * u2[None, :]  # noqa: E731
        diag = same

        def conv(m, _pair):
            return m

    else:
        k = np.einsum("aijc,bklc->abijkl", x1, x2) / c  # [a, b, ph, pw, qh, qw]
        v1, v2 = (x1 * x1).sum(-1) / c, (x2 * x2).sum(-1) / c  # [a, ph, pw]
        prod_shape = lambda u1, u2: u1[:, None, :, :, None, None] * u2[None, :, None, None, :, :]  # noqa: E731
        eye = np.eye(h, dtype=bool)[:, :, None, None] & np.eye(w, dtype=bool)[None, None, :, :]  # [ph, qh, pw, qw]
        diag = same[:, :, None, None, None, None] & eye.transpose(0, 2, 1, 3)[None, None]
        f = hp.filter_size
        shifts = [(dh, dw) for dh in range(-(f // 2), f // 2 + 1) for dw in range(-(f // 2), f // 2 + 1)]

        def conv(m, pair):  # mean over the filter of m[p + delta, q + delta] (pair) or v[p + delta]
            axes = (2, 3, 4, 5) if pair else (1, 2)
            acc = 0
            for dh, dw in shifts:
                shift = (-dh, -dw, -dh, -dw) if pair else (-dh, -dw)
                acc = acc + np.roll(m, shift, axis=axes)
            return acc / ld(len(shifts))

    t = None
    for _ in range(hp.depth):
        k = wv * conv(k, True) + bv
        v1, v2 = wv * conv(v1, False) + bv, wv * conv(v2, False) + bv
        t = k if t is None else wv * conv(t, True) + k
        prod = prod_shape(v1, v2)
        sq = np.sqrt(np.maximum(prod - k * k, 0))
        theta = np.where((sq == 0) & (k == 0), pi / 2, np.arctan2(sq, k))
        theta = np.where(diag, 0, theta)
        sq = np.where(diag, 0, sq)
        k, t = (sq + (pi - theta) * k) / (2 * pi), t * (pi - theta) / (2 * pi)
        v1, v2 = v1 / 2, v2 / 2
    if arch == "FCN":
        rk, rt = k, t
    else:
        if arch in ("VEC", "LCN"):
            keep = np.broadcast_to(eye.transpose(0, 2, 1, 3), (h, w, h, w))  # p = q
            norm = h * w
        elif arch == "GAP":
            keep = np.ones((h, w, h, w), dtype=bool)
            norm = (h * w) ** 2
        else:  # LAPk: p, q in the same k x k block
            win = int(arch[3:])
            bh, bw = np.arange(h) // win, np.arange(w) // win
            keep = (bh[:, None, None, None] == bh[None, None, :, None]) & (
                bw[None, :, None, None] == bw[None, None, None, :]
            )
            norm = h * w * win * win
        rk = (k * keep).sum(axis=(2, 3, 4, 5)) / ld(norm)
        rt = (t * keep).sum(axis=(2, 3, 4, 5)) / ld(norm)
    nngp = wv * rk + bv
    return nngp, nngp + wv * rt
