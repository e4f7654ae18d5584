"""Training curves of one figure's finite networks (results/<figure>_curves.png): train,
validation and test accuracy against epochs, from results/tables/curves.csv.

One row of panels per configuration the figure compares (Fig. 2: architecture, width and
recipe; Fig. 3: recipe and transform; Fig. 4: network; Fig. S1: network and width; Fig. S5:
architecture, transform and recipe), one column per split; each run is one line coloured by
what the figure varies within that configuration (the transform, the width, m, the path's t,
the first-layer init). A failed run (symflow.train: below the success threshold, collapsed or
diverged) is drawn dotted and faint, ending in an 'x'. Every panel counts its runs and failures.
Train accuracy is drawn on [0, 1]; validation and test accuracy share one range around their
values (at reduced scale they stay far below 1); the dashed line is chance, 1 / K for the K
classes of the data the runs were trained on (read from their data files: CIFAR-10's 10).
"""

from __future__ import annotations

import os
from typing import Sequence

from symflow.figures.style import (
    INFERENCE_LABELS,
    PAPER_ARCH_ORDER,
    PAPER_GROUP_ORDER,
    group_label,
    ordered,
    save,
    scale_note,
    setup,
)
from symflow.figures.table import load_curves

SPLITS = (("train_accuracy", "train"), ("val_accuracy", "validation"), ("test_accuracy", "test"))
TITLES = {
    "fig2": "Fig. 2's finite networks",
    "fig3": "Fig. 3's VEC$_n$",
    "fig4": "Fig. 4's finite networks at each m",
    "figS1": "Fig. S1's ensemble members",
    "figS5": "Fig. S5's finite networks, Gaussian or uniform first layer",
}
# figure -> (what a row of panels holds fixed, what the lines of a panel vary)
LAYOUT = {
    "fig2": (("architecture", "width", "inference"), "transform"),
    "fig3": (("inference", "transform"), "width"),
    "fig4": (("architecture", "width", "transform", "inference"), "m"),
    "figS1": (("architecture", "width", "inference"), "t"),
    "figS5": (("architecture", "width", "transform", "inference"), "init"),
}
HUE_TITLES = {"transform": "transform", "width": "width n", "m": "training set m", "t": "path t",
              "init": "first-layer init"}


def _label(column: str, value) -> str:
    if column == "transform":
        return group_label(value.split("-t")[0]) + (f" t={value.split('-t')[1]}" if "-t" in value else "")
    if column == "inference":
        return INFERENCE_LABELS.get(value, value)
    if column in ("width", "m"):
        return f"{'m' if column == 'm' else 'n'} = {int(value)}"
    if column == "t":
        return f"t = {value:g}"
    return str(value)


def _row_title(key: dict) -> str:
    parts = []
    if "architecture" in key:
        width = f"$_{{{int(key['width'])}}}$" if "width" in key else ""
        parts.append(f"{key['architecture']}{width}")
    elif "width" in key:
        parts.append(f"n = {int(key['width'])}")
    for column in ("transform", "inference"):
        if column in key:
            parts.append(_label(column, key[column]))
    return ", ".join(parts)


def _order(frame, column):
    values = frame[column].dropna().unique().tolist()
    if column == "architecture":
        return ordered(values, PAPER_ARCH_ORDER)
    if column == "transform":
        return ordered(sorted(values), PAPER_GROUP_ORDER)
    return sorted(values)


def _counts(runs) -> str:
    failed = int(runs["failed"].sum())
    text = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    return text + (f", {failed} failed" if failed else "")


def chance_classes(data: Sequence[str | os.PathLike]) -> int:
    """K, the class count of the data-stage files `data` (one per dataset the runs read; CIFAR-10's
    10 where none is given), for the chance line 1 / K."""
    from symflow.data import NUM_CLASSES, dataset_classes
    from symflow.h5io import read_attrs

    found = {dataset_classes(read_attrs(p)) for p in data} or {NUM_CLASSES}
    if len(found) > 1:
        raise ValueError(f"the runs' data files have {sorted(found)} classes; one figure's chance line needs one count")
    return found.pop()


def plot_training_curves(curves_csv, figure: str, pdf, png, data: Sequence[str | os.PathLike] = ()) -> None:
    """Plot the training curves of `figure`'s finite networks (see the module's docstring); `data`:
    a data-stage file of each dataset the runs read (their class count K sets chance, 1 / K)."""
    import matplotlib.lines as mlines
    import seaborn as sns

    classes = chance_classes(data)
    chance = 1.0 / classes
    plt = setup()
    frame = load_curves(curves_csv)
    frame = frame[frame["figures"].str.split().apply(lambda names: figure in names)].copy()
    fixed, hue = LAYOUT[figure]
    frame["t"] = frame["t"].fillna(0.0)
    runs = frame.drop_duplicates("path")
    if frame.empty:
        fig, ax = plt.subplots(figsize=(6, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, f"{TITLES[figure]}: no finite-network runs in {curves_csv}", ha="center", va="center")
        save(fig, pdf, png)
        plt.close(fig)
        return

    keys = runs[list(fixed)].drop_duplicates()
    keys = keys.sort_values(list(fixed), key=lambda c: c.map({v: i for i, v in enumerate(_order(runs, c.name))}))
    hues = _order(runs, hue)
    colours = dict(zip(hues, sns.color_palette("colorblind" if len(hues) <= 10 else "viridis", len(hues))))
    rows = [dict(zip(fixed, k)) for k in keys.itertuples(index=False)]
    fig, axes = plt.subplots(len(rows), len(SPLITS), figsize=(3.3 * len(SPLITS), 1.9 * len(rows) + 0.9),
                             squeeze=False)
    # train accuracy on [0, 1] (it climbs to the success threshold); validation and test on one
    # shared range around their values, which stay far below 1 at reduced scale
    held_out = frame[["val_accuracy", "test_accuracy"]].stack()
    low, high = (float(held_out.min()), float(held_out.max())) if len(held_out) else (0.0, 1.0)
    pad = max(0.02, 0.08 * (high - low))
    held_out_range = (max(0.0, min(low, chance) - pad), min(1.02, max(high, chance) + pad))
    for i, key in enumerate(rows):
        mine = frame
        for column, value in key.items():
            mine = mine[mine[column] == value]
        for j, (column, split) in enumerate(SPLITS):
            ax = axes[i][j]
            for path, run in mine.groupby("path", sort=True):
                run = run.sort_values("step")
                colour = colours[run[hue].iloc[0]]
                failed = bool(run["failed"].iloc[0])
                ax.plot(run["epoch"], run[column], color=colour, lw=1.0 if failed else 1.4,
                        alpha=0.45 if failed else 0.9, ls=":" if failed else "-")
                if failed:
                    last = run.dropna(subset=[column]).tail(1)
                    ax.plot(last["epoch"], last[column], marker="x", ms=5, color=colour, ls="none")
            ax.axhline(chance, color="0.5", lw=0.8, ls="--", zorder=0)
            ax.set_ylim(*((0, 1.02) if column == "train_accuracy" else held_out_range))
            ax.text(0.98, 0.04, _counts(mine.drop_duplicates("path")), transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=6.5, color="0.25", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))
            if i == 0:
                ax.set_title(f"{split} accuracy", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{_row_title(key)}\naccuracy", fontsize=8)
            if i == len(rows) - 1:
                ax.set_xlabel("epoch")
            ax.tick_params(labelsize=7)
        for ax in axes[i][1:]:
            ax.sharex(axes[i][0])
    handles = []
    for value in hues:
        n = runs[runs[hue] == value]
        label = f"{_label(hue, value)} ({_counts(n)})"
        handles.append(mlines.Line2D([], [], color=colours[value], lw=1.6, label=label))
    handles.append(mlines.Line2D([], [], color="0.4", lw=1.0, ls=":", marker="x", ms=5, alpha=0.6,
                                 label="failed run (ends in x)"))
    handles.append(mlines.Line2D([], [], color="0.5", lw=0.8, ls="--", label=f"chance (1 of {classes} classes)"))
    fig.legend(handles=handles, title=HUE_TITLES[hue], fontsize=7, title_fontsize=8, loc="upper center",
               bbox_to_anchor=(0.5, 0.0), ncol=min(len(handles), 4), frameon=False)
    fig.suptitle(f"Training curves: {TITLES[figure]} ({scale_note(runs)}); one line per run, {_counts(runs)}",
                 fontsize=9)
    fig.tight_layout()
    save(fig, pdf, png)
    plt.close(fig)
