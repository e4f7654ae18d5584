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


def summarize(frame, by, value="accuracy"):
    """Mean and std of `value` over successful runs, with run counts, grouped by `by`."""
    ok = frame[~frame["failed"]]
    stats = ok.groupby(by, dropna=False)[value].agg(["mean", "std", "min", "max", "count"]).reset_index()
    fails = frame[frame["failed"]].groupby(by, dropna=False).size().rename("failed_runs").reset_index()
    out = stats.merge(fails, on=by, how="outer")
    out["failed_runs"] = out["failed_runs"].fillna(0).astype(int)
    out["count"] = out["count"].fillna(0).astype(int)
    out["std"] = out["std"].fillna(0.0)
    return out


def scale_note(frame) -> str:
    """'CIFAR-10 8x8, n_train 3500, test 1000' from the dataset names in the table."""
    from symflow.configuration import parse_dataset_id

    names = sorted(set(frame["dataset"].dropna()))
    if not names:
        return ""
    d = parse_dataset_id(names[0])
    return f"CIFAR-10 ({d['source']}) {d['resolution']}x{d['resolution']}, test {d['n_test']}"


def paper_values(figure: str):
    """The paper's stated values for `figure` (symflow/paper_values.csv)."""
    import pandas as pd

    path = Path(__file__).resolve().parent.parent / "paper_values.csv"
    frame = pd.read_csv(path, dtype=str)
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
