"""Fig. 2: accuracy of every architecture on every transformed dataset, for NTK, NN and NN+.

x: the transform group, from the smallest (I_3d) to the most spurious symmetry (O(3d));
y: test accuracy, mean over successful seeds, error bars one standard deviation, each
finite-network point labelled k/N (successful / all runs; 'x' where none succeeded);
one line per architecture. Paper values (GAP 77% -> 84%, VEC 67% -> 78%) are drawn as
black stars when the runs are at paper scale.
"""

from __future__ import annotations

from symflow.figures.style import (
    INFERENCE_LABELS,
    PAPER_ARCH_ORDER,
    PAPER_GROUP_ORDER,
    arch_palette,
    at_paper_scale,
    count_note,
    group_label,
    make_room,
    mark_counts,
    ordered,
    paper_values,
    save,
    scale_note,
    setup,
    summarize,
)
from symflow.figures.table import load_runs

PANELS = ("ntk", "nn", "nn_plus")
FINITE = ("nn", "nn_plus")
DODGE = 0.12  # architectures side by side at each group, their k/N counts in a row above


def select(frame, architectures, transforms, m):
    sel = frame[
        frame["architecture"].isin(architectures)
        & frame["transform"].isin(transforms)
        & (frame["m"] == m)
        & (frame["init"].isin(["", "gaussian"]))
        & (frame["stage"].isin(["regression", "sgd"]))
        & (frame["member"].fillna(0) == 0)
    ]
    return sel


def plot_fig2(runs_csv, pdf, png, *, architectures, transforms, m, widths=None) -> None:
    plt = setup()
    frame = select(load_runs(runs_csv), architectures, transforms, m)
    if widths:  # the finite runs of each architecture at its configured width only
        finite = frame["stage"] == "sgd"
        keep = ~finite | frame.apply(lambda r: r["width"] == widths.get(r["architecture"], r["width"]), axis=1)
        frame = frame[keep]
    archs = ordered(architectures, PAPER_ARCH_ORDER)
    groups = ordered(transforms, PAPER_GROUP_ORDER)
    colours = arch_palette(archs)
    stats = summarize(frame, ["inference", "architecture", "transform"])
    paper = paper_values("fig2") if at_paper_scale(frame) else None

    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.8), sharey=True, squeeze=False)
    for ax, inference in zip(axes[0], PANELS):
        sub = stats[stats["inference"] == inference]
        for j, arch in enumerate(archs):
            s = sub[sub["architecture"] == arch].set_index("transform").reindex(groups)
            x = [i + DODGE * (j - (len(archs) - 1) / 2) for i in range(len(groups))]
            ax.errorbar(x, s["mean"], yerr=s["std"], marker="o", ms=4, capsize=3, lw=1.4,
                        color=colours[arch], label=arch)
            if inference in FINITE:
                mark_counts(ax, x, s, colours[arch], strip=True)
        if paper is not None:
            pv = paper[paper["inference"] == inference]
            for _, r in pv.iterrows():
                if r["transform"] in groups:
                    ax.plot(groups.index(r["transform"]), r["value_num"], "k*", ms=9,
                            label=f"paper {r['architecture']}")
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([group_label(g) for g in groups], rotation=20)
        ax.set_title({"ntk": "NTK (infinite width)", "nn": "NN (finite width, lr $\\eta_0$)",
                      "nn_plus": "NN+ (8$\\eta_0$, L2)"}.get(inference, INFERENCE_LABELS[inference]))
        ax.set_xlabel("symmetry group of the data transformation")
        if ax is axes[0][0]:
            ax.set_ylabel("test accuracy")
    make_room(axes[0][0], top=0.13, bottom=0.1)  # shared y: room for the counts above, failures below
    handles, labels = axes[0][-1].get_legend_handles_labels()
    by_label = dict(zip(labels, handles))
    fig.legend(by_label.values(), by_label.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(f"Fig. 2: accuracy vs data symmetry, m = {m} ({scale_note(frame)}); "
                 "mean over successful seeds, bars = 1 s.d.", fontsize=9)
    fig.tight_layout()
    count_note(fig, frame[frame["stage"] == "sgd"])
    save(fig, pdf, png)
    plt.close(fig)
