"""Fig. S6: learning curves of the infinite networks (NTK and NNGP regression) for every
architecture and transform: test MSE against m on log-log axes with fitted exponents.
"""

from __future__ import annotations

import numpy as np

from symflow.curves import fit_power_law
from symflow.figures.style import (
    PAPER_ARCH_ORDER,
    PAPER_GROUP_ORDER,
    arch_palette,
    group_label,
    log_axes,
    ordered,
    save,
    scale_note,
    setup,
    summarize,
)
from symflow.figures.table import load_runs


def exponents(frame):
    """alpha in MSE ~ m^-alpha for every (kernel, architecture, transform): a tidy table."""
    import pandas as pd

    rows = []
    stats = summarize(frame, ["inference", "architecture", "transform", "m"], "mse")
    for (inf, arch, tr), s in stats.groupby(["inference", "architecture", "transform"]):
        s = s.sort_values("m")
        ok = np.isfinite(s["mean"]) & (s["mean"] > 0)
        alpha = -fit_power_law(s["m"][ok], s["mean"][ok]).slope if ok.sum() >= 2 else np.nan
        rows.append({"inference": inf, "architecture": arch, "transform": tr, "alpha": alpha})
    return pd.DataFrame(rows)


def plot_figS6(runs_csv, pdf, png, *, architectures, transforms, sizes, kernels=("ntk", "nngp")) -> None:
    plt = setup()
    frame = load_runs(runs_csv)
    frame = frame[(frame["stage"] == "regression") & frame["architecture"].isin(architectures)
                  & frame["transform"].isin(transforms) & frame["m"].isin(sizes) & frame["inference"].isin(kernels)]
    archs = ordered(architectures, PAPER_ARCH_ORDER)
    groups = ordered(transforms, PAPER_GROUP_ORDER)
    colours = arch_palette(archs)
    stats = summarize(frame, ["inference", "architecture", "transform", "m"], "mse")
    alphas = exponents(frame)
    fig, axes = plt.subplots(len(kernels), len(groups), figsize=(3.0 * len(groups), 2.8 * len(kernels)),
                             sharex=True, sharey=True, squeeze=False)
    for r, kernel in enumerate(kernels):
        for c, group in enumerate(groups):
            ax = axes[r][c]
            for arch in archs:
                s = stats[(stats["inference"] == kernel) & (stats["architecture"] == arch)
                          & (stats["transform"] == group)].sort_values("m")
                if not len(s):
                    continue
                a = alphas[(alphas["inference"] == kernel) & (alphas["architecture"] == arch)
                           & (alphas["transform"] == group)]["alpha"]
                tag = f"{arch}: $\\alpha$={float(a.iloc[0]):.2f}" if len(a) and np.isfinite(a.iloc[0]) else arch
                ax.plot(s["m"], s["mean"], marker="o", ms=3, color=colours[arch], label=tag)
            log_axes(ax, sizes)
            ax.set_title(f"{kernel.upper()}, {group_label(group)}", fontsize=9)
            ax.legend(fontsize=6)
            if r == len(kernels) - 1:
                ax.set_xlabel("m")
            if c == 0:
                ax.set_ylabel("test MSE")
    fig.suptitle(f"Fig. S6: scaling of infinite networks, MSE ~ m$^{{-\\alpha}}$ ({scale_note(frame)})", fontsize=9)
    fig.tight_layout()
    save(fig, pdf, png)
    plt.close(fig)
