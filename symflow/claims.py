"""The paper's claims, evaluated on a run's gathered tables: a verdict per claim.

The claims are data (``symflow/claims.yaml``: id, source, the paper's words, what is
compared, the table read, a named predicate with its parameters, and the scale at which
the paper makes the claim). Each predicate here takes one gathered table and returns a
verdict: ``holds``, ``fails`` or ``untestable`` (with the reason: a missing table or runs,
too few successful runs, or a run at a scale where the paper does not make the claim).
Failed runs never count as data points; they are counted beside the measurement.

Tables (what :func:`load_tables` reads from a results folder):
    audit   results/symmetry_audit.csv (symflow.audit.AUDIT_COLUMNS)
    figS1   results/tables/figS1.csv (symflow.ensemble.sdist_table)
    runs, fig2, fig3, fig4, figS5, figS6   results/tables/<name>.csv (symflow.results.RUN_COLUMNS)
    imagenet_slopes   results/tables/imagenet_slopes.csv (symflow.imagenet.curves.SLOPE_COLUMNS), only
            where the config has an ``imagenet`` section (the claims on it are untestable otherwise)

The noise model of accuracy comparisons is stated in claims.yaml's header.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

def _claims_file() -> Path:
    from symflow.package_data import CLAIMS, path

    return path(CLAIMS)


CLAIMS_FILE = _claims_file()  # package data: symflow/claims.yaml
# The spread of a finite network's test accuracy between runs that differ only in their
# initialisation (and batch order), used for a point with a single successful run, whose own
# spread is unknown: the binomial error of the test set alone understates it. Measured on the
# shipped sample at 8 x 8 (bench/ensemble_gap.py): VEC_32 NN+ at m = 250, eight converged
# members, sd 0.021; VEC_16 NN+ at m = 250, six, sd 0.023; VEC_32 / GAP_32 NN+ at m = 100, the
# four member pairs of the default run's Fig. S1, pooled sd 0.014. Kernel regression is deterministic given tau: no such term.
SINGLE_RUN_SD = 0.02
VERDICTS = ("holds", "fails", "untestable")
CLAIM_COLUMNS = (
    "claim",
    "source",
    "verdict",
    "reason",
    "measured",
    "n_runs",
    "n_failed",
    "run_scale",
    "paper_scale",
    "predicate",
    "params",
    "compares",
    "quote",
)
RUN_TABLES = ("runs", "fig2", "fig3", "fig4", "figS5", "figS6")
PLAIN_TABLES = ("figS1", "imagenet_slopes")  # read as they are (imagenet_slopes: symflow.imagenet.curves.SLOPE_COLUMNS)
TABLE_FILES = {"audit": "results/symmetry_audit.csv",
               **{name: f"results/tables/{name}.csv" for name in (*RUN_TABLES, *PLAIN_TABLES)}}
# why a claim on a table is untestable when the table is absent, where that has a reason of its own
MISSING_TABLE = {
    "imagenet_slopes": "no ImageNet runs: the config has no `imagenet` section (config/imagenet.yaml; it needs "
                       "the user's ILSVRC2012 and a GPU cluster, docs/imagenet.md)",
}
FAILED_RUN_COLUMNS = ("architecture", "width", "transform", "recipe", "m", "seed", "member", "init", "failure",
                      "reason", "path", "symflow_version", "symflow_commit")  # (the run's: symflow.provenance)


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    quote: str
    compares: str
    table: str
    predicate: str
    params: dict = field(default_factory=dict)
    scale: str = ""


class Untestable(Exception):
    """The claim cannot be judged on these tables; the message says why."""


@dataclass
class Outcome:
    holds: bool
    measured: str
    n_runs: int = 0
    n_failed: int = 0
    run_scale: str = ""


# -- loading --------------------------------------------------------------------------


def load_claims(path: str | os.PathLike | None = None) -> list[Claim]:
    """The claims of `path` (default: the package's claims.yaml), checked: unique ids, known predicates."""
    import yaml

    entries = yaml.safe_load(Path(path or CLAIMS_FILE).read_text())
    claims = []
    for entry in entries:
        unknown = set(entry) - set(Claim.__dataclass_fields__)
        if unknown:
            raise ValueError(f"claim {entry.get('id')!r}: unknown fields {sorted(unknown)}")
        claim = Claim(**{**entry, "params": dict(entry.get("params") or {})})
        if claim.predicate not in PREDICATES:
            raise ValueError(f"claim {claim.id!r}: unknown predicate {claim.predicate!r}; known: {', '.join(PREDICATES)}")
        if claim.table not in ("audit", *PLAIN_TABLES, *RUN_TABLES):
            raise ValueError(f"claim {claim.id!r}: unknown table {claim.table!r}")
        claims.append(claim)
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate claim ids in {path or CLAIMS_FILE}")
    return claims


def table_paths(results_dir: str | os.PathLike = "results") -> dict[str, Path]:
    """Where each table of a results folder lives."""
    root = Path(results_dir)
    out = {name: root / "tables" / f"{name}.csv" for name in (*RUN_TABLES, *PLAIN_TABLES)}
    out["audit"] = root / "symmetry_audit.csv"
    return out


def load_tables(paths: dict[str, str | os.PathLike]) -> dict[str, Any]:
    """DataFrames of the tables that exist (runs-format tables through load_runs); absent ones are None."""
    import pandas as pd

    from symflow.figures.table import load_runs

    out: dict[str, Any] = {}
    for name, path in paths.items():
        path = Path(path)
        if not path.exists():
            out[name] = None
        elif name in RUN_TABLES:
            out[name] = load_runs(path)
        elif name == "audit":
            out[name] = pd.read_csv(path, dtype={"claimed_invariant": str, "architecture": str, "transform": str})
        else:
            out[name] = pd.read_csv(path)
    return out


# -- statistics -----------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """Accuracy (or another value) of one configuration over its successful runs."""

    mean: float
    sd: float  # over successful runs (nan with one)
    k: int  # successful runs
    failed: int  # failed runs (not counted)
    finite: bool = False  # finite networks (stage sgd / ensemble): a single run gets SINGLE_RUN_SD

    def text(self, digits: int = 3) -> str:
        sd = "-" if math.isnan(self.sd) else f"{self.sd:.{digits}f}"
        fail = f", {self.failed} failed" if self.failed else ""
        return f"{self.mean:.{digits}f} (sd {sd}, n {self.k}{fail})"

    def se(self, n_test: int | None) -> float:
        var = 0.0
        if n_test:
            p = min(max(self.mean, 0.0), 1.0)
            var += p * (1 - p) / n_test
        if self.k >= 2 and not math.isnan(self.sd):
            var += self.sd**2 / self.k
        elif self.finite and self.k == 1:
            var += SINGLE_RUN_SD**2
        return math.sqrt(var)


def tolerance(a: Cell, b: Cell, n_test: int | None, z: float, abs_tol: float) -> float:
    """max(abs_tol, z * sqrt(se_a^2 + se_b^2)): the noise allowed in a comparison of two means."""
    return max(float(abs_tol), float(z) * math.sqrt(a.se(n_test) ** 2 + b.se(n_test) ** 2))


def cell(frame, value: str = "accuracy") -> Cell:
    ok = frame[~frame["failed"]] if "failed" in frame else frame
    vals = ok[value].astype(float)
    vals = vals[vals.notna()]
    failed = int(len(frame) - len(ok)) + int(len(ok) - len(vals))
    finite = "stage" in frame and bool(frame["stage"].isin(["sgd", "ensemble"]).any())
    if len(vals) == 0:
        return Cell(math.nan, math.nan, 0, failed, finite)
    sd = float(vals.std(ddof=1)) if len(vals) >= 2 else math.nan
    return Cell(float(vals.mean()), sd, int(len(vals)), failed, finite)


def cells(frame, keys: list[str], value: str = "accuracy") -> dict[tuple, Cell]:
    """One Cell per combination of `keys` present in `frame` (insertion order as in the frame)."""
    out = {}
    for key, group in frame.groupby(keys, sort=False, dropna=False):
        out[key if isinstance(key, tuple) else (key,)] = cell(group, value)
    return out


def n_test_of(frame) -> int | None:
    """The test-set size named by the frame's dataset ids (the smallest), or None."""
    from symflow.configuration import parse_dataset_id

    sizes = []
    for name in sorted(set(frame["dataset"].dropna())) if frame is not None and "dataset" in frame else []:
        try:
            sizes.append(int(parse_dataset_id(name)["n_test"]))
        except (ValueError, KeyError):
            continue
    return min(sizes) if sizes else None


def run_scale(frame) -> str:
    """The scale of the rows a claim used: data source and resolution, m, widths per architecture."""
    from symflow.configuration import parse_dataset_id

    if frame is None or len(frame) == 0:
        return ""
    parts = []
    for name in sorted(set(frame["dataset"].dropna())) if "dataset" in frame else []:
        try:
            d = parse_dataset_id(name)
            parts.append(f"{d['source']} {d['resolution']}x{d['resolution']} (n_train {d['n_train']}, "
                         f"n_test {d['n_test']}{', flips' if d.get('flip') else ''})")
        except (ValueError, KeyError):
            parts.append(str(name))
    if "m" in frame:
        ms = sorted({int(m) for m in frame["m"].dropna()})
        if ms:
            parts.append("m " + ", ".join(map(str, ms)))
    if "width" in frame and "architecture" in frame:
        widths = frame[frame["width"].notna()].groupby("architecture")["width"].agg(lambda w: sorted({int(x) for x in w}))
        if len(widths):
            parts.append("widths " + ", ".join(f"{a} {'/'.join(map(str, w))}" for a, w in widths.items()))
    if "seed" in frame:
        seeds = sorted({int(s) for s in frame["seed"].dropna()})
        parts.append(f"{len(seeds)} seed(s)")
    return "; ".join(parts)


def _plain(frame):
    """Ordinary runs: no ensemble rows or members beyond the first, Gaussian first layer."""
    out = frame
    if "stage" in out:
        out = out[out["stage"] != "ensemble"]
    if "member" in out:
        out = out[out["member"].fillna(0) == 0]
    if "init" in out:
        out = out[out["init"].isin(["", "gaussian"])]
    return out


def _largest_m(frame):
    if len(frame) == 0 or frame["m"].notna().sum() == 0:
        return frame
    return frame[frame["m"] == frame["m"].max()]


def _select(frame, spec: dict):
    out = frame
    for key, value in spec.items():
        out = out[out[key] == value]
    return out


def _need_rows(frame, what: str):
    if frame is None:
        raise Untestable(f"missing table for {what}")
    if len(frame) == 0:
        raise Untestable(f"missing runs: no rows of {what}")


def _usable(c: Cell | None) -> bool:
    return c is not None and c.k > 0


def _no_successes(label: str, c: Cell) -> str:
    return f"{label}: all {c.failed} run(s) failed"


# -- predicates -----------------------------------------------------------------------


def audit_invariant(audit, params: dict, ctx: dict) -> Outcome:
    """Every audited (architecture, transform) pair with claimed_invariant == `claimed` agrees with the claim."""
    _need_rows(audit, "the symmetry audit")
    claimed = bool(params["claimed"])
    rows = audit[audit["claimed_invariant"].astype(str).str.lower().eq(str(claimed).lower())
                 & ~audit["architecture"].astype(str).str.contains("=")]
    if len(rows) == 0:
        raise Untestable(f"missing runs: no audited pair claimed {'invariant' if claimed else 'not invariant'}")
    diff = rows[["max_rel_diff_nngp", "max_rel_diff_ntk"]].astype(float).max(axis=1)
    tol = rows["tolerance"].astype(float)
    bad = rows[(diff > tol) if claimed else (diff <= tol)]
    worst = float(diff.max() if claimed else diff.min())
    word = "largest" if claimed else "smallest"
    measured = f"{word} relative difference {worst:.3g} over {len(rows)} pairs (tolerance {float(tol.max()):g})"
    if len(bad):
        measured += "; against the claim: " + ", ".join(f"{a} on {t}" for a, t in zip(bad["architecture"], bad["transform"]))
    return Outcome(len(bad) == 0, measured, len(rows), 0, run_scale(rows))


def audit_equality(audit, params: dict, ctx: dict) -> Outcome:
    """The audit row of architecture pair `pair` (e.g. LCN=VEC) shows equal kernels."""
    _need_rows(audit, "the symmetry audit")
    rows = audit[audit["architecture"] == params["pair"]]
    if len(rows) == 0:
        raise Untestable(f"missing runs: no audit row {params['pair']}")
    diff = rows[["max_rel_diff_nngp", "max_rel_diff_ntk"]].astype(float).max(axis=1)
    tol = rows["tolerance"].astype(float)
    return Outcome(bool((diff <= tol).all()),
                   f"max relative difference {float(diff.max()):.3g} (tolerance {float(tol.max()):g})",
                   len(rows), 0, run_scale(rows))


def non_increasing_chain(frame, params: dict, ctx: dict) -> Outcome:
    """Per architecture, accuracy of `inference` does not increase along `chain` (beyond the tolerance)."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame[frame["inference"] == params["inference"]]))
    _need_rows(rows, f"inference {params['inference']}")
    chain = list(params["chain"])
    rows = rows[rows["transform"].isin(chain)]
    by = cells(rows, ["architecture", "transform"])
    n_test = ctx.get("n_test")
    ok, tested, parts, skipped = True, 0, [], []
    for arch in dict.fromkeys(rows["architecture"]):
        seq = [(t, by.get((arch, t))) for t in chain]
        for t, c in seq:
            if c is not None and c.k == 0:
                skipped.append(_no_successes(f"{arch} {t}", c))
        seq = [(t, c) for t, c in seq if _usable(c)]
        if len(seq) < 2:
            continue
        tested += 1
        bad = []
        for (t0, c0), (t1, c1) in zip(seq, seq[1:]):
            if c1.mean - c0.mean > tolerance(c0, c1, n_test, params.get("z", 2.0), params.get("abs_tol", 0.0)):
                bad.append(f"{t0}->{t1} +{c1.mean - c0.mean:.3f}")
        ok &= not bad
        parts.append(f"{arch}: " + " > ".join(f"{t} {c.text()}" for t, c in seq) + (f" [rises: {'; '.join(bad)}]" if bad else ""))
    if tested == 0:
        raise Untestable("missing runs or too few successful runs: no architecture has two transforms of the chain"
                         + (f" ({'; '.join(skipped)})" if skipped else ""))
    return _outcome(ok, parts, rows)


def close(frame, params: dict, ctx: dict) -> Outcome:
    """Mean accuracy of configuration `a` equals that of `b` within the tolerance."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    a_rows, b_rows = _select(rows, params["a"]), _select(rows, params["b"])
    ca, cb = _pair_cells(a_rows, b_rows, params)
    tol = tolerance(ca, cb, ctx.get("n_test"), params.get("z", 2.0), params.get("abs_tol", 0.0))
    d = ca.mean - cb.mean
    measured = f"{_label(params['a'])} {ca.text()} vs {_label(params['b'])} {cb.text()}: difference {d:+.3f} (tolerance {tol:.3f})"
    return Outcome(abs(d) <= tol, measured, ca.k + cb.k, ca.failed + cb.failed, run_scale(pd_concat(a_rows, b_rows)))


def compare_inference(frame, params: dict, ctx: dict) -> Outcome:
    """In every (architecture, transform) cell with (spurious: true) or without a spurious symmetry,
    `better` is at least as good as (relation at_least) or beats (relation beats) each of `worse`."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    arch_ok = set(params["compatible_architectures"])
    tr_ok = set(params["compatible_transforms"])
    spurious = ~(rows["architecture"].isin(arch_ok) & rows["transform"].isin(tr_ok))
    rows = rows[spurious if params["spurious"] else ~spurious]
    _need_rows(rows, "cells " + ("with" if params["spurious"] else "without") + " a spurious symmetry")
    by = cells(rows, ["architecture", "transform", "inference"])
    n_test, z, abs_tol = ctx.get("n_test"), params.get("z", 2.0), params.get("abs_tol", 0.0)
    better = params["better"]
    ok, parts, skipped, n = True, [], [], 0
    for arch, transform in dict.fromkeys(zip(rows["architecture"], rows["transform"])):
        cb = by.get((arch, transform, better))
        for worse in params["worse"]:
            cw = by.get((arch, transform, worse))
            if cb is None or cw is None:
                skipped.append(f"{arch} {transform}: no {better if cb is None else worse} runs")
                continue
            if not (_usable(cb) and _usable(cw)):
                skipped.append(_no_successes(f"{arch} {transform} {worse if _usable(cb) else better}", cw if _usable(cb) else cb))
                continue
            n += 1
            tol = tolerance(cb, cw, n_test, z, abs_tol)
            d = cb.mean - cw.mean
            good = d >= -tol if params["relation"] == "at_least" else d > tol
            ok &= good
            parts.append(f"{arch} {transform}: {better} {cb.mean:.3f} - {worse} {cw.mean:.3f} = {d:+.3f} (tol {tol:.3f}, "
                         f"n {cb.k}/{cw.k}){'' if good else ' AGAINST'}")
    if n == 0:
        raise Untestable("too few successful runs: no cell has both inferences" + (f" ({'; '.join(skipped)})" if skipped else ""))
    if skipped:
        parts.append("not compared: " + "; ".join(skipped))
    return _outcome(ok, parts, rows)


def _trend(seq, sign: int, step_tol, overall_tol) -> tuple[str, list[str], str]:
    """One series' verdict on a monotone trend. seq: [(x, Cell)] sorted by x; sign +1 for
    increasing; step_tol(c0, c1) and overall_tol(first, last) the noise allowed.

    Returns (verdict, against, flat): "against" if a step, or the change from first to last,
    goes significantly against the direction; "holds" if the change from first to last exceeds
    its tolerance; otherwise "flat" (within noise; a zero tolerance is never flat: a change
    that is not in the direction is against it)."""
    against = [f"{x0:g}->{x1:g} {c1.mean - c0.mean:+.3f}" for (x0, c0), (x1, c1) in zip(seq, seq[1:])
               if sign * (c1.mean - c0.mean) < -step_tol(c0, c1)]
    (x0, first), (x1, last) = seq[0], seq[-1]
    change, tol = last.mean - first.mean, overall_tol(first, last)
    if sign * change > tol and not against:
        return "holds", [], ""
    if against or sign * change < -tol or tol <= 0:
        return "against", against or ["no overall change"], ""
    return "flat", [], f"{x0:g}->{x1:g} {change:+.3f} (tol {tol:.3f})"


def _trend_outcome(series: list[tuple[str, str, list[str], str]], what: str):
    """(ok, parts) of a trend claim over series (label and values text, verdict, against, flat):
    it fails if any series goes against it, holds if every series holds, and is untestable
    (within noise) otherwise."""
    parts = [text + (f" [against: {'; '.join(against)}]" if verdict == "against" else "")
             for text, verdict, against, _ in series]
    verdicts = {verdict for _, verdict, _, _ in series}
    if "flat" in verdicts and "against" not in verdicts:
        flat = [f"{text.split(':')[0]}: {f}" for text, verdict, _, f in series if verdict == "flat"]
        raise Untestable(f"within noise: the change {what} is below the tolerance (" + "; ".join(flat) + "): "
                         + "; ".join(parts))
    return "against" not in verdicts, parts


def monotone_in_width(frame, params: dict, ctx: dict) -> Outcome:
    """Per recipe, the finite network's accuracy is monotone (direction) in the width, within the tolerance."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    rows = rows[(rows["architecture"] == params["architecture"]) & (rows["transform"] == params["transform"])
                & rows["inference"].isin(params["recipes"])]
    _need_rows(rows, f"{params['architecture']}_n on {params['transform']}")
    sign = 1 if params["direction"] == "increasing" else -1
    n_test, z, abs_tol = ctx.get("n_test"), params.get("z", 2.0), params.get("abs_tol", 0.0)
    tol = lambda c0, c1: tolerance(c0, c1, n_test, z, abs_tol)  # noqa: E731
    series = []
    for recipe in params["recipes"]:
        by = cells(rows[rows["inference"] == recipe], ["width"])
        seq = sorted((int(w[0]), c) for w, c in by.items() if _usable(c))
        if len(seq) >= 2:
            text = f"{recipe}: " + ", ".join(f"n={w} {c.text()}" for w, c in seq)
            series.append((text, *_trend(seq, sign, tol, tol)))
    if not series:
        raise Untestable("missing runs or too few successful runs: fewer than two widths with a successful run")
    ok, parts = _trend_outcome(series, "from the smallest to the largest width")
    return _outcome(ok, parts, rows)


def below_kernel(frame, params: dict, ctx: dict) -> Outcome:
    """Per recipe and width, the finite network's mean accuracy is below the kernel's (same transform)."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    rows = rows[(rows["architecture"] == params["architecture"]) & (rows["transform"] == params["transform"])]
    kern = cell(rows[rows["inference"] == params["kernel"]])
    if not _usable(kern):
        raise Untestable(f"missing runs: no {params['architecture']}_inf ({params['kernel']}) on {params['transform']}")
    nets = rows[rows["inference"].isin(params["recipes"])]
    by = cells(nets, ["inference", "width"])
    seq = [(r, int(w), c) for (r, w), c in by.items() if _usable(c)]
    if not seq:
        raise Untestable("too few successful runs: no successful finite-width run")
    bad = [f"{r} n={w}" for r, w, c in seq if not c.mean < kern.mean]
    parts = [f"{params['kernel']} {kern.text()}"] + [f"{r} n={w} {c.text()}" for r, w, c in sorted(seq)]
    if bad:
        parts.append("not below: " + ", ".join(bad))
    return _outcome(not bad, parts, rows)


def peak_width(frame, params: dict, ctx: dict) -> Outcome:
    """Per recipe, the best width lies within a factor 2 of the paper's peak, and the largest width is worse."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    rows = rows[(rows["architecture"] == params["architecture"]) & (rows["transform"] == params["transform"])
                & rows["inference"].isin(list(params["peaks"]))]
    _need_rows(rows, f"{params['architecture']}_n on {params['transform']}")
    n_test, ok, parts, tested, scale_notes = ctx.get("n_test"), True, [], 0, []
    for recipe, peak in params["peaks"].items():
        by = cells(rows[rows["inference"] == recipe], ["width"])
        seq = sorted((int(w[0]), c) for w, c in by.items() if _usable(c))
        widths = [w for w, _ in seq]
        if not widths or min(widths) >= peak or max(widths) < 2 * peak:
            scale_notes.append(f"{recipe}: widths {'/'.join(map(str, widths)) or 'none'} do not bracket the paper's "
                               f"peak at n ~ {peak} (need a width below {peak} and one >= {2 * peak})")
            continue
        tested += 1
        best_w, best = max(seq, key=lambda wc: wc[1].mean)
        last_w, last = seq[-1]
        tol = tolerance(best, last, n_test, params.get("z", 2.0), params.get("abs_tol", 0.0))
        good = peak / 2 <= best_w <= 2 * peak and best.mean - last.mean > tol
        ok &= good
        parts.append(f"{recipe}: peak at n={best_w} {best.text()}, n={last_w} {last.text()}{'' if good else ' AGAINST'}")
    if tested == 0:
        raise Untestable("scale: " + "; ".join(scale_notes))
    parts += scale_notes
    return _outcome(ok, parts, rows)


def _curve(rows, spec: dict, value: str, max_m: float | None = None):
    sel = _select(rows, spec)
    if max_m is not None:
        sel = sel[sel["m"] < max_m]
    by = cells(sel, ["m"], value)
    return sel, sorted((float(m[0]), c) for m, c in by.items() if _usable(c))


def curves_close(frame, params: dict, ctx: dict) -> Outcome:
    """At every m < max_m run for both, accuracy of curves `a` and `b` agree within the tolerance."""
    _need_rows(frame, "the figure")
    rows = _plain(frame)
    a_rows, a = _curve(rows, params["a"], "accuracy", params.get("max_m"))
    b_rows, b = _curve(rows, params["b"], "accuracy", params.get("max_m"))
    bm = dict(b)
    common = [(m, c, bm[m]) for m, c in a if m in bm]
    if not common:
        raise Untestable(f"too few successful runs: no m < {params.get('max_m')} with successful runs of both curves")
    n_test, ok, parts = ctx.get("n_test"), True, []
    for m, ca, cb in common:
        tol = tolerance(ca, cb, n_test, params.get("z", 2.0), params.get("abs_tol", 0.0))
        good = abs(ca.mean - cb.mean) <= tol
        ok &= good
        parts.append(f"m={int(m)}: {ca.mean:.3f} vs {cb.mean:.3f} (tol {tol:.3f}, n {ca.k}/{cb.k}){'' if good else ' AGAINST'}")
    both = pd_concat(a_rows, b_rows)
    return Outcome(ok, f"{_label(params['a'])} vs {_label(params['b'])}: " + "; ".join(parts),
                   int((~both["failed"]).sum()), int(both["failed"].sum()), run_scale(both))


def _slope(points) -> float:
    from symflow.curves import fit_power_law

    return fit_power_law([m for m, _ in points], [c.mean for _, c in points]).slope


def slopes_comparable(frame, params: dict, ctx: dict) -> Outcome:
    """Power-law slopes of test MSE over m < max_m of each curve lie within slope_tol of the reference's."""
    _need_rows(frame, "the figure")
    rows = _plain(frame)
    need = int(params.get("min_points", 3))
    used, ref = _curve(rows, params["reference"], "mse", params.get("max_m"))
    if len(ref) < need:
        raise Untestable(f"too few successful runs: {_label(params['reference'])} has {len(ref)} sizes below "
                         f"m = {params.get('max_m')} (need {need})")
    s_ref = _slope(ref)
    ok, parts, frames = True, [f"{_label(params['reference'])} {s_ref:+.3f}"], [used]
    for spec in params["curves"]:
        sel, pts = _curve(rows, spec, "mse", params.get("max_m"))
        frames.append(sel)
        if len(pts) < need:
            parts.append(f"{_label(spec)}: {len(pts)} sizes, not fitted")
            continue
        s = _slope(pts)
        good = abs(s - s_ref) <= float(params["slope_tol"])
        ok &= good
        parts.append(f"{_label(spec)} {s:+.3f}{'' if good else ' AGAINST'}")
    if all("not fitted" in p for p in parts[1:]):
        raise Untestable("too few successful runs: no curve besides the reference has enough sizes")
    return _outcome(ok, ["MSE slopes: " + "; ".join(parts)], pd_concat(*frames))


def cusp(frame, params: dict, ctx: dict) -> Outcome:
    """The `cusp` curve steepens (last-segment slope / first-segment slope >= min_ratio); the others do not."""
    from symflow.curves import fit_ends

    _need_rows(frame, "the figure")
    rows = _plain(frame)
    largest = float(rows["m"].max())
    if largest < float(params["min_max_m"]):
        raise Untestable(f"scale: the run's largest m is {int(largest)}; the paper's cusp is above "
                         f"m = {int(params['min_max_m'])}")
    points = int(params["points"])
    out, frames, ok = [], [], True
    for i, spec in enumerate([params["cusp"], *params["others"]]):
        sel, pts = _curve(rows, spec, "mse")
        frames.append(sel)
        if len(pts) < points + 1:
            if i == 0:
                raise Untestable(f"too few successful runs: {_label(spec)} has {len(pts)} sizes (need {points + 1})")
            out.append(f"{_label(spec)}: {len(pts)} sizes, not fitted")
            continue
        first, last = fit_ends([m for m, _ in pts], [c.mean for _, c in pts], points)
        ratio = last.slope / first.slope if first.slope else math.inf
        good = ratio >= params["min_ratio"] if i == 0 else ratio < params["min_ratio"]
        ok &= good
        out.append(f"{_label(spec)} {first.slope:+.3f} -> {last.slope:+.3f} (ratio {ratio:.2f}){'' if good else ' AGAINST'}")
    return _outcome(ok, [f"MSE slopes first -> last {points} points (cusp: ratio >= {params['min_ratio']}): " + "; ".join(out)],
                    pd_concat(*frames))


def monotone_path(frame, params: dict, ctx: dict) -> Outcome:
    """Fig. S1: `value` is monotone (direction) along `along` (t or width) at each value of the other axis."""
    _need_rows(frame, "Fig. S1")
    value, along = params["value"], params["along"]
    other = "width" if along == "t" else "t"
    from symflow.ensemble import ensemble_runs

    rows = ensemble_runs(frame)  # an ensemble with no successful member is failed, never a data point
    rows["failed"] = rows["failed"] | rows[value].isna()
    rows["stage"] = "ensemble"  # finite networks: a single ensemble per point gets SINGLE_RUN_SD
    sign = 1 if params["direction"] == "increasing" else -1
    accuracy = params.get("kind") == "accuracy"
    n_test, z, abs_tol = (ctx.get("n_test") if accuracy else None), params.get("z", 2.0), params.get("abs_tol", 0.0)
    series = []
    for key, group in rows.groupby(other, sort=True):
        by = cells(group, [along], value)
        seq = sorted((float(a[0]), c) for a, c in by.items() if _usable(c))
        if len(seq) < 2:
            continue
        if accuracy:
            step_tol = overall_tol = lambda c0, c1: tolerance(c0, c1, n_test, z, abs_tol)  # noqa: E731
        else:  # S-Dist: steps may go back by rel_tol of the range; the overall change must be in the direction
            spread = max(c.mean for _, c in seq) - min(c.mean for _, c in seq)
            step_tol = lambda c0, c1, d=float(params.get("rel_tol", 0.0)) * spread: d  # noqa: E731
            overall_tol = lambda c0, c1: 0.0  # noqa: E731
        text = f"{other}={key:g}: " + ", ".join(f"{along}={a:g} {c.mean:.4g}" for a, c in seq)
        series.append((text, *_trend(seq, sign, step_tol, overall_tol)))
    if not series:
        raise Untestable(f"missing runs or too few successful runs: fewer than two values of {along} at any {other}")
    ok, parts = _trend_outcome(series, "along the path")
    return Outcome(ok, "; ".join(parts), int((~rows["failed"]).sum()), int(rows["failed"].sum()), _figS1_scale(rows))


def init_close(frame, params: dict, ctx: dict) -> Outcome:
    """Fig. S5: per (architecture, transform, recipe), uniform and Gaussian first layers agree within the tolerance."""
    _need_rows(frame, "Fig. S5")
    rows = frame[frame["stage"] == "sgd"].copy()
    rows = rows[rows["member"].fillna(0) == 0]
    rows["init"] = rows["init"].replace("", "gaussian")
    by = cells(rows, ["architecture", "transform", "inference", "init"])
    n_test, ok, parts, skipped = ctx.get("n_test"), True, [], []
    for arch, transform, inf in dict.fromkeys(zip(rows["architecture"], rows["transform"], rows["inference"])):
        g, u = by.get((arch, transform, inf, "gaussian")), by.get((arch, transform, inf, "uniform"))
        if not (_usable(g) and _usable(u)):
            skipped.append(f"{arch} {transform} {inf}")
            continue
        tol = tolerance(g, u, n_test, params.get("z", 2.0), params.get("abs_tol", 0.0))
        good = abs(u.mean - g.mean) <= tol
        ok &= good
        parts.append(f"{arch} {transform} {inf}: gaussian {g.text()} uniform {u.text()} (tol {tol:.3f}){'' if good else ' AGAINST'}")
    if not parts:
        raise Untestable("too few successful runs: no configuration with successful runs of both inits")
    if skipped:
        parts.append("too few successful runs for: " + ", ".join(skipped))
    return _outcome(ok, parts, rows)


def _kernel_curves(frame, min_points: int, min_span: float = 1.0):
    """The kernel learning curves (test MSE against m) with at least min_points sizes; a run whose
    sizes span less than min_span (largest m / smallest m) cannot show a power law: untestable."""
    rows = frame[frame["stage"] == "regression"]
    out = {}
    for key, group in rows.groupby(["architecture", "transform", "inference"], sort=False):
        pts = sorted((float(m[0]), c) for m, c in cells(group, ["m"], "mse").items() if _usable(c) and c.mean > 0)
        if len(pts) >= min_points:
            out[key] = pts
    spans = [pts[-1][0] / pts[0][0] for pts in out.values()]
    if spans and max(spans) < min_span:
        sizes = sorted({int(m) for pts in out.values() for m, _ in pts})
        raise Untestable(f"scale: the learning curves span m = {sizes[0]} to {sizes[-1]}, a factor of {max(spans):g}; "
                         f"a power law needs at least a factor of {min_span:g} (the paper's span 320 to 45,000)")
    return rows, out


def power_law_fits(frame, params: dict, ctx: dict) -> Outcome:
    """Fig. S6: more than `fraction` of the kernel learning curves are straight lines in log-log (R^2 >= min_r2)."""
    import numpy as np

    _need_rows(frame, "Fig. S6")
    rows, curves = _kernel_curves(frame, int(params.get("min_points", 3)), float(params.get("min_span", 1.0)))
    if not curves:
        raise Untestable(f"scale: no kernel learning curve with {params.get('min_points', 3)} or more sizes")
    good, parts = 0, []
    for (arch, transform, inf), pts in curves.items():
        x = np.log([m for m, _ in pts])
        y = np.log([c.mean for _, c in pts])
        fit = np.polyval(np.polyfit(x, y, 1), x)
        ss = float(((y - y.mean()) ** 2).sum())
        r2 = 1 - float(((y - fit) ** 2).sum()) / ss if ss > 0 else 1.0
        good += r2 >= params["min_r2"]
        parts.append(f"{arch} {transform} {inf} R2 {r2:.3f}")
    frac = good / len(curves)
    return _outcome(frac > params["fraction"], [f"{good}/{len(curves)} curves with R2 >= {params['min_r2']}"] + parts, rows)


def exponent_chain(frame, params: dict, ctx: dict) -> Outcome:
    """Fig. S6: per (architecture, kernel), |MSE exponent| does not grow by more than slope_tol along `chain`."""
    _need_rows(frame, "Fig. S6")
    rows, curves = _kernel_curves(frame, int(params.get("min_points", 2)), float(params.get("min_span", 1.0)))
    chain = list(params["chain"])
    ok, parts, tested = True, [], 0
    for arch, inf in dict.fromkeys((a, i) for a, _, i in curves):
        seq = [(t, abs(_slope(curves[(arch, t, inf)]))) for t in chain if (arch, t, inf) in curves]
        if len(seq) < 2:
            continue
        tested += 1
        bad = [f"{t0}->{t1}" for (t0, s0), (t1, s1) in zip(seq, seq[1:]) if s1 - s0 > params["slope_tol"]]
        ok &= not bad
        parts.append(f"{arch} {inf}: " + ", ".join(f"{t} {s:.3f}" for t, s in seq) + (f" [grows: {'; '.join(bad)}]" if bad else ""))
    if tested == 0:
        raise Untestable("missing runs: no architecture has learning curves on two transforms of the chain")
    return _outcome(ok, parts, rows)


def imagenet_slope(slopes, params: dict, ctx: dict) -> Outcome:
    """Fig. 5: alpha of one (model, transform) learning curve in one phase (first: i >= 6, second:
    i < 6, all) lies within `tol` of the paper's `value`, for the test error or the test loss (the
    paper does not say which it fits: either counts, both are reported); with `max_bend`, that
    quantity's curve is also one power law (second-phase alpha within max_bend of the first's).
    Untestable below the paper's scale: fewer than `min_points` sizes in the phase, or a largest
    m under `min_max_m`."""
    model, transform, phase = params["model"], params["transform"], params["phase"]
    value, tol = float(params["value"]), float(params["tol"])
    rows = slopes[(slopes["model"] == model) & (slopes["transform"] == transform) & (slopes["phase"] == phase)]
    label = f"{model} on {transform}"
    if rows.empty:
        raise Untestable(f"too few successful runs: no learning curve of {label} in the slope table")
    first = rows.iloc[0]
    runs, failed = int(first["runs"]), int(first["failed"])
    scale = (f"ImageNet, m {first['m_min']:,.0f} to {first['m_max']:,.0f}, {int(rows['points'].max())} sizes in the "
             f"{phase} phase" if _finite(first["m_max"]) else "")
    if "min_max_m" in params and not (_finite(first["m_max"]) and first["m_max"] >= float(params["min_max_m"])):
        largest = f"{first['m_max']:,.0f}" if _finite(first["m_max"]) else "none"
        raise Untestable(f"scale: the largest m of {label} is {largest}; the paper's curves reach "
                         f"{float(params['min_max_m']):,.0f} ({scale or 'no runs'})")
    need = int(params.get("min_points", 2))
    usable = rows[(rows["points"] >= need) & rows["alpha"].notna()]
    if usable.empty:
        raise Untestable(f"too few successful runs: {label} has {int(rows['points'].max())} sizes with successful "
                         f"runs in the {phase} phase (the paper fits {need})")
    parts, ok = [], False
    for q in params.get("quantities", ["error", "loss"]):
        r = usable[usable["quantity"] == q]
        if r.empty:
            continue
        alpha = float(r["alpha"].iloc[0])
        good = abs(alpha - value) <= tol
        text = f"{q} {alpha:.3f}"
        if "max_bend" in params:
            by_phase = slopes[(slopes["model"] == model) & (slopes["transform"] == transform)
                              & (slopes["quantity"] == q)].set_index("phase")["alpha"]
            bend = float(by_phase.get("second", math.nan)) - float(by_phase.get("first", math.nan))
            good &= abs(bend) <= float(params["max_bend"])  # a NaN bend (a phase not fitted) is no power law
            text += f" (phases {by_phase.get('first', math.nan):.3f} -> {by_phase.get('second', math.nan):.3f})"
        ok |= good
        parts.append(f"{text}{'' if good else ' (off)'}")
    if not parts:
        raise Untestable(f"no fitted quantity among {params.get('quantities')} for {label}")
    bend = f", phases within {params['max_bend']} of each other" if "max_bend" in params else ""
    measured = (f"alpha of {label}, {phase} phase: " + ", ".join(parts)
                + f"; the paper's {value} +- {tol}{bend} (error or loss: the paper does not say which it fits)")
    return Outcome(ok, measured, runs - failed, failed, scale)


def _finite(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))  # numpy's float64 is a float


PREDICATES: dict[str, Callable] = {
    f.__name__: f
    for f in (audit_invariant, audit_equality, non_increasing_chain, close, compare_inference, monotone_in_width,
              below_kernel, peak_width, curves_close, slopes_comparable, cusp, monotone_path, init_close,
              power_law_fits, exponent_chain, imagenet_slope)
}


# -- helpers of the predicates ----------------------------------------------------------


def pd_concat(*frames):
    import pandas as pd

    frames = [f for f in frames if f is not None and len(f)]
    return pd.concat(frames) if frames else None


def _label(spec: dict) -> str:
    inf = spec.get("inference") or ("inf" if spec.get("stage") == "regression" else "n")
    return f"{spec.get('architecture', '?')}_{inf} on {spec.get('transform', '?')}"


def _pair_cells(a_rows, b_rows, params) -> tuple[Cell, Cell]:
    if len(a_rows) == 0 or len(b_rows) == 0:
        raise Untestable(f"missing runs: {_label(params['a'] if len(a_rows) == 0 else params['b'])}")
    ca, cb = cell(a_rows), cell(b_rows)
    for c, spec in ((ca, params["a"]), (cb, params["b"])):
        if not _usable(c):
            raise Untestable(f"too few successful runs: {_no_successes(_label(spec), c)}")
    return ca, cb


def _outcome(ok: bool, parts: list[str], rows) -> Outcome:
    failed = rows["failed"] if rows is not None and "failed" in rows else None
    return Outcome(bool(ok), "; ".join(parts),
                   int((~failed).sum()) if failed is not None else 0,
                   int(failed.sum()) if failed is not None else 0,
                   run_scale(rows))


def _figS1_scale(rows) -> str:
    parts = []
    if "m" in rows:
        parts.append("m " + ", ".join(str(int(m)) for m in sorted(set(rows["m"].dropna()))))
    if "width" in rows:
        parts.append("widths " + "/".join(str(int(w)) for w in sorted(set(rows["width"].dropna()))))
    if "t" in rows:
        parts.append("t " + ", ".join(f"{t:g}" for t in sorted(set(rows["t"].dropna()))))
    if "ensemble" in rows:
        parts.append("ensembles of " + "/".join(str(int(k)) for k in sorted(set(rows["ensemble"].dropna()))))
    return "; ".join(parts)


# -- evaluation -----------------------------------------------------------------------


def evaluate(tables: dict[str, Any], claims: list[Claim] | None = None):
    """One row per claim (CLAIM_COLUMNS): the verdict on these tables. Never raises for a failing claim."""
    import json

    import pandas as pd

    claims = load_claims() if claims is None else claims
    runs = tables.get("runs")
    n_test = n_test_of(runs)
    if n_test is None:
        for name in RUN_TABLES:
            if tables.get(name) is not None:
                n_test = n_test_of(tables[name])
                if n_test:
                    break
    ctx = {"n_test": n_test}
    rows = []
    for claim in claims:
        row = {"claim": claim.id, "source": claim.source, "paper_scale": claim.scale, "predicate": claim.predicate,
               "params": json.dumps(claim.params, sort_keys=True), "compares": claim.compares, "quote": claim.quote,
               "reason": "", "measured": "", "n_runs": 0, "n_failed": 0, "run_scale": ""}
        try:
            if tables.get(claim.table) is None:
                raise Untestable(MISSING_TABLE.get(claim.table)
                                 or f"missing table {TABLE_FILES.get(claim.table, claim.table)}")
            out = PREDICATES[claim.predicate](tables[claim.table], claim.params, ctx)
            row.update(verdict="holds" if out.holds else "fails", measured=out.measured, n_runs=out.n_runs,
                       n_failed=out.n_failed, run_scale=out.run_scale)
        except Untestable as exc:
            row.update(verdict="untestable", reason=str(exc))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))


def write_claims(out_csv: str | os.PathLike, paths: dict[str, str | os.PathLike],
                 claims_file: str | os.PathLike | None = None):
    """Evaluate every claim on the tables at `paths` (name -> file) and write out_csv, each row
    naming the symflow that evaluated it (symflow.provenance.stamp); returns the frame."""
    from symflow.h5io import atomic_path
    from symflow.provenance import stamp

    frame = stamp(evaluate(load_tables(paths), load_claims(claims_file)))
    with atomic_path(out_csv, suffix=".csv") as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def evaluate_results(results_dir: str | os.PathLike = "results"):
    """The claims table of an existing results folder (the tables it has)."""
    return evaluate(load_tables(table_paths(results_dir)))


def format_table(frame, width: int = 100) -> str:
    """A plain-text listing: verdict, claim, source, then what was measured or why it is untestable."""
    import textwrap

    lines = []
    counts = frame["verdict"].value_counts().to_dict()
    lines.append("claims: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS))
    for _, r in frame.iterrows():
        lines.append(f"{r['verdict']:<10} {r['claim']}  ({r['source']})")
        detail = r["reason"] if r["verdict"] == "untestable" else r["measured"]
        lines += textwrap.wrap(str(detail), width, initial_indent=" " * 11, subsequent_indent=" " * 11)
        if r["run_scale"]:
            lines += textwrap.wrap(f"run: {r['run_scale']}", width, initial_indent=" " * 11, subsequent_indent=" " * 13)
    return "\n".join(lines)


def failed_runs(runs_csv: str | os.PathLike, out_csv: str | os.PathLike) -> int:
    """The failed finite-network runs of runs.csv (FAILED_RUN_COLUMNS) written to out_csv; returns their count."""
    import pandas as pd

    from symflow.figures.table import load_runs
    from symflow.h5io import atomic_path

    runs = load_runs(runs_csv)
    bad = runs[runs["failed"]].rename(columns={"inference": "recipe"})
    bad = pd.DataFrame(bad, columns=list(FAILED_RUN_COLUMNS))
    for c in ("width", "m", "seed", "member"):
        bad[c] = bad[c].astype("Int64")
    with atomic_path(out_csv, suffix=".csv") as tmp:
        bad.to_csv(tmp, index=False)
    return len(bad)
