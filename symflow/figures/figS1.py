"""Fig. S1: ensembles of VEC_n along the path tau_t: ensemble test accuracy, and S-Dist of
the ensemble mean to GAP_n and to VEC_inf, against t, one line per width (App. E).

Reads the S-Dist table (results/tables/sdist.csv; symflow.ensemble.sdist_table), one row
per (width, t): accuracy, sdist_gap, sdist_vec_inf.
"""

from __future__ import annotations

from symflow.figures.style import save, setup


def plot_figS1(sdist_csv, pdf, png) -> None:
    import pandas as pd
    import seaborn as sns

    plt = setup()
    table = pd.read_csv(sdist_csv)
    widths = sorted(table["width"].unique())
    palette = dict(zip(widths, sns.color_palette("viridis", len(widths))))
    panels = (("accuracy", "ensemble test accuracy"),
              ("sdist_gap", "S-Dist(VEC$_n^{\\tau_t}$, GAP$_n$)"),
              ("sdist_vec_inf", "S-Dist(VEC$_n^{\\tau_t}$, VEC$_\\infty$)"))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (col, title) in zip(axes, panels):
        for w in widths:
            s = table[table["width"] == w].sort_values("t")
            ax.plot(s["t"], s[col], marker="o", ms=4, color=palette[w], label=f"n = {w}")
        ax.set_xlabel("t (path $\\tau_t = e^{-tA}$ from $I$ to $O(3)^d$)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    k = int(table["ensemble"].iloc[0]) if "ensemble" in table and len(table) else 0
    fig.suptitle(f"Fig. S1: VEC$_n$ learners along the rotation path (ensembles of {k} initialisations, "
                 f"m = {int(table['m'].iloc[0]) if len(table) else 0})", fontsize=9)
    fig.tight_layout()
    save(fig, pdf, png)
    plt.close(fig)
