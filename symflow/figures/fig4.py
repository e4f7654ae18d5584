"""Fig. 4: learning curves, test accuracy and MSE against m on log-log axes, for
VEC_n on clean data (the baseline), VEC_inf (NTK), LCN_n, and VEC_n on o3_pixel data,
with the power-law slope of each curve fitted on its first and last points. Each finite-network
point is the mean over its successful runs, labelled k/N ('x' where none succeeded).
"""

from __future__ import annotations

import numpy as np

from symflow.curves import fit_ends
from symflow.figures.style import (
    LABEL_OFFSETS,
    count_note,
    log_axes,
    make_room,
    mark_counts,
    save,
    scale_note,
    setup,
    summarize,
)
from symflow.figures.table import load_runs

# (label, architecture, transform, stage, inference, colour) as in the paper's Fig. 4
CURVES = (
    ("VEC$_n$ (baseline)", "VEC", "identity", "sgd", None, "tab:blue"),
    ("VEC$_\\infty$ (NTK)", "VEC", "identity", "regression", "ntk", "tab:orange"),
    ("LCN$_n$", "LCN", "identity", "sgd", None, "tab:red"),
    ("VEC$_n$ on $O(3)^d$ data", "VEC", "o3_pixel", "sgd", None, "tab:green"),
)


def curve_tables(frame, recipe, widths, sizes):
    out = []
    for label, arch, transform, stage, inference, colour in CURVES:
        inf = inference or recipe
        sel = frame[(frame["architecture"] == arch) & (frame["transform"] == transform) & (frame["stage"] == stage)
                    & (frame["inference"] == inf) & frame["m"].isin(sizes) & (frame["member"].fillna(0) == 0)
                    & frame["init"].isin(["", "gaussian"])]
        if stage == "sgd":
            sel = sel[sel["width"] == widths[arch]]
        acc = summarize(sel, ["m"], "accuracy").sort_values("m")
        mse = summarize(sel, ["m"], "mse").sort_values("m")
        out.append((label, colour, acc, mse))  # acc and mse: means over successful runs, with k/N
    return out


def slope_text(m, y, points):
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return "n/a"
    first, last = fit_ends(np.asarray(m)[ok], np.asarray(y)[ok], points)
    return f"{first.slope:+.2f} / {last.slope:+.2f}"


def plot_fig4(runs_csv, pdf, png, *, sizes, recipe, widths, fit_points, flip_m=None) -> None:
    plt = setup()
    frame = load_runs(runs_csv)
    curves = curve_tables(frame, recipe, widths, sizes)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0))
    for j, (label, colour, acc, mse) in enumerate(curves):
        stage = CURVES[j][3]
        slot = sum(c[3] == "sgd" for c in CURVES[:j])  # among the finite-network curves
        for ax, s in ((axes[0], acc), (axes[1], mse)):
            if not len(s):
                continue
            slopes = slope_text(s["m"].to_numpy(float), s["mean"].to_numpy(float), fit_points)
            ax.errorbar(s["m"], s["mean"], yerr=s["std"], marker="o", ms=4, capsize=2, color=colour,
                        label=f"{label}: slope {slopes}")
            if stage == "sgd":
                mark_counts(ax, s["m"].tolist(), s, colour, offset=LABEL_OFFSETS[j % len(LABEL_OFFSETS)],
                            slot=slot)
    for ax, what in zip(axes, ("test accuracy", "test MSE")):
        log_axes(ax, list(sizes) + ([flip_m] if flip_m else []))
        ax.set_xlabel("training set size m")
        ax.set_ylabel(what)
        make_room(ax)
        ax.legend(fontsize=7, title=f"slope: first / last {fit_points} points", title_fontsize=7,
                  loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
        if flip_m:
            ax.axvline(flip_m, color="grey", lw=0.8, ls=":")
    fig.suptitle(f"Fig. 4: learning curves ({scale_note(frame)}; finite networks trained with "
                 f"{'NN+' if recipe == 'nn_plus' else 'NN'})" + (f"; m = {flip_m} adds left-right flips" if flip_m else ""),
                 fontsize=9)
    fig.tight_layout()
    count_note(fig, frame[frame["stage"] == "sgd"], "Slopes are fitted to the means of the successful runs.")
    save(fig, pdf, png)
    plt.close(fig)
