"""Shared look of symflow's figures, and atomic saving."""

from __future__ import annotations

import os
from pathlib import Path


def setup():
    """Non-interactive backend and the seaborn theme; returns pyplot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "pdf.fonttype": 42})
    return plt


def group_label(name: str) -> str:
    """The group's figure label from the registry (plug-ins included); its name if it has none."""
    from symflow.groups import GROUPS

    return (GROUPS.get(name).label if name in GROUPS else "") or name


def save(fig, pdf: str | os.PathLike, png: str | os.PathLike | None = None) -> None:
    """Save to temporary names and rename into place (no partial figure at the final path)."""
    from symflow.h5io import atomic_path

    for path, fmt in ((pdf, "pdf"), (png, "png")):
        if path is None:
            continue
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=f".{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches="tight", metadata={"CreationDate": None} if fmt == "pdf" else None)


INFERENCE_LABELS = {"ntk": "NTK", "nngp": "NNGP", "nn": "NN", "nn_plus": "NN+"}
PAPER_GROUP_ORDER = ["identity", "o3_shared", "o3_pixel", "perm", "o3d"]
PAPER_ARCH_ORDER = ["FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8"]


def ordered(values, preferred):
    """`values` in the preferred order, unknown ones (plug-ins) after, in order of appearance."""
    values = list(dict.fromkeys(values))
    return [v for v in preferred if v in values] + [v for v in values if v not in preferred]


def arch_palette(archs):
    import seaborn as sns

    archs = list(archs)
    colours = sns.color_palette("colorblind", max(len(archs), 6))
    return {a: colours[i] for i, a in enumerate(archs)}


def run_counts(frame, by):
    """Per group of `by`: runs (N, all runs), ok (k, successful runs), failed_runs, and failure, the
    commonest failure kind among the failed runs ('' where none failed; 'failed' where a failed row
    names no kind; ties go to the kind first in alphabetical order)."""
    import pandas as pd

    by = [by] if isinstance(by, str) else list(by)
    kinds = frame["failure"].fillna("") if "failure" in frame else pd.Series("", index=frame.index)
    work = frame[by].assign(_failed=frame["failed"].astype(bool),
                            _kind=kinds.where(kinds.astype(str).str.len() > 0, "failed"))
    rows = []
    for key, g in work.groupby(by, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        counts = g.loc[g["_failed"], "_kind"].value_counts()
        failure = min(counts.index, key=lambda k: (-counts[k], str(k))) if len(counts) else ""
        n, bad = len(g), int(g["_failed"].sum())
        rows.append({**dict(zip(by, key)), "runs": n, "ok": n - bad, "failed_runs": bad, "failure": failure})
    return pd.DataFrame(rows, columns=by + ["runs", "ok", "failed_runs", "failure"])


def summarize(frame, by, value="accuracy"):
    """Mean, std, min, max and count of `value` over the successful runs only, grouped by `by`, with the
    run counts of `run_counts` (runs, ok, failed_runs, failure). A group with no successful run has a
    NaN mean: it is marked on a figure (`mark_counts`), never drawn as a value."""
    by = [by] if isinstance(by, str) else list(by)
    ok = frame[~frame["failed"].astype(bool)]
    stats = ok.groupby(by, dropna=False)[value].agg(["mean", "std", "min", "max", "count"]).reset_index()
    out = run_counts(frame, by).merge(stats, on=by, how="left")
    out["count"] = out["count"].fillna(0).astype(int)
    out["std"] = out["std"].fillna(0.0)
    return out


COUNT_NOTE = ("k/N: k of the N finite-network runs at the point succeeded; point, bar and spread are over "
              "those k only. x: no run succeeded, labelled with the commonest failure "
              "(collapsed, diverged, budget, members).")


def count_note(fig, frame=None, extra: str = "") -> None:
    """The footnote that explains `mark_counts`' labels (and how finite networks' accuracy was chosen)."""
    text = COUNT_NOTE
    sel = sorted(set(frame["selection"].dropna()) - {""}) if frame is not None and "selection" in frame else []
    finite = frame is None or "stage" not in frame or frame["stage"].isin(["sgd", "ensemble"]).any()
    if finite and sel == ["test"]:
        text += " Finite networks: highest test accuracy along training (the paper's protocol)."
    elif finite and sel == ["val"]:
        text += " Finite networks: test accuracy at the step of best validation accuracy."
    fig.text(0.5, 0.0, text + (" " + extra if extra else ""), ha="center", va="top", fontsize=6.5,
             color="0.3", wrap=True)


LABEL_OFFSETS = ((3, 2), (3, -8), (-3, 2), (-3, -8))  # of k/N labels, in points: series j takes j % 4


FAIL_SPACING = 8  # points between the failure marks of series that fail at the same x


def mark_counts(ax, xs, stats, colour, *, value="mean", top=None, offset=(3, 2), strip=False, fontsize=5.5,
                slot=0):
    """Label every point (xs[i], stats[value][i]) with 'k/N' (`summarize`'s ok and runs); a point with
    no successful run gets an 'x' at the bottom of the axes and '0/N <failure>' instead of a value.

    top: per row, where the k/N label sits (e.g. the top of a bar's error bar); default the value.
    offset: the label's offset from there, in points.
    strip: the k/N labels in a row along the top of the axes instead, upright, one above each x
    (for many series at one x; `make_room` keeps the data clear of them).
    slot: the series' index among those sharing these xs; its failure marks and labels move
    sideways by FAIL_SPACING points per slot (0, +1, -1, +2, ...) so that series failing at the
    same x stay apart.
    """
    import numpy as np
    import pandas as pd
    from matplotlib.transforms import offset_copy

    rows = stats.reset_index(drop=True)
    shift = FAIL_SPACING * ((slot + 1) // 2) * (1 if slot % 2 else -1)
    along = ax.get_xaxis_transform()  # x in data, y in axes fraction
    failed_at = offset_copy(along, fig=ax.figure, x=shift, y=0, units="points")  # slot 0: no shift
    for i, (x, r) in enumerate(zip(xs, rows.itertuples(index=False))):
        runs, ok = (0 if pd.isna(v) else int(v) for v in (r.runs, r.ok))
        if runs == 0:  # nothing ran here (a point the config does not ask for)
            continue
        y = getattr(r, value)
        drawn = ok > 0 and np.isfinite(y)
        if strip:
            ax.text(x, 0.985, f"{ok}/{runs}", transform=along, rotation=90, ha="center", va="top",
                    fontsize=fontsize, color=colour, fontweight="normal" if drawn else "bold")
        elif drawn:
            ax.annotate(f"{ok}/{runs}", (x, y if top is None else top[i]), xytext=offset, textcoords="offset points",
                        fontsize=fontsize, color=colour, ha="left" if offset[0] >= 0 else "right", va="bottom")
        if not drawn:
            ax.plot([x], [0.025], marker="x", ms=6, mew=1.6, color=colour, ls="none", transform=failed_at,
                    clip_on=False, zorder=6)
            # a shifted transform keeps the mark out of the data limits: count its x in them (plot's
            # lazy autoscale then sees it), or an axis where every series failed would have no
            # x-range (and a log axis nothing to scale)
            ax.update_datalim([(x, 1.0)], updatex=True, updatey=False)
            what = r.failure or ("no value" if ok else "failed")
            ax.text(x, 0.06, f"{ok}/{runs} {what}", transform=failed_at, rotation=90, ha="center", va="bottom",
                    fontsize=fontsize, color=colour, zorder=6)


def make_room(ax, top=0.0, bottom=0.08) -> None:
    """Widen the y-range by these fractions (of the log range on a log axis): room for `mark_counts`'
    failure marks along the bottom and its strip of counts along the top."""
    import numpy as np

    lo, hi = ax.get_ylim()
    log = ax.get_yscale() == "log"
    a, b = (np.log10(lo), np.log10(hi)) if log else (lo, hi)
    span = b - a
    a, b = a - bottom * span, b + top * span
    ax.set_ylim(*((10**a, 10**b) if log else (a, b)))


def scale_note(frame) -> str:
    """'CIFAR-10 (sample) 8x8, test 1000' (or the source's title) from the dataset names in the table."""
    from symflow.configuration import parse_dataset_id

    names = sorted(set(frame["dataset"].dropna()))
    if not names:
        return ""
    from symflow.sources import source_title

    d = parse_dataset_id(names[0])
    return f"{source_title(d['source'])} {d['resolution']}x{d['resolution']}, test {d['n_test']}"


def paper_values(figure: str):
    """The paper's stated values for `figure` (symflow/paper_values.csv)."""
    import pandas as pd

    from symflow.package_data import PAPER_VALUES, path

    frame = pd.read_csv(path(PAPER_VALUES), dtype=str)
    frame = frame[frame["figure"] == figure].copy()
    frame["value_num"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


def at_paper_scale(frame) -> bool:
    """True when the runs are on full CIFAR-10 at 32x32 with the paper's 45k training images."""
    from symflow.configuration import parse_dataset_id

    names = set(frame["dataset"].dropna())
    if not names:
        return False
    for name in names:
        d = parse_dataset_id(name)
        if d["source"] != "official" or d["resolution"] != 32 or d["n_train"] < 45000:
            return False
    return True


def log_axes(ax, xticks=None) -> None:
    """Log-log axes with plain tick labels (the m values on x), no minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    if xticks is not None:
        ax.xaxis.set_major_locator(FixedLocator(sorted(set(xticks))))
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(f"{v:.1e}")[0] in "2345" else ""))
    ax.tick_params(axis="x", labelrotation=0, labelsize=7)
    ax.tick_params(axis="y", which="both", labelsize=7)
