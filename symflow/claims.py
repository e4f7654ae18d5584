"""The paper's claims, evaluated on a run's gathered tables: an effect, its interval, a verdict.

The claims are data (``symflow/claims.yaml``: id, source, the paper's words, what is compared,
the table read, a named predicate with its parameters, the paper's effect where it states one,
the equivalence margin of a closeness claim with the reason for its size, and the scale at
which the paper makes the claim). Each predicate here states the claim's effect -- a difference
of accuracies, a step of a chain, a slope, a ratio -- as a function of cells, each cell the
per-image results of one configuration's successful runs (``results/tables/predictions.h5``,
``symflow.predictions``), and judges it with ``symflow.evidence``: a 95% interval from a paired
bootstrap over the test images (every cell is scored on the same images) and, where a cell's
runs differ by their seed, the spread between those runs.

Verdicts: ``holds`` (the interval on the claimed side of zero, or inside the margin),
``fails`` (on the other side, or outside), ``inconclusive`` (neither: the row says what would
decide it), ``untestable`` (a missing table or runs, or a scale at which the paper does not
make the claim, with the reason). A claim of several parts (a chain, every cell of a set) is
their conjunction: it fails if a part fails, holds if every part holds. Failed runs never
count as data points; they are counted beside the measurement.

Tables (what :func:`load_tables` reads from a results folder):
    audit         results/symmetry_audit.csv (symflow.audit.AUDIT_COLUMNS)
    coupled       results/coupled_audit.csv (symflow.coupled.COUPLED_COLUMNS): Thm 4.1 at finite width
    figS1         results/tables/figS1.csv (symflow.ensemble.sdist_table)
    runs, fig2, fig3, fig4, figS5, figS6   results/tables/<name>.csv (symflow.results.RUN_COLUMNS)
    predictions   results/tables/predictions.h5 (symflow.predictions): the per-image results
    imagenet_slopes   results/tables/imagenet_slopes.csv (symflow.imagenet.curves.SLOPE_COLUMNS), only
            where the config has an ``imagenet`` section (the claims on it are untestable otherwise)
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from symflow import evidence as ev
from symflow.evidence import Part


def _claims_file() -> Path:
    from symflow.package_data import CLAIMS, path

    return path(CLAIMS)


CLAIMS_FILE = _claims_file()  # package data: symflow/claims.yaml
VERDICTS = ev.VERDICTS
CLAIM_COLUMNS = (
    "claim",
    "source",
    "verdict",
    "reason",  # why this verdict: the deciding part, or why untestable
    "effect",  # the deciding part's effect (points of accuracy, a slope, ...; see unit)
    "low",  # its 95% interval
    "high",
    "margin",  # a closeness claim's equivalence margin (same unit); empty for a direction
    "unit",
    "paper_effect",  # the paper's effect where it states one
    "decide",  # for an inconclusive claim: what would decide it
    "measured",  # every part: effect [interval] (claimed side) verdict
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
PLAIN_TABLES = ("figS1", "imagenet_slopes", "coupled")
TABLE_FILES = {"audit": "results/symmetry_audit.csv", "coupled": "results/coupled_audit.csv",
               "predictions": "results/tables/predictions.h5",
               **{name: f"results/tables/{name}.csv" for name in (*RUN_TABLES, "figS1", "imagenet_slopes")}}
# why a claim on a table is untestable when the table is absent, where that has a reason of its own
MISSING_TABLE = {
    "coupled": "no coupled pairs: Fig. 2 trains no finite network on a group Thm 4.1 claims it invariant to "
               "(experiments.fig2: architectures, transforms, recipe_architectures)",
    "imagenet_slopes": "no ImageNet runs: the config has no `imagenet` section (config/imagenet.yaml; it needs "
                       "the user's ILSVRC2012 and a GPU cluster, docs/imagenet.md)",
}
FAILED_RUN_COLUMNS = ("architecture", "width", "transform", "inference", "m", "seed", "member", "init", "failure",
                      "reason", "path", "symflow_version", "symflow_commit")  # (the run's: symflow.provenance)
POINTS = 100.0  # accuracies are shown in points (percent)


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
    margin: float | None = None  # a closeness claim's equivalence margin (accuracy: a fraction, 0.02 = 2 points)
    margin_reason: str = ""  # why the margin has this size
    paper_effect: str = ""  # the paper's effect, where it states one


class Untestable(Exception):
    """The claim cannot be judged on these tables; the message says why."""


@dataclass
class Outcome:
    parts: list[Part]
    n_runs: int = 0
    n_failed: int = 0
    run_scale: str = ""
    # the claim's verdict from its parts (after their failures are made family-wise); None: their conjunction
    rule: Callable[[list[Part]], str] | None = None
    notes: list[str] = field(default_factory=list)  # shown after the parts (e.g. cells not compared)


# -- loading --------------------------------------------------------------------------


def load_claims(path: str | os.PathLike | None = None) -> list[Claim]:
    """The claims of `path` (default: the package's claims.yaml), checked: unique ids, known predicates,
    a margin with its reason on every closeness claim."""
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
        if claim.predicate in NEEDS_MARGIN and not (claim.margin and claim.margin_reason):
            raise ValueError(f"claim {claim.id!r}: predicate {claim.predicate} judges closeness; give it a "
                             f"`margin` and a `margin_reason`")
        claims.append(claim)
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate claim ids in {path or CLAIMS_FILE}")
    return claims


def table_paths(results_dir: str | os.PathLike = "results") -> dict[str, Path]:
    """Where each table of a results folder lives."""
    root = Path(results_dir)
    return {name: root / Path(f).relative_to("results") for name, f in TABLE_FILES.items()}


def load_tables(paths: dict[str, str | os.PathLike]) -> dict[str, Any]:
    """The tables that exist (runs-format tables through load_runs, predictions as a
    symflow.predictions.Predictions); absent ones are None."""
    import pandas as pd

    from symflow.figures.table import load_runs
    from symflow.predictions import Predictions

    out: dict[str, Any] = {}
    for name, path in paths.items():
        path = Path(path)
        if not path.exists():
            out[name] = None
        elif name in RUN_TABLES:
            out[name] = load_runs(path)
        elif name == "predictions":
            out[name] = Predictions.read(path)
        elif name == "audit":
            out[name] = pd.read_csv(path, dtype={"claimed_invariant": str, "architecture": str, "transform": str})
        else:
            out[name] = pd.read_csv(path)
    return out


# -- cells ----------------------------------------------------------------------------


def _seeded(stage: str, architecture: str, transform: str) -> bool:
    """Do runs of this configuration differ by their seed? A finite network's always (its
    initialisation); a kernel's only where its architecture is not invariant to the group
    (tau then changes the kernel; Thm 4.1, checked by the symmetry audit)."""
    if stage != "regression":
        return True
    from symflow.architectures import ARCHITECTURES
    from symflow.groups import GROUPS, parse_spec

    try:
        spec = parse_spec(transform)
        if GROUPS.get(spec.group).trivial:
            return False
        return not ARCHITECTURES.get(architecture).claims(spec.group, infinite=True)
    except (KeyError, ValueError):
        return True


def make_cell(rows, label: str, ctx: dict, kind: str = "correct") -> ev.Cell:
    """The cell of `rows` (one configuration's runs): per-image `kind` values of its successful runs."""
    preds = ctx.get("predictions")
    if preds is None:
        raise Untestable(f"missing table {TABLE_FILES['predictions']}: the per-image results the intervals need")
    ok = rows[~rows["failed"]] if "failed" in rows else rows
    failed = int(len(rows) - len(ok))
    values, sets = [], set()
    for path in ok["path"]:
        try:
            testset, v = preds.values(str(path), kind)
        except KeyError:
            raise Untestable(f"no per-image results of {path} in {TABLE_FILES['predictions']}") from None
        values.append(np.asarray(v, np.float64))
        sets.add(testset)
    if len(sets) > 1:
        raise ValueError(f"{label}: runs on several test sets {sorted(sets)}")
    first = rows.iloc[0]
    seeded = _seeded(str(first["stage"]), str(first["architecture"]), str(first["transform"]))
    n = len(values[0]) if values else 0
    return ev.Cell(label, np.array(values) if values else np.zeros((0, n)), sets.pop() if sets else "", seeded, failed)


def _cell_of(frame, spec: dict, label: str, ctx: dict, kind: str = "correct") -> ev.Cell:
    rows = _select(frame, spec)
    if len(rows) == 0:
        raise Untestable(f"missing runs: {label}")
    return make_cell(rows, label, ctx, kind)


def _seed_of(label: str) -> int:
    """The bootstrap's seed of a part: fixed by its label, so a rerun gives the same interval."""
    return zlib.crc32(label.encode())


def judge(label: str, cells, fn, ctx: dict, *, sign: int | None = None, margin: float | None = None,
          at_most: float | None = None, scale: float = POINTS, unit: str = " points", level: float = ev.LEVEL) -> Part:
    """One part of a claim: the effect fn(cell means) judged as a direction (sign), a closeness
    (margin), or a bound (at_most: the effect may not exceed it), on an interval of `level`."""
    try:
        est = ev.estimate(cells, fn, seed=_seed_of(label), resamples=ctx.get("resamples", ev.RESAMPLES), level=level)
    except ev.NotEstimable as exc:
        return ev.not_estimable(label, str(exc))
    if margin is not None:
        return ev.closeness(label, est, margin, scale=scale, unit=unit)
    if at_most is not None:
        return ev.at_most(label, est, at_most, scale=scale, unit=unit)
    return ev.direction(label, est, sign or 1, scale=scale, unit=unit)


def _count(rows) -> tuple[int, int]:
    if rows is None or len(rows) == 0 or "failed" not in rows:
        return 0, 0
    return int((~rows["failed"]).sum()), int(rows["failed"].sum())


def _outcome(parts: list[Part], rows, notes: list[str] | None = None, rule=None) -> Outcome:
    ok, bad = _count(rows)
    return Outcome(parts, ok, bad, run_scale(rows), rule, notes or [])


# -- the rows a claim reads -----------------------------------------------------------


def on_paper_data(runs) -> bool:
    """False where every dataset of the runs is from a source other than the paper's (CIFAR-10,
    ImageNet): the paper's stated effects are about its data, so they are not set beside these."""
    from symflow.configuration import parse_dataset_id
    from symflow.sources import SOURCES

    names = set(runs["dataset"].dropna()) if runs is not None and "dataset" in runs else set()
    for name in names:
        try:
            source = parse_dataset_id(name)["source"]
        except ValueError:  # an ImageNet run's dataset: the paper's
            return True
        if source not in SOURCES or SOURCES.get(source).paper:
            return True
    return not names


def _dataset_label(name: str, d: dict) -> str:
    """CIFAR-10's sources by their name, as before ('sample'); any other by its dataset stem and
    digest ('digits.0a030130'), so a verdict says which data it is about."""
    from symflow.sources import dataset_stem

    return d["source"] if d["source"] in ("sample", "official") else f"{dataset_stem(d['source'])}.{d['digest']}"


def run_scale(frame) -> str:
    """The scale of the rows a claim used: data source and resolution, m, widths per architecture."""
    from symflow.configuration import parse_dataset_id

    if frame is None or len(frame) == 0:
        return ""
    parts = []
    for name in sorted(set(frame["dataset"].dropna())) if "dataset" in frame else []:
        try:
            d = parse_dataset_id(name)
            parts.append(f"{_dataset_label(name, d)} {d['resolution']}x{d['resolution']} (n_train {d['n_train']}, "
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


def _label(spec: dict) -> str:
    inf = spec.get("inference") or ("inf" if spec.get("stage") == "regression" else "n")
    return f"{spec.get('architecture', '?')}_{inf} on {spec.get('transform', '?')}"


def _invariant(arch: str, transform: str, inference: str) -> bool:
    """Is this model (kernel for ntk/nngp, finite network otherwise) claimed invariant to the transform's group?"""
    from symflow.architectures import ARCHITECTURES
    from symflow.groups import GROUPS, parse_spec

    spec = parse_spec(transform)
    if GROUPS.get(spec.group).trivial:
        return True
    try:
        return ARCHITECTURES.get(arch).claims(spec.group, infinite=inference in ("ntk", "nngp"))
    except KeyError:
        return False


def pd_concat(*frames):
    import pandas as pd

    frames = [f for f in frames if f is not None and len(f)]
    return pd.concat(frames) if frames else None


# -- predicates: the audits (identities, computed exactly) -------------------------------


def _exact(label: str, value: float, bound: float) -> Part:
    """An identity checked by computation (no sampling noise): holds if value <= bound."""
    est = ev.Estimate(value, value, value, 0.0, 0.0, 0.0, math.inf, 0, 0)
    return Part(label, "holds" if value <= bound else "fails", f"<= {bound:g}", est, margin=bound, scale=1.0, unit="")


def audit_invariant(audit, params: dict, ctx: dict) -> Outcome:
    """Every audited (architecture, transform) pair with claimed_invariant == `claimed` agrees with
    the claim: relative difference of the kernels on tau D and on D within the audit's tolerance
    (claimed invariant) or beyond it (not claimed)."""
    _need_rows(audit, "the symmetry audit")
    claimed = bool(params["claimed"])
    rows = audit[audit["claimed_invariant"].astype(str).str.lower().eq(str(claimed).lower())
                 & ~audit["architecture"].astype(str).str.contains("=")]
    if len(rows) == 0:
        raise Untestable(f"missing runs: no audited pair claimed {'invariant' if claimed else 'not invariant'}")
    parts = []
    for _, r in rows.iterrows():
        diff = max(float(r["max_rel_diff_nngp"]), float(r["max_rel_diff_ntk"]))
        tol = float(r["tolerance"])
        label = f"{r['architecture']} on {r['transform']} (seed {r['seed']})"
        if claimed:
            parts.append(_exact(label, diff, tol))
        else:  # not invariant: the difference must exceed the tolerance
            est = ev.Estimate(diff, diff, diff, 0.0, 0.0, 0.0, math.inf, 0, 0)
            parts.append(Part(label, "holds" if diff > tol else "fails", f"> {tol:g}", est, scale=1.0, unit=""))
    return Outcome(parts, len(rows), 0, run_scale(rows))


def audit_equality(audit, params: dict, ctx: dict) -> Outcome:
    """The audit row of architecture pair `pair` (e.g. LCN=VEC) shows equal kernels."""
    _need_rows(audit, "the symmetry audit")
    rows = audit[audit["architecture"] == params["pair"]]
    if len(rows) == 0:
        raise Untestable(f"missing runs: no audit row {params['pair']}")
    parts = [_exact(f"{r['architecture']} on {r['transform']}",
                    max(float(r["max_rel_diff_nngp"]), float(r["max_rel_diff_ntk"])), float(r["tolerance"]))
             for _, r in rows.iterrows()]
    return Outcome(parts, len(rows), 0, run_scale(rows))


def coupled_identity(coupled, params: dict, ctx: dict) -> Outcome:
    """Thm 4.1's proof at finite width: a network trained on tau D from W equals the network
    trained on D from W tau (the coupled initialisation), step by step: the largest difference of
    their test outputs, relative to the outputs' scale, within the float tolerance. A pair whose
    first layer could not absorb tau (verdict not_coupled) fails: every audited pair is one the
    theorem claims; a pair whose training diverged has no comparison (inconclusive)."""
    _need_rows(coupled, "the coupled-initialisation audit")
    parts = []
    for _, r in coupled.iterrows():
        label = f"{r['architecture']}_{int(r['width'])} {r['recipe']} on {r['transform']} ({int(r['steps'])} steps)"
        verdict = str(r.get("verdict", ""))
        if verdict == "diverged":
            parts.append(ev.not_estimable(label, f"the training diverged at lr {float(r['lr']):.3g}: no outputs to compare"))
        elif verdict == "not_coupled":
            est = ev.Estimate(math.inf, math.inf, math.inf, 0.0, 0.0, 0.0, math.inf, 0, 0)
            parts.append(Part(label, "fails", f"<= {float(r['tolerance']):g}", est, scale=1.0, unit="",
                              why=f"its first layer cannot absorb tau (residual {float(r['coupling_residual']):.2g})"))
        else:
            parts.append(_exact(label, float(r["max_rel_diff"]), float(r["tolerance"])))
    return Outcome(parts, len(coupled), 0, "")


# -- predicates: accuracies of cells ------------------------------------------------------


def chain(frame, params: dict, ctx: dict) -> Outcome:
    """Per architecture, accuracy of `inference` along `chain`, judged as the monotone trends of
    Figs. 3 and S1 are: a step where the model is claimed invariant to both groups (Thm 4.1) is an
    equality within the margin; where the chain has other steps, accuracy falls along it (the
    least-squares slope against the position in the chain below zero) and no such step rises
    decidedly. An architecture fails if a part fails, holds if its equalities and its slope hold."""
    _need_rows(frame, "the figure")
    inference = params["inference"]
    rows = _largest_m(_plain(frame[frame["inference"] == inference]))
    _need_rows(rows, f"inference {inference}")
    order = list(params["chain"])
    rows = rows[rows["transform"].isin(order)]
    margin = float(ctx["claim"].margin or 0.0)
    parts, notes, groups = [], [], []
    for arch in dict.fromkeys(rows["architecture"]):
        present = [t for t in order if len(rows[(rows["architecture"] == arch) & (rows["transform"] == t)])]
        if len(present) < 2:
            notes.append(f"{arch}: runs on {len(present)} transform of the chain, not judged")
            continue
        cells = [_cell_of(rows, {"architecture": arch, "transform": t}, f"{arch} {inference} {t}", ctx)
                 for t in present]
        mine, falling = [], False
        for (t0, a), (t1, b) in zip(zip(present, cells), zip(present[1:], cells[1:])):
            label = f"{arch} {t0} -> {t1}"
            if _invariant(arch, t0, inference) and _invariant(arch, t1, inference):
                # (for kernels read from the same blocks this is exactly 0: the symmetry audit is its evidence)
                mine.append(judge(label + " (invariant: equal)", [b, a], ev.difference(), ctx, margin=margin))
            else:
                falling = True  # a step that may fall: it may not decidedly rise (the trend's slope says the rest)
                mine.append(_not_against(judge(label, [b, a], ev.difference(), ctx, sign=-1)))
        if falling:
            positions = [order.index(t) for t in present]
            mine.insert(0, judge(f"{arch} slope along the chain", cells, ev.slope(positions), ctx, sign=-1,
                                 unit=" points per step"))
        groups.append((len(mine), falling))
        parts += mine
    if not parts:
        raise Untestable("missing runs: no architecture has two transforms of the chain")

    def rule(parts: list[Part]) -> str:
        verdicts, i = [], 0
        for n, falling in groups:
            mine = parts[i:i + n]
            i += n
            if any(p.verdict == "fails" for p in mine):
                verdicts.append("fails")
            elif all(p.verdict == "holds" for p in mine if p.kind != "not_against"):
                verdicts.append("holds")
            else:
                verdicts.append("inconclusive")
        return "fails" if "fails" in verdicts else "holds" if set(verdicts) == {"holds"} else "inconclusive"

    return _outcome(parts, rows, notes, rule)


def _not_against(part: Part) -> Part:
    """A step of a trend: it fails the trend only by going decidedly the other way; holding it
    is the slope's job (an undecided step does not make the trend inconclusive)."""
    return Part(**{**part.__dict__, "claim": part.claim + ", or not decidedly the other way",
                   "kind": "not_against" if part.kind == "direction" else part.kind})


def close(frame, params: dict, ctx: dict) -> Outcome:
    """Accuracy of configuration `a` equals that of `b` within the claim's margin."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    a = _cell_of(rows, params["a"], _label(params["a"]), ctx)
    b = _cell_of(rows, params["b"], _label(params["b"]), ctx)
    part = judge(f"{_label(params['a'])} - {_label(params['b'])}", [a, b], ev.difference(), ctx,
                 margin=float(ctx["claim"].margin))
    return _outcome([part], pd_concat(_select(rows, params["a"]), _select(rows, params["b"])))


def _cells_by(rows, keys: list[str]):
    return dict.fromkeys(zip(*(rows[k] for k in keys)))


def beats(frame, params: dict, ctx: dict) -> Outcome:
    """In every (architecture, transform) cell with (spurious: true) or without a spurious
    symmetry, `better` outperforms each of `worse` (the difference's interval above zero)."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    spurious = ~(rows["architecture"].isin(set(params["compatible_architectures"]))
                 & rows["transform"].isin(set(params["compatible_transforms"])))
    rows = rows[spurious if params["spurious"] else ~spurious]
    _need_rows(rows, "cells " + ("with" if params["spurious"] else "without") + " a spurious symmetry")
    better = params["better"]
    parts, notes = [], []
    for arch, transform in _cells_by(rows, ["architecture", "transform"]):
        here = rows[(rows["architecture"] == arch) & (rows["transform"] == transform)]
        # a finite network's cells are per width; a kernel's rows serve every width
        widths = sorted(set(here.loc[here["stage"] != "regression", "width"].dropna())) or [None]
        for width in widths:
            at = here if width is None else here[(here["width"] == width) | (here["stage"] == "regression")]
            tag = f"{arch} {transform}" + ("" if width is None or len(widths) == 1 else f" n={int(width)}")
            for worse in params["worse"]:
                if not (len(at[at["inference"] == better]) and len(at[at["inference"] == worse])):
                    notes.append(f"{tag}: no {better if not len(at[at['inference'] == better]) else worse} runs")
                    continue
                cb = make_cell(at[at["inference"] == better], f"{tag} {better}", ctx)
                cw = make_cell(at[at["inference"] == worse], f"{tag} {worse}", ctx)
                parts.append(judge(f"{tag}: {better} - {worse}", [cb, cw], ev.difference(), ctx, sign=1))
    if not parts:
        raise Untestable("missing runs: no cell has both inferences" + (f" ({'; '.join(notes)})" if notes else ""))
    return _outcome(parts, rows, ["not compared: " + "; ".join(notes)] if notes else [])


def gain_largest(frame, params: dict, ctx: dict) -> Outcome:
    """The gain from `base` to `gained` inference of `architecture` on `transform` exceeds every
    other architecture's gain (a difference of differences, per other architecture)."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    rows = rows[rows["transform"] == params["transform"]]
    arch, base, gained = params["architecture"], params["base"], params["gained"]

    def cells(a):
        here = rows[rows["architecture"] == a]
        return (_cell_of(here, {"inference": gained}, f"{a} {gained}", ctx),
                _cell_of(here, {"inference": base}, f"{a} {base}", ctx))

    top = cells(arch)
    parts, notes = [], []
    for other in params["others"]:
        if not len(rows[(rows["architecture"] == other) & (rows["inference"] == gained)]):
            notes.append(f"{other}: no {gained} runs")
            continue
        parts.append(judge(f"gain of {arch} - gain of {other}", [*top, *cells(other)], ev.contrast([1, -1, -1, 1]),
                           ctx, sign=1))
    if not parts:
        raise Untestable("missing runs: no other architecture with both inferences" +
                         (f" ({'; '.join(notes)})" if notes else ""))
    return _outcome(parts, rows, notes)


def best_architecture(frame, params: dict, ctx: dict) -> Outcome:
    """For each inference of `inferences`, `architecture` on `transform` outperforms every other
    architecture run with that inference on the same data."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    rows = rows[rows["transform"] == params["transform"]]
    best = params["architecture"]
    parts, notes = [], []
    for inference in params["inferences"]:
        here = rows[rows["inference"] == inference]
        if not len(here[here["architecture"] == best]):
            notes.append(f"{inference}: no {best} runs")
            continue
        top = make_cell(here[here["architecture"] == best], f"{best} {inference}", ctx)
        for other in dict.fromkeys(here["architecture"]):
            if other == best:
                continue
            c = make_cell(here[here["architecture"] == other], f"{other} {inference}", ctx)
            parts.append(judge(f"{inference}: {best} - {other}", [top, c], ev.difference(), ctx, sign=1))
    if not parts:
        raise Untestable("missing runs: no inference with runs of the best architecture and another" +
                         (f" ({'; '.join(notes)})" if notes else ""))
    return _outcome(parts, rows, notes)


def _compare_within(rows, keys: list[str], column: str, first: str, second: str, ctx: dict, **how):
    """Per cell of `keys`, the runs with `column` == first against those with `column` == second
    (judged as `how` says: sign, margin); cells without both are noted. Returns (parts, notes)."""
    parts, notes = [], []
    for key in _cells_by(rows, keys):
        here = rows
        for k, v in zip(keys, key):
            here = here[here[k] == v]
        tag = " ".join(str(v) for v in key)
        a_rows, b_rows = here[here[column] == first], here[here[column] == second]
        if not (len(a_rows) and len(b_rows)):
            notes.append(f"{tag}: no {first if not len(a_rows) else second} runs")
            continue
        cells = [make_cell(a_rows, f"{tag} {first}", ctx), make_cell(b_rows, f"{tag} {second}", ctx)]
        parts.append(judge(f"{tag}: {first} - {second}", cells, ev.difference(), ctx, **how))
    return parts, notes


def nngp_close_to_ntk(frame, params: dict, ctx: dict) -> Outcome:
    """Per (architecture, transform), NNGP regression's accuracy within the margin of NTK regression's."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame[frame["stage"] == "regression"]))
    parts, _ = _compare_within(rows, ["architecture", "transform"], "inference", "nngp", "ntk", ctx,
                               margin=float(ctx["claim"].margin))
    if not parts:
        raise Untestable("missing runs: no cell with both NNGP and NTK regression")
    return _outcome(parts, rows)


def tau_spread_small(frame, params: dict, ctx: dict) -> Outcome:
    """The spread between runs that differ only in tau (and, for networks, the initialisation) is
    small: per cell of `inferences` with at least two successful runs, the standard deviation of
    their accuracies (ANOVA's sigma_s, images' noise removed) has a 95% interval (chi-square on
    k - 1 degrees of freedom) below the margin (holds) or above it (fails)."""
    from scipy import stats

    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame[frame["inference"].isin(params["inferences"])]))
    rows = rows[rows["transform"] != "identity"]
    margin = float(ctx["claim"].margin)
    parts, notes = [], []
    for arch, transform, inf in _cells_by(rows, ["architecture", "transform", "inference"]):
        here = rows[(rows["architecture"] == arch) & (rows["transform"] == transform) & (rows["inference"] == inf)]
        c = make_cell(here, f"{arch} {inf} {transform}", ctx)
        if not c.seeded:
            continue  # the kernel is invariant to this group: every tau gives the same predictions
        if c.k < 2:
            notes.append(f"{c.label}: {c.k} successful run(s)")
            continue
        ms_run, ms_res = c.anova()
        sd = math.sqrt(max(ms_run - ms_res, 0.0) / c.n)
        # the upper bound of sigma_s from MS_runs ~ E[MS] chi2_{k-1} / (k - 1): conservative (it keeps MS_res)
        hi = math.sqrt(ms_run * (c.k - 1) / stats.chi2.ppf((1 - ev.LEVEL) / 2, c.k - 1) / c.n)
        lo = _sd_low(ms_run, ms_res, c)
        est = ev.Estimate(sd, lo, hi, math.nan, math.nan, math.nan, c.k - 1, c.k, c.n, (c,))
        verdict = "holds" if hi < margin else "fails" if lo > margin else "inconclusive"
        refails = (lambda ms_run, ms_res, c: lambda level: _sd_low(ms_run, ms_res, c, level) > margin)(ms_run, ms_res, c)
        part = Part(f"{c.label} sd over {c.k} runs", verdict, f"< {margin * POINTS:g} points", est, margin=margin,
                    refails=refails)
        if verdict == "inconclusive":
            part = Part(**{**part.__dict__, "decide": f"more runs per cell (now {c.k}): the upper bound shrinks as "
                                                      f"sqrt((k-1)/chi2_(k-1))"})
        parts.append(part)
    if not parts:
        raise Untestable("too few successful runs: no cell that depends on tau has two runs" +
                         (f" ({_some(notes)})" if notes else ""))
    return _outcome(parts, rows, notes)


def _some(items: list[str], k: int = 3) -> str:
    """The first k items, and how many more."""
    return "; ".join(items[:k]) + (f"; and {len(items) - k} more" if len(items) > k else "")


def _sd_low(ms_run: float, ms_res: float, c: ev.Cell, level: float = ev.LEVEL) -> float:
    from scipy import stats

    return math.sqrt(max(ms_run * (c.k - 1) / stats.chi2.ppf(0.5 + level / 2, c.k - 1) - ms_res, 0.0) / c.n)


def _trend_parts(label: str, seq: list[tuple[float, ev.Cell]], x_of, sign: int, ctx: dict, *, scale=POINTS,
                 unit=" points") -> list[Part]:
    """A monotone trend along x: the least-squares slope of the means against x_of(x) (claimed
    sign), and every step between neighbours (a step decided against the direction fails the trend)."""
    xs = [x_of(x) for x, _ in seq]
    cells = [c for _, c in seq]
    slope = judge(f"{label}: slope", cells, ev.slope(xs), ctx, sign=sign, scale=scale, unit=unit + " per unit")
    steps = [judge(f"{label}: {x0:g} -> {x1:g}", [c1, c0], ev.difference(), ctx, sign=sign, scale=scale, unit=unit)
             for (x0, c0), (x1, c1) in zip(seq, seq[1:])]
    return [slope, *steps]


def _trend_rule(series: list[list[Part]]):
    """The verdict of trend series (slope then steps each) from the claim's parts, in their order."""
    sizes = [len(s) for s in series]

    def rule(parts: list[Part]) -> str:
        groups, i = [], 0
        for n in sizes:
            groups.append(parts[i:i + n])
            i += n
        return _trend_verdict(groups)

    return rule


def _trend_verdict(series: list[list[Part]]) -> str:
    """Each series: its slope then its steps. A series fails if its slope fails or a step fails;
    it holds if its slope holds. The claim: the conjunction of its series."""
    out = []
    for parts in series:
        slope, steps = parts[0], parts[1:]
        if slope.verdict == "fails" or any(p.verdict == "fails" for p in steps):
            out.append("fails")
        elif slope.verdict == "holds":
            out.append("holds")
        else:
            out.append("inconclusive")
    return "fails" if "fails" in out else "holds" if out and set(out) == {"holds"} else "inconclusive"


def monotone_in_width(frame, params: dict, ctx: dict) -> Outcome:
    """Per recipe, the finite network's accuracy is monotone (direction) in the width: its slope
    against log2(width) on the claimed side, and no step between widths decided against it."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    rows = rows[(rows["architecture"] == params["architecture"]) & (rows["transform"] == params["transform"])
                & rows["inference"].isin(params["recipes"])]
    _need_rows(rows, f"{params['architecture']}_n on {params['transform']}")
    sign = 1 if params["direction"] == "increasing" else -1
    series = []
    for recipe in params["recipes"]:
        here = rows[rows["inference"] == recipe]
        seq = [(float(w), make_cell(here[here["width"] == w], f"{recipe} n={int(w)}", ctx))
               for w in sorted(set(here["width"].dropna()))]
        if len(seq) >= 2:
            series.append(_trend_parts(recipe, seq, math.log2, sign, ctx))
    if not series:
        raise Untestable("missing runs: fewer than two widths")
    return _outcome([p for s in series for p in s], rows, rule=_trend_rule(series))


def below_kernel(frame, params: dict, ctx: dict) -> Outcome:
    """Per recipe and width, the finite network's accuracy is below the kernel's on the same data."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    rows = rows[(rows["architecture"] == params["architecture"]) & (rows["transform"] == params["transform"])]
    kern_rows = rows[rows["inference"] == params["kernel"]]
    if not len(kern_rows):
        raise Untestable(f"missing runs: no {params['architecture']}_inf ({params['kernel']}) on {params['transform']}")
    kern = make_cell(kern_rows, f"{params['architecture']}_inf", ctx)
    nets = rows[rows["inference"].isin(params["recipes"])]
    if not len(nets):
        raise Untestable("missing runs: no finite-width run")
    parts = []
    for recipe, width in sorted(_cells_by(nets, ["inference", "width"])):
        c = make_cell(nets[(nets["inference"] == recipe) & (nets["width"] == width)], f"{recipe} n={int(width)}", ctx)
        parts.append(judge(f"{recipe} n={int(width)} - kernel", [c, kern], ev.difference(), ctx, sign=-1))
    return _outcome(parts, rows)


def peak_width(frame, params: dict, ctx: dict) -> Outcome:
    """Per recipe, a peak near the paper's: at some width within a factor 2 of the paper's peak,
    accuracy is above the accuracy at the largest width. Each such width is a part, judged at
    Bonferroni level 1 - 0.05 / (number of candidate widths) (the widths are not chosen by their
    results); the recipe holds if one of them holds, fails if every one fails, else inconclusive."""
    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    rows = rows[(rows["architecture"] == params["architecture"]) & (rows["transform"] == params["transform"])
                & rows["inference"].isin(list(params["peaks"]))]
    _need_rows(rows, f"{params['architecture']}_n on {params['transform']}")
    parts, notes, sizes = [], [], []
    for recipe, peak in params["peaks"].items():
        here = rows[rows["inference"] == recipe]
        widths = sorted(int(w) for w in set(here["width"].dropna()))
        candidates = [w for w in widths if peak / 2 <= w <= 2 * peak and w < (widths[-1] if widths else 0)]
        if not widths or min(widths) >= peak or max(widths) < 2 * peak or not candidates:
            notes.append(f"{recipe}: widths {'/'.join(map(str, widths)) or 'none'} do not bracket the paper's "
                         f"peak at n ~ {peak} (need a width below {peak} and one >= {2 * peak})")
            continue
        last = make_cell(here[here["width"] == widths[-1]], f"{recipe} n={widths[-1]}", ctx)
        level = 1 - (1 - ev.LEVEL) / len(candidates)
        mine = [judge(f"{recipe}: n={w} - n={widths[-1]}", [make_cell(here[here["width"] == w], f"{recipe} n={w}", ctx),
                                                              last], ev.difference(), ctx, sign=1, level=level)
                for w in candidates]
        sizes.append(len(mine))
        parts += mine
    if not parts:
        raise Untestable("scale: " + "; ".join(notes))

    def rule(parts: list[Part]) -> str:  # a recipe holds if one candidate holds, fails if every one fails
        verdicts, i = [], 0
        for n in sizes:
            got = {p.verdict for p in parts[i:i + n]}
            verdicts.append("holds" if "holds" in got else "fails" if got == {"fails"} else "inconclusive")
            i += n
        return "fails" if "fails" in verdicts else "holds" if set(verdicts) == {"holds"} else "inconclusive"

    return _outcome(parts, rows, notes, rule)


def curves_close(frame, params: dict, ctx: dict) -> Outcome:
    """At every m < max_m run for both, accuracy of curves `a` and `b` agree within the margin."""
    _need_rows(frame, "the figure")
    rows = _plain(frame)
    if params.get("max_m"):
        rows = rows[rows["m"] < params["max_m"]]
    a_rows, b_rows = _select(rows, params["a"]), _select(rows, params["b"])
    common = sorted(set(a_rows["m"].dropna()) & set(b_rows["m"].dropna()))
    if not common:
        raise Untestable(f"missing runs: no m < {params.get('max_m')} with runs of both curves")
    margin = float(ctx["claim"].margin)
    parts = []
    for m in common:
        a = make_cell(a_rows[a_rows["m"] == m], f"{_label(params['a'])} m={int(m)}", ctx)
        b = make_cell(b_rows[b_rows["m"] == m], f"{_label(params['b'])} m={int(m)}", ctx)
        parts.append(judge(f"m={int(m)}", [a, b], ev.difference(), ctx, margin=margin))
    return _outcome(parts, pd_concat(a_rows, b_rows))


def _curve_cells(rows, spec: dict, ctx: dict, kind: str, max_m: float | None = None) -> tuple[Any, list]:
    sel = _select(rows, spec)
    if max_m is not None:
        sel = sel[sel["m"] < max_m]
    seq = [(float(m), make_cell(sel[sel["m"] == m], f"{_label(spec)} m={int(m)}", ctx, kind))
           for m in sorted(set(sel["m"].dropna()))]
    return sel, seq


def slopes_comparable(frame, params: dict, ctx: dict) -> Outcome:
    """Power-law slopes of test MSE over m < max_m: each curve's slope over the reference's, minus
    one, within the margin (a relative margin: 0.5 = within half the reference's slope)."""
    _need_rows(frame, "the figure")
    rows = _plain(frame)
    need = int(params.get("min_points", 3))
    used, ref = _curve_cells(rows, params["reference"], ctx, "sq_error", params.get("max_m"))
    if len(ref) < need:
        raise Untestable(f"missing runs: {_label(params['reference'])} has {len(ref)} sizes below "
                         f"m = {params.get('max_m')} (need {need})")
    margin = float(ctx["claim"].margin)
    parts, frames, notes = [], [used], []
    for spec in params["curves"]:
        sel, pts = _curve_cells(rows, spec, ctx, "sq_error", params.get("max_m"))
        frames.append(sel)
        common = sorted({m for m, _ in pts} & {m for m, _ in ref})
        if len(common) < need:
            notes.append(f"{_label(spec)}: {len(common)} sizes shared with the reference, not fitted")
            continue
        x = np.log(common)
        cells = [c for m, c in pts if m in common] + [c for m, c in ref if m in common]
        s_curve, s_ref = ev.slope(x, log_y=True), ev.slope(x, log_y=True)
        j = len(common)
        fn = (lambda s1, s2, j: lambda mu: s1(mu[..., :j]) / s2(mu[..., j:]) - 1.0)(s_curve, s_ref, j)
        parts.append(judge(f"{_label(spec)} slope / reference slope - 1", cells, fn, ctx, margin=margin,
                           scale=1.0, unit=""))
    if not parts:
        raise Untestable("missing runs: no curve besides the reference has enough sizes")
    return _outcome(parts, pd_concat(*frames), notes)


def cusp(frame, params: dict, ctx: dict) -> Outcome:
    """The `cusp` curve steepens (its MSE slope over the last `points` sizes is more negative than
    over the first) more than each of the others does (a difference of steepenings, above zero)."""
    _need_rows(frame, "the figure")
    rows = _plain(frame)
    largest = float(rows["m"].max())
    if largest < float(params["min_max_m"]):
        raise Untestable(f"scale: the run's largest m is {int(largest)}; the paper's cusp is above "
                         f"m = {int(params['min_max_m'])}")
    points = int(params["points"])

    def steepening(spec):
        sel, pts = _curve_cells(rows, spec, ctx, "sq_error")
        if len(pts) < points + 1:
            raise Untestable(f"missing runs: {_label(spec)} has {len(pts)} sizes (need {points + 1})")
        xs = np.log([m for m, _ in pts])
        first, last = ev.slope(xs[:points], log_y=True), ev.slope(xs[-points:], log_y=True)
        j = len(pts)
        return sel, [c for _, c in pts], (lambda f, l, j: lambda mu: f(mu[..., :points]) - l(mu[..., j - points:j]))(first, last, j)

    sel, cells, steep = steepening(params["cusp"])
    parts, frames = [judge(f"{_label(params['cusp'])} steepening", cells, steep, ctx, sign=1, scale=1.0, unit="")], [sel]
    for spec in params["others"]:
        osel, ocells, osteep = steepening(spec)
        frames.append(osel)
        j = len(cells)
        fn = (lambda a, b, j: lambda mu: a(mu[..., :j]) - b(mu[..., j:]))(steep, osteep, j)
        parts.append(judge(f"steepening of {_label(params['cusp'])} - of {_label(spec)}", cells + ocells, fn, ctx,
                           sign=1, scale=1.0, unit=""))
    return _outcome(parts, pd_concat(*frames))


def monotone_path(frame, params: dict, ctx: dict) -> Outcome:
    """Fig. S1: `value` (ensemble accuracy, S-Dist to GAP_n or to VEC_inf) is monotone (direction)
    along `along` (t or width) at each value of the other axis: slope and steps, as in
    monotone_in_width. Each point is one ensemble per seed; its spread needs two seeds."""
    _need_rows(frame, "Fig. S1")
    value, along = params["value"], params["along"]
    other = "width" if along == "t" else "t"
    from symflow.ensemble import ensemble_runs

    rows = ensemble_runs(frame)  # an ensemble with no successful member is failed, never a data point
    rows = rows.assign(stage="ensemble", architecture=rows["architecture"].astype(str),
                       transform=rows["t"].map(lambda t: f"so3_path-t{t:g}"))
    sign = 1 if params["direction"] == "increasing" else -1
    kind = "correct" if value == "accuracy" else value
    series = []
    for key, group in rows.groupby(other, sort=True):
        seq = []
        for x in sorted(set(group[along].dropna())):
            sub = group[group[along] == x]
            seq.append((float(x), _sdist_cell(sub, f"{other}={key:g} {along}={x:g}", ctx, kind)))
        if len(seq) >= 2:
            x_of = math.log2 if along == "width" else float
            scale, unit = (POINTS, " points") if kind == "correct" else (1.0, "")
            series.append(_trend_parts(f"{other}={key:g}", seq, x_of, sign, ctx, scale=scale, unit=unit))
    if not series:
        raise Untestable(f"missing runs: fewer than two values of {along} at any {other}")
    return _outcome([p for s in series for p in s], rows, rule=_trend_rule(series))


def _sdist_cell(rows, label: str, ctx: dict, kind: str) -> ev.Cell:
    """A Fig. S1 point: its ensembles' accuracy (kind 'correct') or S-Dist to a reference."""
    if kind == "correct":
        return make_cell(rows, label, ctx, "correct")
    preds = ctx.get("predictions")
    if preds is None:
        raise Untestable(f"missing table {TABLE_FILES['predictions']}: the per-image results the intervals need")
    ref = {"sdist_gap": "gap", "sdist_vec_inf": "inf"}[kind]
    ok = rows[~rows["failed"]]
    values, sets = [], set()
    for path in ok["path"]:
        try:
            testset, v = preds.sdist[(str(path), ref)]
        except KeyError:
            raise Untestable(f"no per-image S-Dist of {path} ({ref}) in {TABLE_FILES['predictions']}") from None
        values.append(np.asarray(v, np.float64))
        sets.add(testset)
    n = len(values[0]) if values else 0
    return ev.Cell(label, np.array(values) if values else np.zeros((0, n)), sets.pop() if sets else "", True,
                   int(len(rows) - len(ok)))


def init_close(frame, params: dict, ctx: dict) -> Outcome:
    """Fig. S5: per (architecture, transform, recipe), uniform and Gaussian first layers agree within the margin."""
    _need_rows(frame, "Fig. S5")
    rows = frame[frame["stage"] == "sgd"].copy()
    rows = rows[rows["member"].fillna(0) == 0]
    rows["init"] = rows["init"].replace("", "gaussian")
    parts, notes = _compare_within(rows, ["architecture", "transform", "inference"], "init", "uniform", "gaussian",
                                   ctx, margin=float(ctx["claim"].margin))
    if not parts:
        raise Untestable("missing runs: no configuration with runs of both inits")
    return _outcome(parts, rows, notes)


def variance_ratio(frame, params: dict, ctx: dict) -> Outcome:
    """Fig. 3: at each width of `widths`, the spread between seeds of `larger` (a recipe) exceeds
    that of `smaller` on `transform`: the ratio of their between-run mean squares (ANOVA's MS_runs,
    each run's mean over the same images) with an F interval; holds where its lower bound is above 1."""
    from scipy import stats

    _need_rows(frame, "the figure")
    rows = _largest_m(_plain(frame))
    rows = rows[(rows["architecture"] == params["architecture"]) & (rows["transform"] == params["transform"])]
    parts, notes = [], []
    for w in params["widths"]:
        here = rows[rows["width"] == w]
        if not (len(here[here["inference"] == params["larger"]]) and len(here[here["inference"] == params["smaller"]])):
            notes.append(f"n={w}: not run with both recipes")
            continue
        a = make_cell(here[here["inference"] == params["larger"]], f"{params['larger']} n={w}", ctx)
        b = make_cell(here[here["inference"] == params["smaller"]], f"{params['smaller']} n={w}", ctx)
        label = f"n={w}: var {params['larger']} / var {params['smaller']}"
        if a.k < 2 or b.k < 2:
            parts.append(ev.not_estimable(label, f"{a.k} and {b.k} successful seeds; a spread needs at least 2 each"))
            continue
        va, vb = a.anova()[0], b.anova()[0]
        if vb <= 0:
            parts.append(ev.not_estimable(label, f"{b.label}: its runs agree exactly"))
            continue
        ratio = va / vb
        d1, d2 = a.k - 1, b.k - 1
        lo = ratio / stats.f.ppf(0.5 + ev.LEVEL / 2, d1, d2)
        hi = ratio / stats.f.ppf(0.5 - ev.LEVEL / 2, d1, d2)
        est = ev.Estimate(ratio, lo, hi, math.nan, math.nan, math.nan, min(d1, d2), min(a.k, b.k), a.n, (a, b))
        verdict = "holds" if lo > 1 else "fails" if hi < 1 else "inconclusive"
        refails = (lambda r, d1, d2: lambda level: r / stats.f.ppf(0.5 - level / 2, d1, d2) < 1)(ratio, d1, d2)
        part = Part(label, verdict, "> 1", est, scale=1.0, unit="x", refails=refails)
        if verdict == "inconclusive":
            part = Part(**{**part.__dict__, "decide": f"more seeds per cell (now {a.k} and {b.k}): an F interval on "
                                                      f"{d1} and {d2} degrees of freedom is wide"})
        parts.append(part)
    if not parts:
        raise Untestable("missing runs: no width with runs of both recipes")
    return _outcome(parts, rows, notes)


def _kernel_curves(frame, min_points: int, min_span: float, ctx: dict):
    """The kernel learning curves (per-image squared error against m) with at least min_points
    sizes; a run whose sizes span less than min_span (largest m / smallest m) cannot show a power
    law: untestable."""
    rows = frame[frame["stage"] == "regression"]
    out = {}
    for key, group in rows.groupby(["architecture", "transform", "inference"], sort=False):
        ms = sorted(set(group["m"].dropna()))
        if len(ms) >= min_points:
            out[key] = ms
    spans = [ms[-1] / ms[0] for ms in out.values()]
    if spans and max(spans) < min_span:
        sizes = sorted({int(m) for ms in out.values() for m in ms})
        raise Untestable(f"scale: the learning curves span m = {sizes[0]} to {sizes[-1]}, a factor of {max(spans):g}; "
                         f"a power law needs at least a factor of {min_span:g} (the paper's span 320 to 45,000)")
    curves = {}
    for (arch, transform, inf), ms in out.items():
        spec = {"architecture": arch, "transform": transform, "inference": inf}
        curves[(arch, transform, inf)] = _curve_cells(rows, spec, ctx, "sq_error")[1]
    return rows, curves


def _r2(x: np.ndarray) -> Callable:
    xc = x - x.mean()

    def f(mu):
        y = np.log(np.clip(mu, 1e-300, None))
        yc = y - y.mean(axis=-1, keepdims=True)
        b = (yc @ xc) / float(xc @ xc)
        resid = yc - b[..., None] * xc
        return 1.0 - (resid**2).sum(axis=-1) / np.maximum((yc**2).sum(axis=-1), 1e-300)

    return f


def power_law_fits(frame, params: dict, ctx: dict) -> Outcome:
    """Fig. S6: more than `fraction` of the kernel learning curves are straight lines in log-log:
    R^2 of log test MSE against log m, its interval above min_r2 (holds for that curve) or below it."""
    _need_rows(frame, "Fig. S6")
    rows, curves = _kernel_curves(frame, int(params.get("min_points", 3)), float(params.get("min_span", 1.0)), ctx)
    if not curves:
        raise Untestable(f"scale: no kernel learning curve with {params.get('min_points', 3)} or more sizes")
    r2 = float(params["min_r2"])
    parts = []
    for (arch, transform, inf), pts in curves.items():
        x = np.log([m for m, _ in pts])
        fn = (lambda f: lambda mu: f(mu) - r2)(_r2(x))
        parts.append(judge(f"{arch} {transform} {inf}: R2 - {r2:g}", [c for _, c in pts], fn, ctx, sign=1, scale=1.0,
                           unit=""))
    frac = float(params["fraction"])

    def rule(parts: list[Part]) -> str:  # more than `fraction` of the curves straight, or at least the rest not
        good = sum(p.verdict == "holds" for p in parts)
        bad = sum(p.verdict == "fails" for p in parts)
        return "holds" if good > frac * len(parts) else "fails" if bad >= (1 - frac) * len(parts) else "inconclusive"

    return _outcome(parts, rows, [f"more than {frac:.0%} of the {len(parts)} curves must be straight (holds) or "
                                  f"{1 - frac:.0%} not (fails)"], rule)


def exponent_chain(frame, params: dict, ctx: dict) -> Outcome:
    """Fig. S6: per (architecture, kernel), along `chain`: where the kernel is invariant to both groups
    the MSE exponents are equal within the margin; elsewhere the exponent's magnitude does not grow by
    more than the margin from one transform to the next (the interval of the growth below it)."""
    _need_rows(frame, "Fig. S6")
    rows, curves = _kernel_curves(frame, int(params.get("min_points", 2)), float(params.get("min_span", 1.0)), ctx)
    order = list(params["chain"])
    margin = float(ctx["claim"].margin)
    parts = []
    for arch, inf in dict.fromkeys((a, i) for a, _, i in curves):
        seq = [(t, curves[(arch, t, inf)]) for t in order if (arch, t, inf) in curves]
        for (t0, p0), (t1, p1) in zip(seq, seq[1:]):
            common = sorted({m for m, _ in p0} & {m for m, _ in p1})
            if len(common) < 2:
                continue
            x = np.log(common)
            j = len(common)
            s = ev.slope(x, log_y=True)
            cells = [c for m, c in p1 if m in common] + [c for m, c in p0 if m in common]
            fn = (lambda s, j: lambda mu: np.abs(s(mu[..., :j])) - np.abs(s(mu[..., j:])))(s, j)
            label = f"{arch} {inf} {t0} -> {t1}: |exponent| change"
            if _invariant(arch, t0, inf) and _invariant(arch, t1, inf):  # the same symmetry: the same exponent
                parts.append(judge(label + " (invariant: equal)", cells, fn, ctx, margin=margin, scale=1.0, unit=""))
            else:
                parts.append(judge(label, cells, fn, ctx, at_most=margin, scale=1.0, unit=""))
    if not parts:
        raise Untestable("missing runs: no architecture has learning curves on two transforms of the chain")
    return _outcome(parts, rows)


def imagenet_slope(slopes, params: dict, ctx: dict) -> Outcome:
    """Fig. 5: alpha of one (model, transform) learning curve in one phase (first: i >= 6, second:
    i < 6, all) within the claim's margin of the paper's `value`, for the test error or the test
    loss (the paper does not say which it fits: either counts, and the row says where they
    disagree); its interval is the least-squares
    fit's (t on points - 2 degrees of freedom: the scatter of the curve's points about the line).
    With `max_bend`, that quantity's curve is also one power law (the two phases' alphas within
    max_bend). Untestable below the paper's scale: fewer than `min_points` sizes, or a largest m
    under `min_max_m`."""
    from scipy import stats

    model, transform, phase = params["model"], params["transform"], params["phase"]
    value, margin = float(params["value"]), float(ctx["claim"].margin)
    rows = slopes[(slopes["model"] == model) & (slopes["transform"] == transform) & (slopes["phase"] == phase)]
    label = f"{model} on {transform}"
    if rows.empty:
        raise Untestable(f"missing runs: no learning curve of {label} in the slope table")
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
        raise Untestable(f"missing runs: {label} has {int(rows['points'].max())} sizes with successful "
                         f"runs in the {phase} phase (the paper fits {need})")
    parts, sizes = [], []
    for q in params.get("quantities", ["error", "loss"]):
        r = usable[usable["quantity"] == q]
        if r.empty:
            continue
        alpha = float(r["alpha"].iloc[0])
        se = float(r["alpha_se"].iloc[0]) if "alpha_se" in r else math.nan
        pts = int(r["points"].iloc[0])
        q_label = f"{label} {q}: alpha - {value:g}"
        mine = []
        if pts <= 2:
            mine.append(ev.not_estimable(q_label, f"{pts} points: a fit's interval needs at least 3"))
        elif not math.isfinite(se):
            mine.append(ev.not_estimable(q_label, "the fit has no standard error (alpha_se missing or not finite)"))
        else:
            half = float(stats.t.ppf(0.5 + ev.LEVEL / 2, pts - 2)) * se
            est = ev.Estimate(alpha - value, alpha - value - half, alpha - value + half, se, se, 0.0, pts - 2, 0, pts)
            mine.append(ev.closeness(q_label, est, margin, scale=1.0, unit=""))
        if "max_bend" in params:  # one power law: the two phases' alphas within max_bend of each other
            phases = slopes[(slopes["model"] == model) & (slopes["transform"] == transform)
                            & (slopes["quantity"] == q)].set_index("phase")
            mine.append(_bend(f"{label} {q}: second - first phase alpha", phases, float(params["max_bend"])))
        sizes.append(len(mine))
        parts += mine
    if not parts:
        raise Untestable(f"missing runs: no fitted quantity among {params.get('quantities')} for {label}")

    def rule(parts: list[Part]) -> str:
        # the paper does not say whether it fits the error or the loss: the claim holds where one of
        # them holds (that may be the paper's), fails where every one fails
        got, i = set(), 0
        for n in sizes:
            got.add(ev.conjunction(parts[i:i + n]))
            i += n
        return "holds" if "holds" in got else "fails" if got == {"fails"} else "inconclusive"

    return Outcome(parts, runs - failed, failed, scale, rule,
                   ["either quantity counts: the paper does not say whether it fits the error or the loss"])


def _bend(label: str, phases, max_bend: float) -> Part:
    """The second phase's alpha minus the first's, with the two fits' intervals combined (their
    points are disjoint), within +-max_bend."""
    from scipy import stats

    try:
        a1, a2 = float(phases.loc["first", "alpha"]), float(phases.loc["second", "alpha"])
        s1, s2 = float(phases.loc["first", "alpha_se"]), float(phases.loc["second", "alpha_se"])
        df = min(int(phases.loc["first", "points"]), int(phases.loc["second", "points"])) - 2
    except (KeyError, ValueError):
        return ev.not_estimable(label, "a phase was not fitted")
    if not all(math.isfinite(v) for v in (a1, a2, s1, s2)) or df < 1:
        return ev.not_estimable(label, "a phase's fit has no interval (fewer than 3 points)")
    se = math.hypot(s1, s2)
    half = float(stats.t.ppf(0.5 + ev.LEVEL / 2, df)) * se
    est = ev.Estimate(a2 - a1, a2 - a1 - half, a2 - a1 + half, se, se, 0.0, df, 0, 0)
    return ev.closeness(label, est, max_bend, scale=1.0, unit="")


def _finite(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))  # numpy's float64 is a float


PREDICATES: dict[str, Callable] = {
    f.__name__: f
    for f in (audit_invariant, audit_equality, coupled_identity, chain, close, beats, gain_largest,
              best_architecture, nngp_close_to_ntk, tau_spread_small, monotone_in_width, below_kernel, peak_width,
              curves_close, slopes_comparable, cusp, monotone_path, init_close, variance_ratio, power_law_fits,
              exponent_chain, imagenet_slope)
}
NEEDS_MARGIN = {"chain", "close", "nngp_close_to_ntk", "tau_spread_small", "curves_close", "slopes_comparable",
                "init_close", "exponent_chain", "imagenet_slope"}


# -- evaluation -----------------------------------------------------------------------


def _fmt(x: float | None, scale: float) -> str:
    return "" if x is None or not math.isfinite(x) else f"{x * scale:.6g}"


def evaluate(tables: dict[str, Any], claims: list[Claim] | None = None, resamples: int = ev.RESAMPLES):
    """One row per claim (CLAIM_COLUMNS): the verdict on these tables. Never raises for a failing claim."""
    import json

    import pandas as pd

    claims = load_claims() if claims is None else claims
    paper_data = on_paper_data(tables.get("runs"))
    rows = []
    for claim in claims:
        row = {"claim": claim.id, "source": claim.source, "paper_scale": claim.scale, "predicate": claim.predicate,
               "params": json.dumps(claim.params, sort_keys=True), "compares": claim.compares, "quote": claim.quote,
               "paper_effect": claim.paper_effect if paper_data else "", "reason": "", "measured": "", "n_runs": 0, "n_failed": 0,
               "run_scale": "", "effect": "", "low": "", "high": "", "margin": "", "unit": "", "decide": ""}
        ctx = {"predictions": tables.get("predictions"), "claim": claim, "resamples": resamples}
        try:
            if tables.get(claim.table) is None:
                raise Untestable(MISSING_TABLE.get(claim.table)
                                 or f"missing table {TABLE_FILES.get(claim.table, claim.table)}")
            out = PREDICATES[claim.predicate](tables[claim.table], claim.params, ctx)
            row.update(_row_of(out))
        except Untestable as exc:
            row.update(verdict="untestable", reason=str(exc))
        if not paper_data and not row["run_scale"]:  # other data: every verdict names them
            row["run_scale"] = run_scale(tables["runs"][["dataset"]])
        rows.append(row)
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))


def _row_of(out: Outcome) -> dict:
    out = Outcome(ev.family_wise(out.parts), out.n_runs, out.n_failed, out.run_scale, out.rule, out.notes)
    verdict = out.rule(out.parts) if out.rule else ev.conjunction(out.parts)
    key = ev.decisive(out.parts, verdict) or (out.parts[0] if out.parts else None)
    n_parts = len(out.parts)
    counts = {v: sum(p.verdict == v for p in out.parts) for v in ("holds", "fails", "inconclusive")}
    tally = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    row = {"verdict": verdict, "measured": "; ".join([p.text() for p in out.parts] + out.notes),
           "n_runs": out.n_runs, "n_failed": out.n_failed, "run_scale": out.run_scale}
    if key is not None:
        lead = {"holds": "weakest part", "fails": "failing part", "inconclusive": "undecided part"}[verdict]
        row["reason"] = (f"{lead} of {n_parts} ({tally}): " if n_parts > 1 else "") + key.text()
        if out.notes:  # cells the claim names that this run has not (or not both sides of)
            row["reason"] += "; " + _some(out.notes)
        if key.estimate is not None:
            e = key.estimate
            row.update(effect=_fmt(e.effect, key.scale), low=_fmt(e.low, key.scale), high=_fmt(e.high, key.scale),
                       unit=key.unit.strip())
        if key.margin is not None:
            row["margin"] = _fmt(key.margin, key.scale)
        if verdict == "inconclusive":
            row["decide"] = _decide([p for p in out.parts if p.verdict == "inconclusive"])
    return row


def _decide(undecided: list[Part]) -> str:
    """What would decide the undecided parts, grouped: parts that need the same thing are named together."""
    import re

    groups: dict[str, list[str]] = {}
    for p in undecided:
        # planning figures differ by part: group by their kind, keep the largest
        key = re.sub(r"[\d,]+", "N", p.decide) if p.decide else "more seeds or test images"
        groups.setdefault(key, []).append(p)
    out = []
    for key, parts in groups.items():
        worst = max(parts, key=lambda p: [int(x.replace(",", "")) for x in re.findall(r"[\d,]+\d|\d", p.decide)] or [0])
        text = worst.decide or "more seeds or test images"
        names = ", ".join(p.label for p in parts[:3]) + (f" and {len(parts) - 3} more" if len(parts) > 3 else "")
        out.append(f"{text} ({names})")
    return "; ".join(out)


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
    """A plain-text listing: verdict, claim, source, then the deciding effect and interval (or why
    untestable), and what would decide an inconclusive claim."""
    import textwrap

    lines = []
    counts = frame["verdict"].value_counts().to_dict()
    lines.append("claims: " + ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS))
    for _, r in frame.iterrows():
        lines.append(f"{r['verdict']:<12} {r['claim']}  ({r['source']})")
        lines += textwrap.wrap(str(r["reason"]), width, initial_indent=" " * 13, subsequent_indent=" " * 13)
        if isinstance(r.get("paper_effect"), str) and r["paper_effect"]:
            lines += textwrap.wrap(f"paper: {r['paper_effect']}", width, initial_indent=" " * 13,
                                   subsequent_indent=" " * 15)
        if isinstance(r.get("decide"), str) and r["decide"]:
            lines += textwrap.wrap(f"to decide: {r['decide']}", width, initial_indent=" " * 13,
                                   subsequent_indent=" " * 15)
        if r["run_scale"]:
            lines += textwrap.wrap(f"run: {r['run_scale']}", width, initial_indent=" " * 13, subsequent_indent=" " * 15)
    return "\n".join(lines)


README_BEGIN = "<!-- symflow claims: begin (generated by `symflow claims RESULTS --readme FILE`; do not edit) -->"
README_END = "<!-- symflow claims: end -->"


def _effect_text(r) -> str:
    if r["effect"] == "" or r["effect"] is None or (isinstance(r["effect"], float) and math.isnan(r["effect"])):
        return ""
    unit = r["unit"] if isinstance(r["unit"], str) else ""
    e, lo, hi = float(r["effect"]), float(r["low"]), float(r["high"])
    fmt = (lambda x: f"{x:+.1f}") if unit == "points" else (lambda x: f"{x:+.3g}")
    margin = r["margin"]
    has_margin = margin != "" and not (isinstance(margin, float) and math.isnan(margin))
    return (f"{fmt(e)} [{fmt(lo)}, {fmt(hi)}]{' ' + unit if unit else ''}"
            + (f" (margin {float(margin):g})" if has_margin else ""))


def markdown_table(frame) -> str:
    """The claims as a Markdown table: claim and source, the paper's effect, the measured effect with
    its 95% interval, the verdict, and why (or what would decide it)."""
    def cell(x) -> str:
        text = "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)
        return text.replace("|", "\\|").replace("\n", " ")

    counts = frame["verdict"].value_counts().to_dict()
    lines = [", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS), "",
             "| claim | source | paper | measured [95% interval] | verdict | why / what would decide it |",
             "|---|---|---|---|---|---|"]
    for _, r in frame.iterrows():
        why = r["reason"] if r["verdict"] != "inconclusive" or not cell(r["decide"]) else \
            f"{r['reason']}. To decide: {r['decide']}"
        lines.append(f"| `{r['claim']}` | {cell(r['source'])} | {cell(r['paper_effect'])} | {cell(_effect_text(r))} | "
                     f"**{r['verdict']}** | {cell(why)} |")
    return "\n".join(lines)


def write_readme_block(readme: str | os.PathLike, frame, header: str) -> None:
    """Replace the generated block between README_BEGIN and README_END in `readme` by `header`
    and the Markdown table of `frame`."""
    path = Path(readme)
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(f"{path}: no generated claims block (the lines {README_BEGIN!r} and {README_END!r})")
    before, rest = text.split(README_BEGIN, 1)
    _, after = rest.split(README_END, 1)
    path.write_text(f"{before}{README_BEGIN}\n{header}\n\n{markdown_table(frame)}\n{README_END}{after}")


def failed_runs(runs_csv: str | os.PathLike, out_csv: str | os.PathLike) -> int:
    """The failed finite-network runs of runs.csv (FAILED_RUN_COLUMNS) written to out_csv; returns their count."""
    import pandas as pd

    from symflow.figures.table import load_runs
    from symflow.h5io import atomic_path

    runs = load_runs(runs_csv)
    bad = runs[runs["failed"]]  # runs.csv's own column names (inference: the recipe of a network)
    bad = pd.DataFrame(bad, columns=list(FAILED_RUN_COLUMNS))
    for c in ("width", "m", "seed", "member"):
        bad[c] = bad[c].astype("Int64")
    with atomic_path(out_csv, suffix=".csv") as tmp:
        bad.to_csv(tmp, index=False)
    return len(bad)
