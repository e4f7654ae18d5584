"""Fig. S5: Gaussian against uniform (same variance) initialisation of the first layer."""

from __future__ import annotations

from symflow.figures.style import (
    INFERENCE_LABELS,
    PAPER_ARCH_ORDER,
    PAPER_GROUP_ORDER,
    group_label,
    ordered,
    save,
    scale_note,
    setup,
    summarize,
)
from symflow.figures.table import load_runs


def plot_figS5(runs_csv, pdf, png, *, architectures, transforms, recipes, m, widths) -> None:
    import numpy as np

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
                for k, (init, colour) in enumerate((("gaussian", "tab:blue"), ("uniform", "tab:orange"))):
                    s = stats[(stats["architecture"] == arch) & (stats["transform"] == group)
                              & (stats["inference"] == recipe) & (stats["init"] == init)]
                    mean = float(s["mean"].iloc[0]) if len(s) and np.isfinite(s["mean"].iloc[0]) else np.nan
                    std = float(s["std"].iloc[0]) if len(s) else 0.0
                    ax.bar(x + (k - 0.5) * width, mean, width, yerr=std, color=colour, capsize=2,
                           label=init if x == 0 else None)
                labels.append(f"{arch}\n{group_label(group)}")
                x += 1
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_title(f"{INFERENCE_LABELS[recipe]}: first layer Gaussian vs uniform")
        if ax is axes[0][0]:
            ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7)
    fig.suptitle(f"Fig. S5: initialisation of the first layer, m = {m} ({scale_note(frame)})", fontsize=9)
    fig.tight_layout()
    save(fig, pdf, png)
    plt.close(fig)
