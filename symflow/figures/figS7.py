"""Figs. S7-S9: ImageNet test images, O(3)^d-rotated with seed 1 (S7) and seed 2 (S8), and clean (S9).

The images are the first ILSVRC2012 validation images by file name (ILSVRC2012_val_00000001, ...,
whatever order the shards hold them in) of the converted shards, centre-cropped
as for evaluation; a rotated image is tau applied to the normalised image (the network's input),
mapped back to [0, 1] per image for display as Fig. S2 does (it has no natural colour range);
a clean image is shown as it is.
"""

from __future__ import annotations

import numpy as np

from symflow.figures.figS2 import to_display
from symflow.figures.style import group_label, save, setup


def sample_grid(shards_dir, transform: str, seed: int, images: int, image_size: int) -> tuple[np.ndarray, list[str]]:
    """(images, H, W, 3) in [0, 1] for display, and each image's class (its name where the devkit gave one)."""
    from symflow.groups import parse_spec, transform_images
    from symflow.imagenet.data import MEAN_RGB, STDDEV_RGB, Shards, eval_batches

    shards = Shards(shards_dir)
    first = np.argsort(shards.keys("val"), kind="stable")[:images]
    batch = next(eval_batches(shards, batch_size=images, image_size=image_size, indices=first))
    n = int(batch["mask"].sum())
    x = batch["image"][:n].astype(np.float64)
    names = shards.manifest.get("class_names") or []
    labels = [names[i].split(",")[0] if i < len(names) and names[i] else shards.classes[i]
              for i in batch["label"][:n]]
    if parse_spec(transform).group == "identity":
        return x / 255.0, labels
    z = transform_images(transform, seed, (x - np.asarray(MEAN_RGB)) / np.asarray(STDDEV_RGB))
    return np.stack([to_display(im) for im in z]), labels


def plot_samples(shards_dir, pdf, png, *, transform: str, seed: int, figure: str, images: int = 16,
                 columns: int = 8, image_size: int = 224) -> None:
    plt = setup()
    grid, labels = sample_grid(shards_dir, transform, seed, images, image_size)
    rows = int(np.ceil(len(grid) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.45 * rows + 0.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < len(grid):
            ax.imshow(grid[k], interpolation="nearest")
            ax.set_title(labels[k][:18], fontsize=6)
    what = ("clean" if transform == "identity" else f"{group_label(transform)}-rotated (seed {seed}, "
            f"each image scaled to [0, 1])")
    fig.suptitle(f"{figure}: {what} ImageNet test images", fontsize=9)
    fig.tight_layout()
    save(fig, pdf, png)
    plt.close(fig)
