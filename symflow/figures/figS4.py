"""Fig. S4: test accuracy against epochs of ResNets on clean, O(3)^d- and P(3d)-rotated ImageNet
(App. F.2), one panel a transform, a line per model: the mean over its successful runs (the
paper averages 3), the band their range; the legend says how many runs each line stands on.
The paper's statement for P(3d) ("test accuracy is below 35%") is a dotted line.
"""

from __future__ import annotations

from symflow.figures.fig5 import DEPTHS, _model_colours
from symflow.figures.style import group_label, save, setup

PAPER_PERM_CEILING = 0.35  # App. F.2: with P(3d), "test accuracy is below 35%"


def plot_figS4(points_csv, history_csv, pdf, png, *, models=DEPTHS,
               transforms=("identity", "o3_pixel", "perm")) -> None:
    from symflow.imagenet.results import load_history, load_points

    plt = setup()
    points = load_points(points_csv)
    history = load_history(history_csv)
    colours = _model_colours(list(models))
    fig, axes = plt.subplots(1, len(transforms), figsize=(4.0 * len(transforms), 3.8), squeeze=False, sharey=True)
    for ax, transform in zip(axes[0], transforms):
        for model in models:
            runs = points[(points["model"] == model) & (points["transform"] == transform)]
            if not len(runs):
                continue
            runs = runs[runs["m"] == runs["m"].max()]
            ok = runs[~runs["failed"]]
            h = history[history["path"].isin(ok["path"])]
            if len(h):
                g = h.groupby("epoch")["test_top1"].agg(["mean", "min", "max"]).reset_index()
                ax.plot(g["epoch"], g["mean"], color=colours[model], lw=1.3,
                        label=f"{model} ({len(ok)}/{len(runs)} runs)")
                ax.fill_between(g["epoch"], g["min"], g["max"], color=colours[model], alpha=0.2, lw=0)
            else:
                ax.plot([], [], color=colours[model], label=f"{model} (0/{len(runs)} runs)")
        if transform == "perm":
            ax.axhline(PAPER_PERM_CEILING, color="0.3", ls=":", lw=1)
            ax.annotate("paper: below 35%", (0, PAPER_PERM_CEILING), xytext=(2, 2), textcoords="offset points",
                        fontsize=6, color="0.3")
        ax.set_title("no rotation" if transform == "identity" else f"{group_label(transform)} rotation", fontsize=9)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("test top-1")
    fig.suptitle("Fig. S4: learning dynamics of rotated ImageNets (mean over runs, band: their range)", fontsize=9)
    fig.tight_layout()
    save(fig, pdf, png)
    plt.close(fig)
