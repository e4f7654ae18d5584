"""Fig. S1: ensembles of VEC_n along the path tau_t: ensemble test accuracy, and S-Dist of
the ensemble mean to GAP_n and to VEC_inf, against t, one line per width (App. E).

Reads the S-Dist table (results/tables/sdist.csv; symflow.ensemble.sdist_table), one row
per ensemble (width, t, seed): accuracy, sdist_gap, sdist_vec_inf, ensemble (members) and
members_used. Each point is labelled k/N, its successful members of all members; an
ensemble with no successful member (a `failed` column True, or `failed_members` equal to
`ensemble`, where the table has them) is marked 'x', never drawn as a value.
"""

from __future__ import annotations

from symflow.ensemble import ensemble_runs
from symflow.figures.style import LABEL_OFFSETS, count_note, make_room, mark_counts, save, setup, summarize

PANELS = (("accuracy", "ensemble test accuracy"),
          ("sdist_gap", "S-Dist(VEC$_n^{\\tau_t}$, GAP$_n$)"),
          ("sdist_vec_inf", "S-Dist(VEC$_n^{\\tau_t}$, VEC$_\\infty$)"))


def point_stats(table, value):
    """Per (width, t): `value` averaged over ensembles with a successful member, members k/N summed."""
    stats = summarize(table, ["width", "t"], value).drop(columns=["runs", "ok"])
    members = table.groupby(["width", "t"], dropna=False)[["runs", "ok"]].sum().reset_index()
    return stats.merge(members, on=["width", "t"]).sort_values("t")


def plot_figS1(sdist_csv, pdf, png) -> None:
    import pandas as pd
    import seaborn as sns

    plt = setup()
    table = ensemble_runs(pd.read_csv(sdist_csv))
    widths = sorted(table["width"].unique())
    palette = dict(zip(widths, sns.color_palette("viridis", len(widths))))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    for ax, (col, title) in zip(axes, PANELS):
        stats = point_stats(table, col)
        for j, w in enumerate(widths):
            s = stats[stats["width"] == w]
            ax.plot(s["t"], s["mean"], marker="o", ms=4, color=palette[w], label=f"n = {w}")
            mark_counts(ax, s["t"].tolist(), s, palette[w], offset=LABEL_OFFSETS[j % len(LABEL_OFFSETS)],
                        slot=j)
        ax.set_xlabel("t (path $\\tau_t = e^{-tA}$ from $I$ to $O(3)^d$)")
        ax.set_title(title, fontsize=9)
        make_room(ax)
        ax.legend(fontsize=7)
    k = int(table["ensemble"].iloc[0]) if "ensemble" in table and len(table) else 0
    fig.suptitle(f"Fig. S1: VEC$_n$ learners along the rotation path (ensembles of {k} initialisations, "
                 f"m = {int(table['m'].iloc[0]) if len(table) else 0})", fontsize=9)
    fig.tight_layout()
    count_note(fig, table, "Here N counts an ensemble's members; an ensemble averages its successful members only.")
    save(fig, pdf, png)
    plt.close(fig)
