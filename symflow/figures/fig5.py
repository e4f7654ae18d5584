"""Fig. 5: ImageNet. Left: learning curves (test error and test loss against m, log-log) of
ResNet101 and MLP-Mixer-S/16 on clean and O(3)^d-rotated images, with the slope alpha of each
phase (i >= 6 / i < 6, Sec. 6.2) and the paper's slopes (0.41, 0.49, 0.38) as dotted reference
segments. Right: top-1 accuracy of ResNet-18 ... 200 on rotated (x) against clean (y) images,
with the paper's gaps (about 10% at ResNet-18, about 6% at ResNet-200) as dashed guides.

Every point is the mean over its successful runs and says how many runs it stands on (k/N;
'x' where none succeeded). The figures read only the gathered point table
(symflow.imagenet.results). ``draw_curves`` is shared with Fig. S3.
"""

from __future__ import annotations

import numpy as np

from symflow.figures.style import (
    LABEL_OFFSETS,
    count_note,
    group_label,
    log_axes,
    make_room,
    mark_counts,
    paper_values,
    save,
    setup,
    summarize,
)
from symflow.imagenet.curves import first_phase, phase_fits

QUANTITY_LABELS = {"error": "test error (1 - top-1)", "loss": "test loss (cross-entropy)"}
# paper_values.csv names the Mixer 'Mixer'; symflow's model is MixerS16
PAPER_MODEL = {"Mixer": "MixerS16"}
PAPER_GAPS = (("ResNet18", 0.10), ("ResNet200", 0.06))  # Sec. 6.2: "drops from about 10% (ResNet-18) to about 6%"
TRANSFORM_STYLE = {"identity": "--", "o3_pixel": "-", "perm": ":"}  # fitted lines
TRANSFORM_MARKER = {"identity": "o", "o3_pixel": "s", "perm": "^"}  # points: open for clean images
DEPTHS = ("ResNet18", "ResNet34", "ResNet50", "ResNet101", "ResNet152", "ResNet200")


def paper_slopes() -> dict[tuple[str, str], tuple[str, float]]:
    """(model, transform) -> (which phase the paper states, alpha): Sec. 6.2's three slopes."""
    frame = paper_values("fig5")
    out = {}
    for r in frame.itertuples(index=False):
        phase = "second" if r.quantity == "slope_last" else "all"
        out[(PAPER_MODEL.get(r.architecture, r.architecture), r.transform)] = (phase, float(r.value_num))
    return out


def _model_colours(models):
    import seaborn as sns

    colours = sns.color_palette("colorblind", max(len(models), 3))
    return {m: colours[i] for i, m in enumerate(models)}


def curve_label(model: str, transform: str) -> str:
    return f"{model}, {group_label(transform)}"


def draw_curves(ax, points, series, quantity: str, colours, paper=None) -> None:
    """Mean `quantity` against m for each (model, transform) of `series`, with k/N counts, the fitted
    slope of each phase as a line and in the legend, and the paper's slope where it states one."""
    for j, (model, transform) in enumerate(series):
        sel = points[(points["model"] == model) & (points["transform"] == transform)]
        if not len(sel):
            continue
        stats = summarize(sel.assign(subset=sel["subset"].fillna(-1)), ["m", "subset"], quantity).sort_values("m")
        colour, style = colours[model], TRANSFORM_STYLE.get(transform, "-.")
        fits = phase_fits(stats["subset"].where(stats["subset"] >= 0), stats["m"], stats["mean"])
        slopes = " / ".join("n/a" if f is None else f"{-f.slope:.2f}" for f in fits.values())
        ax.errorbar(stats["m"], stats["mean"], yerr=stats["std"], marker=TRANSFORM_MARKER.get(transform, "D"), ms=3.5,
                    capsize=2, color=colour, mfc="white" if transform == "identity" else colour, ls="none",
                    label=f"{curve_label(model, transform)}: $\\alpha$ {slopes}")
        mark_counts(ax, stats["m"].tolist(), stats, colour, offset=LABEL_OFFSETS[j % len(LABEL_OFFSETS)],
                    slot=j)
        first = first_phase(stats["subset"].where(stats["subset"] >= 0), stats["m"])
        for phase, fit in fits.items():
            if fit is None:
                continue
            m = stats["m"][first if phase == "first" else ~first]
            grid = np.geomspace(m.min(), m.max(), 20)
            ax.plot(grid, fit(grid), color=colour, ls=style, lw=1.2)
        ref = (paper or {}).get((model, transform))
        if ref is not None and fits["second"] is not None:
            _reference_segment(ax, stats, fits["second"], -ref[1], colour, f"paper $\\alpha$={ref[1]:.2f}")


def _reference_segment(ax, stats, fit, slope: float, colour, text: str) -> None:
    """A dotted segment of the paper's slope through the fitted line at the largest m, over one decade."""
    m_hi = float(stats["m"].max())
    grid = np.geomspace(m_hi / 10, m_hi, 10)
    y_hi = float(fit(m_hi))
    ax.plot(grid, y_hi * (grid / m_hi) ** slope, color=colour, ls=":", lw=1.6, alpha=0.8)
    ax.annotate(text, (grid[0], y_hi * (grid[0] / m_hi) ** slope), fontsize=6, color=colour,
                xytext=(-2, 3), textcoords="offset points", ha="right")


def draw_depths(ax, points, models, clean: str = "identity", rotated: str = "o3_pixel") -> None:
    """Top-1 on `rotated` (x) against `clean` (y), one point per model at its largest m, with k/N of each."""
    rows = []
    for model in models:
        sel = points[points["model"] == model]
        if not len(sel):
            continue
        sel = sel[sel["m"] == sel["m"].max()]
        stats = summarize(sel, ["transform"], "top1").set_index("transform")
        if clean in stats.index and rotated in stats.index:
            rows.append((model, stats.loc[rotated], stats.loc[clean]))
    colours = _model_colours(list(models))
    for model, r, c in rows:
        ax.errorbar(r["mean"], c["mean"], xerr=r["std"], yerr=c["std"], marker="o", ms=5, capsize=2,
                    color=colours[model], ls="none", label=model)
        ax.annotate(f"{model.replace('ResNet', 'R')} {int(r['ok'])}/{int(r['runs'])}, {int(c['ok'])}/{int(c['runs'])}",
                    (r["mean"], c["mean"]), xytext=(4, -8), textcoords="offset points", fontsize=6,
                    color=colours[model])
    lo = min([min(r["mean"], c["mean"]) for _, r, c in rows if np.isfinite(r["mean"])] or [0.0]) - 0.05
    hi = max([max(r["mean"], c["mean"]) for _, r, c in rows if np.isfinite(r["mean"])] or [1.0]) + 0.05
    grid = np.linspace(max(lo, 0.0), min(hi, 1.0), 2)
    ax.plot(grid, grid, color="0.5", lw=0.8, label="no gap")
    for model, gap in PAPER_GAPS:
        ax.plot(grid, grid + gap, color="0.3", lw=0.8, ls="--")
        ax.annotate(f"paper: gap {gap:.0%} ({model})", (grid[0], grid[0] + gap), fontsize=6, color="0.3",
                    xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel(f"top-1 on {group_label(rotated)}-rotated images")
    ax.set_ylabel("top-1 on clean images")
    ax.legend(fontsize=6, loc="best")


def plot_fig5(points_csv, pdf, png, *, curve_models=("ResNet101", "MixerS16"), transforms=("identity", "o3_pixel"),
              depth_models=DEPTHS, quantities=("error", "loss")) -> None:
    from symflow.imagenet.results import load_points

    plt = setup()
    points = load_points(points_csv)
    series = [(m, t) for m in curve_models for t in transforms]
    colours = _model_colours(list(curve_models))
    paper = paper_slopes()
    fig, axes = plt.subplots(1, len(quantities) + 1, figsize=(4.2 * (len(quantities) + 1), 4.2))
    for ax, q in zip(axes, quantities):
        draw_curves(ax, points, series, q, colours, paper)
        sizes = sorted(points.loc[points["model"].isin(curve_models), "m"].dropna().unique())
        log_axes(ax, sizes[:: max(1, len(sizes) // 6)] if sizes else None)
        ax.set_xlabel("training set size m")
        ax.set_ylabel(QUANTITY_LABELS.get(q, q))
        make_room(ax)
        ax.legend(fontsize=6, title="$\\alpha$: first / second phase (i $\\geq$ 6 / i < 6)", title_fontsize=6,
                  loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    draw_depths(axes[-1], points, depth_models, *transforms[:2])
    fig.suptitle("Fig. 5: ImageNet learning curves (left) and ResNet depth, clean vs $O(3)^d$-rotated (right)",
                 fontsize=9)
    fig.tight_layout()
    count_note(fig, None, "Dotted: the paper's slope (Sec. 6.2) through the fitted line at the largest m. "
                          "Right: each model at its largest m, k/N on rotated, clean.")
    save(fig, pdf, png)
    plt.close(fig)
