"""Shared look of symflow's figures, and atomic saving."""

from __future__ import annotations

import os
from pathlib import Path

GROUP_LABELS = {
    "identity": r"$I_{3d}$",
    "o3_shared": r"$O(3)\otimes I_d$",
    "o3_pixel": r"$O(3)^d$",
    "perm": r"$P(3d)$",
    "o3d": r"$O(3d)$",
    "so3_path": r"$\tau_t=e^{-tA}$",
}


def setup():
    """Non-interactive backend and the seaborn theme; returns pyplot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "pdf.fonttype": 42})
    return plt


def group_label(name: str) -> str:
    return GROUP_LABELS.get(name, name)


def save(fig, pdf: str | os.PathLike, png: str | os.PathLike | None = None) -> None:
    """Save to temporary names and rename into place (no partial figure at the final path)."""
    from symflow.h5io import atomic_path

    for path, fmt in ((pdf, "pdf"), (png, "png")):
        if path is None:
            continue
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, suffix=f".{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches="tight", metadata={"CreationDate": None} if fmt == "pdf" else None)
