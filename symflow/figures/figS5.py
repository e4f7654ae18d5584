"""Fig. S5: Gaussian against uniform (same variance) initialisation of the first layer.

Each bar is the mean over its successful runs, labelled k/N; where no run succeeded, a
hatched empty column, an 'x' and the commonest failure, no value.
"""

from __future__ import annotations

from symflow.figures.style import (
    INFERENCE_LABELS,
    PAPER_ARCH_ORDER,
    PAPER_GROUP_ORDER,
    count_note,
    group_label,
    make_room,
    mark_counts,
    ordered,
    save,
    scale_note,
    setup,
    summarize,
)
from symflow.figures.table import load_runs

INITS = (("gaussian", "tab:blue"), ("uniform", "tab:orange"))


def plot_figS5(runs_csv, pdf, png, *, architectures, transforms, recipes, m, widths) -> None:
    import numpy as np
    from matplotlib.patches import Patch

    plt = setup()
    frame = load_runs(runs_csv)
    frame = frame[(frame["stage"] == "sgd") & frame["architecture"].isin(architectures)
                  & frame["transform"].isin(transforms) & frame["inference"].isin(recipes) & (frame["m"] == m)
                  & (frame["member"].fillna(0) == 0)]
    frame = frame[frame.apply(lambda r: r["width"] == widths.get(r["architecture"], r["width"]), axis=1)]
    frame = frame.assign(init=frame["init"].replace("", "gaussian"))
    stats = summarize(frame, ["architecture", "transform", "inference", "init"])
    archs = ordered(architectures, PAPER_ARCH_ORDER)
    groups = ordered(transforms, PAPER_GROUP_ORDER)
    cols = len(recipes)
    fig, axes = plt.subplots(1, cols, figsize=(max(5.0, 1.1 * len(archs) * len(groups)) * cols / 1.6, 3.6),
                             squeeze=False, sharey=True)
    width = 0.38
    for ax, recipe in zip(axes[0], recipes):
        labels, x = [], 0
        for arch in archs:
            for group in groups:
                for k, (init, colour) in enumerate(INITS):
                    s = stats[(stats["architecture"] == arch) & (stats["transform"] == group)
                              & (stats["inference"] == recipe) & (stats["init"] == init)]
                    if not len(s):
                        continue
                    xb = x + (k - 0.5) * width
                    mean, std = float(s["mean"].iloc[0]), float(s["std"].iloc[0])
                    if np.isfinite(mean):
                        ax.bar(xb, mean, width, yerr=std, color=colour, capsize=2)
                    else:  # no successful run: an empty hatched column, no value
                        ax.axvspan(xb - width / 2, xb + width / 2, fill=False, hatch="////", edgecolor=colour,
                                   lw=0.6, alpha=0.6)
                    mark_counts(ax, [xb], s, colour, top=[mean + std], offset=(0, 1))
                labels.append(f"{arch}\n{group_label(group)}")
                x += 1
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_title(f"{INFERENCE_LABELS[recipe]}: first layer Gaussian vs uniform")
        if ax is axes[0][0]:
            ax.set_ylabel("test accuracy")
        make_room(ax, top=0.06, bottom=0.0)
    handles = [Patch(color=c, label=i) for i, c in INITS]
    handles.append(Patch(facecolor="none", edgecolor="0.4", hatch="////", label="no run succeeded"))
    fig.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(f"Fig. S5: initialisation of the first layer, m = {m} ({scale_note(frame)}); "
                 "bars: mean over successful runs, 1 s.d.", fontsize=9)
    fig.tight_layout()
    count_note(fig, frame)
    save(fig, pdf, png)
    plt.close(fig)
