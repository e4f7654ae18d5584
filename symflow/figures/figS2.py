"""Fig. S2: sample images under each transform and along the path tau_t = exp(-tA).

Each transformed image is mapped back to [0, 1] per image for display (a rotated
image has no natural colour range), as the paper does for its Fig. 1 and S2.
"""

from __future__ import annotations

import numpy as np

from symflow.figures.style import group_label, save, setup
from symflow.groups import parse_spec


def to_display(x: np.ndarray) -> np.ndarray:
    """Map one image (H, W, 3) to [0, 1] by its own min and max."""
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def column_title(transform: str) -> str:
    spec = parse_spec(transform)
    if spec.t is not None:
        return f"{group_label(spec.group)}\n$t={spec.t:g}$"
    return f"{spec.group}\n{group_label(spec.group)}"


def plot_figS2(data_files: list[str], transforms: list[str], images: int, pdf: str, png: str) -> None:
    from symflow.data import load_dataset

    plt = setup()
    cols = len(transforms)
    fig, axes = plt.subplots(images, cols, figsize=(1.35 * cols, 1.45 * images + 0.6), squeeze=False)
    label_names = None
    for c, (path, transform) in enumerate(zip(data_files, transforms)):
        data = load_dataset(path, parts=("test",))
        label_names = data["attrs"].get("label_names")
        for r in range(images):
            ax = axes[r, c]
            ax.imshow(to_display(data["x_test"][r]), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if r == 0:
                ax.set_title(column_title(transform), fontsize=8)
            if c == 0 and label_names:
                ax.set_ylabel(label_names[int(data["labels_test"][r])], fontsize=8)
    res = data["attrs"].get("resolution")
    fig.suptitle(
        f"Fig. S2: CIFAR-10 test images ({res}x{res}) under a fixed random element of each group "
        f"and along the $SO(3)^d$ path (each image scaled to [0, 1])",
        fontsize=9,
    )
    fig.tight_layout()
    save(fig, pdf, png)
    plt.close(fig)
