"""Fig. 3: VEC_n accuracy against width n, on o3_shared (a null operation for VEC_n) and
o3_pixel data, for NN and NN+; VEC_inf (NTK) as a horizontal line, spread over successful seeds
shaded, each point labelled k/N (successful / all runs; 'x' where none succeeded).
"""

from __future__ import annotations


from symflow.figures.style import (
    LABEL_OFFSETS,
    at_paper_scale,
    count_note,
    group_label,
    make_room,
    mark_counts,
    paper_values,
    save,
    scale_note,
    setup,
    summarize,
)
from symflow.figures.table import load_runs

COLOURS = {"o3_shared": "tab:blue", "o3_pixel": "tab:orange"}


def plot_fig3(runs_csv, pdf, png, *, widths, transforms, recipes, m) -> None:
    plt = setup()
    frame = load_runs(runs_csv)
    frame = frame[(frame["architecture"] == "VEC") & frame["transform"].isin(transforms) & (frame["m"] == m)
                  & (frame["member"].fillna(0) == 0) & frame["init"].isin(["", "gaussian"])]
    finite = frame[(frame["stage"] == "sgd") & frame["width"].isin(widths)]
    kernel = frame[(frame["stage"] == "regression") & (frame["inference"] == "ntk")]
    stats = summarize(finite, ["inference", "transform", "width"])
    kstats = summarize(kernel, ["transform"])
    paper = paper_values("fig3") if at_paper_scale(frame) else None

    fig, axes = plt.subplots(1, len(recipes), figsize=(4.6 * len(recipes), 3.6), sharey=True, squeeze=False)
    for ax, recipe in zip(axes[0], recipes):
        for j, transform in enumerate(transforms):
            colour = COLOURS.get(transform)
            s = stats[(stats["inference"] == recipe) & (stats["transform"] == transform)].sort_values("width")
            line, = ax.plot(s["width"], s["mean"], marker="o", ms=4, color=colour,
                            label=f"VEC$_n$, {group_label(transform)}")
            ax.fill_between(s["width"], s["min"], s["max"], color=line.get_color(), alpha=0.2, lw=0)
            mark_counts(ax, s["width"].tolist(), s, line.get_color(), offset=LABEL_OFFSETS[j % len(LABEL_OFFSETS)],
                        slot=j)
            k = kstats[kstats["transform"] == transform]
            if len(k):
                ax.axhline(float(k["mean"].iloc[0]), color=line.get_color(), ls="--", alpha=0.6,
                           label=f"VEC$_\\infty$ (NTK), {group_label(transform)}")
        if paper is not None:
            p = paper[(paper["inference"] == recipe) & (paper["quantity"] == "val_accuracy")]
            if len(p):
                ax.plot(p["width"].astype(float), p["value_num"], "k*", ms=7, label="paper (val. acc.)")
            ax.axhline(0.67, color="k", lw=0.8, ls=":", label="paper VEC$_\\infty$ 67%")
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths)
        ax.set_xticklabels([str(w) for w in widths])
        ax.set_xlabel("width n")
        ax.set_title({"nn": "NN (lr $\\eta_0$, no L2)", "nn_plus": "NN+ (8$\\eta_0$, L2)"}[recipe])
        if ax is axes[0][0]:
            ax.set_ylabel("test accuracy")
        make_room(ax)
    entries = {}
    for ax in axes[0]:
        entries.update({lab: h for h, lab in zip(*ax.get_legend_handles_labels())})
    fig.legend(entries.values(), entries.keys(), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5),
               frameon=False)
    fig.suptitle(f"Fig. 3: finite-width effect for VEC$_n$, m = {m} ({scale_note(frame)}); "
                 "shaded: min-max over successful seeds", fontsize=9)
    fig.tight_layout()
    count_note(fig, finite)
    save(fig, pdf, png)
    plt.close(fig)
