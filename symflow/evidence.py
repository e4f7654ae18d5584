"""Effects with intervals, and the verdicts they support (the statistics of ``symflow.claims``).

Every cell of a claim (one configuration: architecture, transform, inference, width, m, ...)
is scored on the same test images, image by image: a cell is a (k, n) array of per-image
values (1/0 correct, squared error, S-Dist term) for its k successful runs on n test images.
A claim's effect is a function of the cells' means (a difference of accuracies, a step of a
chain, a slope of log MSE against log m, a variance ratio), and its 95% interval combines

- the test images, resampled jointly for every cell on the same test set (a paired
  bootstrap: B resamples of the n images, the same for every cell, the effect recomputed --
  refitted, for a slope -- on each), and
- the runs, where a cell's runs differ by their seed (a finite network's initialisation and
  tau; a kernel's tau on a group its architecture is not invariant to): the variance of a
  cell's mean is (MS_images + MS_runs - MS_residual) / (n k) in the two-way (runs x images)
  random-effects ANOVA. The bootstrap of the images estimates the first term, and carries
  each run's own image-by-image noise (MS_residual / (n k)), which comes off it; the runs'
  term MS_runs / (n k), estimated from the cell's own k runs on k - 1 degrees of freedom, is
  carried to the effect by its gradient (the delta method), and the few degrees of freedom
  to a Student t quantile by Welch-Satterthwaite.

Why not a bootstrap over seeds as well: with the two to four seeds a CPU budget affords, a
bootstrap of runs rests on a spread estimated from one to three degrees of freedom without
saying so, and resampling images inside it counts each run's own image-by-image noise twice.
In the calibration study (tests/test_evidence.py's synthetic cells) a nested bootstrap of runs
and images covered the true effect in 97-98.5% of 200 draws per case (too wide where networks
are involved), the t interval here in 93.2-96.0% of 500 in each of eight cases (2026-12-07).

A cell whose runs differ by their seed and that has a single successful run has no measured
spread: an effect that needs it is not estimated (:class:`NotEstimable`); nothing here assumes
a spread that was not measured.

Verdicts (:func:`direction`, :func:`closeness`, :func:`conjunction`):
    holds         the interval lies on the claimed side of zero (a direction), or inside
                  the claim's equivalence margin (a closeness)
    fails         the interval lies on the other side, or outside the margin
    inconclusive  neither: :func:`what_decides` says how many seeds (or test images) would
                  decide it at the observed effect
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000  # bootstrap resamples of the test images (Monte Carlo error of the se: ~1.6%)
RESAMPLE_BLOCK = 2_000_000  # bootstrap weights drawn at once (resamples x images)
VERDICTS = ("holds", "fails", "inconclusive", "untestable")


class NotEstimable(Exception):
    """The effect cannot be estimated from these cells (the message says why: e.g. one seed)."""


@dataclass(frozen=True)
class Cell:
    """Per-image values of one configuration's successful runs on one test set.

    values: (k, n) float64, a row per successful run; testset: the identity of the test images
    (cells on the same test set are paired); seeded: whether the runs differ by their seed (so
    that their spread is part of the cell's noise); failed: the failed runs left out."""

    label: str
    values: np.ndarray
    testset: str
    seeded: bool
    failed: int = 0

    def __post_init__(self):
        v = np.asarray(self.values, dtype=np.float64)
        if v.ndim == 1:
            v = v[None, :]
        if v.ndim != 2:
            raise ValueError(f"{self.label}: values must be (runs, images), got shape {v.shape}")
        object.__setattr__(self, "values", v)

    @property
    def k(self) -> int:
        return int(self.values.shape[0])

    @property
    def n(self) -> int:
        return int(self.values.shape[1])

    @property
    def mean(self) -> float:
        return float(self.values.mean()) if self.k else math.nan

    @property
    def run_means(self) -> np.ndarray:
        return self.values.mean(axis=1)

    def anova(self) -> tuple[float, float]:
        """(MS_runs, MS_residual) of the (k, n) table (two-way ANOVA, runs x images); (0, 0)
        for an unseeded cell or a single run. E[MS_runs] = n sigma_s^2 + sigma_e^2 and
        E[MS_residual] = sigma_e^2, with sigma_s^2 the variance of the seed effect and sigma_e^2
        each run's own image-by-image noise."""
        if not self.seeded or self.k < 2:
            return 0.0, 0.0
        y = self.values
        k, n = y.shape
        run = y.mean(axis=1, keepdims=True)
        img = y.mean(axis=0, keepdims=True)
        grand = y.mean()
        ms_run = n * float(((run - grand) ** 2).sum()) / (k - 1)
        ms_res = float(((y - run - img + grand) ** 2).sum()) / ((k - 1) * max(n - 1, 1))
        return ms_run, ms_res

    def text(self, scale: float = 100.0, digits: int = 1) -> str:
        """'23.4 (3 seeds)' / '23.4 (1 run)': the mean (in percent for accuracies) and its runs."""
        runs = f"{self.k} seed{'s' if self.k != 1 else ''}" if self.seeded else f"{self.k} run{'s' if self.k != 1 else ''}"
        fail = f", {self.failed} failed" if self.failed else ""
        return f"{self.mean * scale:.{digits}f} ({runs}{fail})"


@dataclass(frozen=True)
class Estimate:
    """An effect, its interval and where its noise comes from."""

    effect: float
    low: float
    high: float
    se: float
    se_images: float  # the paired bootstrap's part
    se_seeds: float  # the runs' part
    df: float  # Welch-Satterthwaite degrees of freedom (inf: images only)
    k: int  # the fewest successful runs of a seeded cell (0: none seeded)
    n: int  # the fewest test images of a cell
    cells: tuple[Cell, ...] = field(default=(), repr=False)

    def text(self, scale: float = 100.0, unit: str = " points", digits: int = 1) -> str:
        return (f"{self.effect * scale:+.{digits}f}{unit} [{self.low * scale:+.{digits}f}, "
                f"{self.high * scale:+.{digits}f}]")


def _t_quantile(df: float, level: float = LEVEL) -> float:
    from scipy import stats

    q = 0.5 + level / 2
    return float(stats.norm.ppf(q)) if not math.isfinite(df) else float(stats.t.ppf(q, df))


def _resampled_means(rng: np.random.Generator, stack: np.ndarray, resamples: int) -> np.ndarray:
    """(resamples, J) means of the rows of `stack` (J, n) over bootstrap resamples of its n
    columns, the same resample for every row: each resample draws n image indices with
    replacement, counted per image (in chunks of about RESAMPLE_BLOCK draws)."""
    j, n = stack.shape
    chunk = max(1, min(resamples, RESAMPLE_BLOCK // max(n, 1)))
    out = []
    done = 0
    while done < resamples:
        c = min(chunk, resamples - done)
        idx = rng.integers(0, n, size=(c, n)) + np.arange(c)[:, None] * n
        w = np.bincount(idx.ravel(), minlength=c * n).reshape(c, n).astype(np.float64)
        out.append((w @ stack.T) / n)  # (c, J)
        done += c
    return np.concatenate(out)


def estimate(cells: Sequence[Cell], fn: Callable[[np.ndarray], np.ndarray], *, seed: int = 0,
             resamples: int = RESAMPLES, level: float = LEVEL) -> Estimate:
    """The effect fn(cell means) with its `level` interval (see the module's docstring).

    fn maps an array (..., J) of the J cells' means to (...): it is called on the point
    estimate, on every bootstrap resample (vectorised), and on small perturbations (its
    gradient). `seed` fixes the resamples: the same cells and seed give the same interval."""
    cells = tuple(cells)
    if not cells:
        raise NotEstimable("no cells")
    for c in cells:
        if c.k == 0:
            raise NotEstimable(f"{c.label}: no successful run" + (f" ({c.failed} failed)" if c.failed else ""))
        if c.seeded and c.k < 2:
            raise NotEstimable(f"{c.label}: {c.k} successful seed; its spread between seeds needs at least 2")
    means = np.array([c.mean for c in cells])
    effect = float(np.asarray(fn(means)))
    if not math.isfinite(effect):
        raise NotEstimable("the effect is not finite at these means: " + ", ".join(c.label for c in cells))

    # images: one bootstrap per test set, the same resample for every cell on it
    rng = np.random.default_rng(seed)
    by_set: dict[str, list[int]] = {}
    for j, c in enumerate(cells):
        by_set.setdefault(c.testset, []).append(j)
    for testset, idx in by_set.items():
        sizes = {cells[j].n for j in idx}
        if len(sizes) != 1:
            raise ValueError(f"test set {testset}: cells have {sorted(sizes)} images; the same images are paired")
    image_means = {j: cells[j].values.mean(axis=0) for j in range(len(cells))}  # (n,) per cell: mean over runs
    boot = np.empty((resamples, len(cells)))
    boot[:] = means
    # every test set is resampled on its own (independent images); the others stay at their means
    per_set_var = []
    for testset, idx in sorted(by_set.items()):
        stack = np.stack([image_means[j] for j in idx])  # (J_s, n)
        sub = _resampled_means(rng, stack, resamples)
        part = np.broadcast_to(means, (resamples, len(cells))).copy()
        part[:, idx] = sub
        vals = np.asarray(fn(part), dtype=np.float64)
        if not np.isfinite(vals).all():
            raise NotEstimable("the effect is not finite on some resamples of the test images: "
                               + ", ".join(c.label for c in cells))
        per_set_var.append(float(np.var(vals, ddof=1)))
    var_images = float(sum(per_set_var))

    # runs: Var(cell mean) = (MS_images + MS_runs - MS_residual) / (n k). The bootstrap of the
    # images estimates the first term (per-image contrasts of run means, whose variance carries
    # MS_residual / (n k) of each cell); the runs' term MS_runs / (n k), with k - 1 degrees of
    # freedom, is carried to the effect through fn's gradient, and MS_residual / (n k) comes
    # off the images' part so that each run's own noise is counted once.
    # A cell that stands at several places of the effect (the same runs twice) has one seed
    # effect: its places' gradients add before they are squared.
    grad = _gradient(fn, means)
    by_cell: dict[int, tuple[Cell, float]] = {}
    for j, c in enumerate(cells):
        g = by_cell.get(id(c), (c, 0.0))[1]
        by_cell[id(c)] = (c, g + grad[j])
    seed_parts, residual = [], 0.0
    for c, g in by_cell.values():
        if c.seeded and c.k >= 2:
            ms_run, ms_res = c.anova()
            seed_parts.append((g**2 * ms_run / (c.n * c.k), c.k - 1))
            residual += g**2 * ms_res / (c.n * c.k)
    var_images = max(var_images - residual, 0.0)
    var_seeds = float(sum(v for v, _ in seed_parts))
    var = var_images + var_seeds
    n_min = min(c.n for c in cells)
    denom = (var_images**2 / max(n_min - 1, 1)) + sum(v**2 / d for v, d in seed_parts if v > 0)
    df = (var**2 / denom) if denom > 0 and var_seeds > 0 else math.inf
    se = math.sqrt(var)
    half = _t_quantile(df, level) * se
    seeded = [c.k for c in cells if c.seeded]
    return Estimate(effect, effect - half, effect + half, se, math.sqrt(var_images), math.sqrt(var_seeds), df,
                    min(seeded) if seeded else 0, n_min, cells)


def _gradient(fn, x: np.ndarray) -> np.ndarray:
    """Central differences of fn at x (step relative to the scale of x)."""
    g = np.zeros_like(x)
    for j in range(len(x)):
        h = 1e-6 * max(1.0, abs(x[j]))
        up, down = x.copy(), x.copy()
        up[j] += h
        down[j] -= h
        g[j] = (float(np.asarray(fn(up))) - float(np.asarray(fn(down)))) / (2 * h)
    return g


# -- effects: functions of the cell means -----------------------------------------------------


def difference(a: int = 0, b: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """mean of cell a minus mean of cell b."""
    return lambda m: m[..., a] - m[..., b]


def contrast(weights: Sequence[float]) -> Callable[[np.ndarray], np.ndarray]:
    """sum_j w_j mean_j (e.g. a difference of differences)."""
    w = np.asarray(weights, dtype=np.float64)
    return lambda m: m @ w


def slope(x: Sequence[float], log_y: bool = False) -> Callable[[np.ndarray], np.ndarray]:
    """The least-squares slope of the cell means (or their logs) against x (already log m, log n, t...)."""
    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean()
    ss = float((xc**2).sum())
    if ss <= 0:
        raise NotEstimable("a slope needs two distinct x")

    def f(m):
        y = np.log(np.clip(m, 1e-300, None)) if log_y else m
        return (y @ xc) / ss

    return f


# -- verdicts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One judged effect of a claim: its label, the claim it makes and the verdict."""

    label: str
    verdict: str  # holds | fails | inconclusive
    claim: str  # e.g. '> 0', '< 0', 'within +-2.0'
    estimate: Estimate | None = None
    why: str = ""  # why it could not be estimated, or what else decided its verdict
    # how it was judged, to judge it again at another level (family_wise): direction (arg: sign),
    # closeness (arg: margin), at_most (arg: bound); "" for an exact or special part, whose
    # `refails(level)`, where given, says whether it still fails at that level
    kind: str = ""
    arg: float = 0.0
    refails: Callable[[float], bool] | None = field(default=None, repr=False)
    decide: str = ""  # what would decide an inconclusive part
    margin: float | None = None
    scale: float = 100.0
    unit: str = " points"

    def text(self) -> str:
        if self.estimate is None:
            return f"{self.label}: {self.verdict} ({self.why})"
        why = f" ({self.why})" if self.why else ""
        digits = 1 if self.scale == 100.0 else 3
        est = self.estimate.text(self.scale, self.unit, digits)
        return f"{self.label}: {est} (claimed {self.claim}) {self.verdict}{why}"


def direction(label: str, est: Estimate, sign: int, *, scale: float = 100.0, unit: str = " points") -> Part:
    """A claim that the effect is > 0 (sign +1) or < 0 (sign -1)."""
    lo, hi = (est.low, est.high) if sign > 0 else (-est.high, -est.low)
    verdict = "holds" if lo > 0 else "fails" if hi < 0 else "inconclusive"
    part = Part(label, verdict, "> 0" if sign > 0 else "< 0", est, scale=scale, unit=unit, kind="direction", arg=sign)
    return _with_decide(part, abs(est.effect))


def closeness(label: str, est: Estimate, margin: float, *, scale: float = 100.0, unit: str = " points") -> Part:
    """A claim that the effect lies within +-margin (an equivalence margin, stated with the claim)."""
    verdict = ("holds" if -margin < est.low and est.high < margin
               else "fails" if est.low > margin or est.high < -margin else "inconclusive")
    part = Part(label, verdict, f"within +-{margin * scale:g}{unit}", est, margin=margin, scale=scale, unit=unit,
                kind="closeness", arg=margin)
    # to hold, the interval's half-width must fit between the effect and the margin; to fail,
    # between the margin and the effect
    return _with_decide(part, abs(margin - abs(est.effect)))


def at_most(label: str, est: Estimate, bound: float, *, scale: float = 100.0, unit: str = " points") -> Part:
    """A claim that the effect does not exceed `bound` (its interval below it)."""
    verdict = "holds" if est.high < bound else "fails" if est.low > bound else "inconclusive"
    part = Part(label, verdict, f"< {bound * scale:g}{unit}", est, margin=bound, scale=scale, unit=unit,
                kind="at_most", arg=bound)
    return _with_decide(part, abs(bound - est.effect))


JUDGES = {"direction": lambda label, est, arg: direction(label, est, int(arg)),
          "not_against": lambda label, est, arg: direction(label, est, int(arg)),  # a trend's step
          "closeness": lambda label, est, arg: closeness(label, est, arg),
          "at_most": lambda label, est, arg: at_most(label, est, arg)}


def not_estimable(label: str, why: str) -> Part:
    """A part that could not be estimated (e.g. a cell with one seed): inconclusive, saying why."""
    decide = ("at least 2 successful seeds per cell" if "seed" in why or "no successful run" in why
              else "")
    return Part(label, "inconclusive", "", None, why=why, decide=decide)


def _with_decide(part: Part, distance: float) -> Part:
    if part.verdict != "inconclusive":
        return part
    return Part(**{**part.__dict__, "decide": what_decides(part.estimate, distance)})


def what_decides(est: Estimate, distance: float) -> str:
    """How many seeds per cell (or test images) would make the interval's half-width smaller
    than `distance` (the gap between the effect and the nearest decision boundary), at the
    observed effect and variance components (z = 2; a planning figure, not a promise)."""
    if distance <= 0 or not math.isfinite(distance):
        return "no amount of data at this effect: it sits on the boundary"
    target = (distance / 2.0) ** 2  # the variance the interval may have
    v_img, v_seed = est.se_images**2, est.se_seeds**2
    if v_seed > 0 and v_img < target:
        k = math.ceil(est.k * v_seed / (target - v_img))
        return f"about {max(k, est.k + 1)} successful seeds per cell (now {est.k})"
    if v_img > 0:
        # more test images shrink both the images' part and each run's own noise
        n = math.ceil(est.n * (v_img + v_seed) / target) if v_seed == 0 else None
        if n is not None:
            return f"about {n:,} test images (now {est.n:,})"
        k = "more seeds and " if v_seed > 0 else ""
        return f"{k}more test images than the {est.n:,} here (the images alone leave the interval too wide)"
    return "more data"


def at_level(est: Estimate, level: float) -> Estimate:
    """The same estimate with its interval at another level (its se and degrees of freedom kept)."""
    half = _t_quantile(est.df, level) * est.se
    return Estimate(est.effect, est.effect - half, est.effect + half, est.se, est.se_images, est.se_seeds, est.df,
                    est.k, est.n, est.cells)


def still_fails(part: Part, level: float) -> bool:
    """Does a failing part still fail with its interval at `level`? (An exact part, computed
    rather than sampled, does; a part judged some other way says so through `refails`.)"""
    if part.verdict != "fails":
        return False
    if part.refails is not None:
        return bool(part.refails(level))
    est = part.estimate
    if est is None or not (est.se > 0 and math.isfinite(est.se)) or part.kind not in JUDGES:
        return True
    return JUDGES[part.kind](part.label, at_level(est, level), part.arg).verdict == "fails"


def family_wise(parts: Sequence[Part], level: float = LEVEL) -> list[Part]:
    """Parts of one claim with its failures controlled family-wise. A claim of K parts fails when
    one part fails: a union of K tests, so each failure must stand at level 1 - (1 - level) / K
    (Bonferroni), or it becomes inconclusive. (Holding needs every part to hold: an intersection of
    tests, valid at each part's own level, so holds are left as they are.)"""
    k = len(parts)
    if k <= 1:
        return list(parts)
    family = 1 - (1 - level) / k
    out = []
    for p in parts:
        if p.verdict == "fails" and not still_fails(p, family):
            why = (f"fails at {level:.0%} alone, not at the family-wise {family:.2%} of a claim of {k} parts"
                   + (f"; {p.why}" if p.why else ""))
            p = Part(**{**p.__dict__, "verdict": "inconclusive", "why": why,
                        "decide": p.decide or "more seeds or test images (its failure is not yet family-wise)"})
        out.append(p)
    return out


def conjunction(parts: Sequence[Part]) -> str:
    """A claim made of parts: fails if any part fails, holds if every part holds, else inconclusive."""
    verdicts = {p.verdict for p in parts}
    if not parts:
        return "inconclusive"
    if "fails" in verdicts:
        return "fails"
    if verdicts == {"holds"}:
        return "holds"
    return "inconclusive"


def decisive(parts: Sequence[Part], verdict: str) -> Part | None:
    """The part a reader should see for the verdict: the clearest failure, the weakest hold, or
    the inconclusive part nearest to being decided."""
    def gap(p: Part) -> float:  # how far the interval is from the boundary, in se units
        e = p.estimate
        if e is None or e.se == 0:
            return math.inf if e is not None else -math.inf
        if p.margin is not None:
            return (p.margin - max(abs(e.low), abs(e.high))) / e.se
        return min(abs(e.low), abs(e.high)) / e.se * (1 if p.verdict != "inconclusive" else -1)

    pool = [p for p in parts if p.verdict == verdict]
    if not pool:
        return None
    if verdict == "fails":
        return max(pool, key=lambda p: abs(gap(p)) if math.isfinite(gap(p)) else 0)
    if verdict == "holds":
        return min(pool, key=gap)
    estimated = [p for p in pool if p.estimate is not None]
    return max(estimated, key=gap) if estimated else pool[0]
