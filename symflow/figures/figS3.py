"""Fig. S3: learning curves of ResNet34, ResNet50 and ResNet101 on clean and O(3)^d-rotated
ImageNet (App. F.1), test error against m on log-log axes with the slope of each phase, as the
left of Fig. 5 (``draw_curves``), one panel a model.
"""

from __future__ import annotations

from symflow.figures.fig5 import QUANTITY_LABELS, _model_colours, draw_curves
from symflow.figures.style import count_note, log_axes, make_room, save, setup


def plot_figS3(points_csv, pdf, png, *, models=("ResNet34", "ResNet50", "ResNet101"),
               transforms=("identity", "o3_pixel"), quantity: str = "error") -> None:
    from symflow.imagenet.results import load_points

    plt = setup()
    points = load_points(points_csv)
    colours = _model_colours(list(models))
    fig, axes = plt.subplots(1, len(models), figsize=(4.0 * len(models), 4.0), squeeze=False, sharey=True)
    for ax, model in zip(axes[0], models):
        draw_curves(ax, points, [(model, t) for t in transforms], quantity, colours)
        sizes = sorted(points.loc[points["model"] == model, "m"].dropna().unique())
        log_axes(ax, sizes[:: max(1, len(sizes) // 6)] if sizes else None)
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("training set size m")
        make_room(ax)
        ax.legend(fontsize=6, title="$\\alpha$: first / second phase", title_fontsize=6, loc="upper center",
                  bbox_to_anchor=(0.5, -0.16), frameon=False)
    axes[0][0].set_ylabel(QUANTITY_LABELS.get(quantity, quantity))
    fig.suptitle("Fig. S3: scaling vs rotation (dashed: clean, solid: $O(3)^d$-rotated)", fontsize=9)
    fig.tight_layout()
    count_note(fig)
    save(fig, pdf, png)
    plt.close(fig)
