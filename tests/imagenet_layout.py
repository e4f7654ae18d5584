"""An ImageNet-layout folder built from the shipped CIFAR-10 sample, for the ImageNet tests.

These are real photographs, but CIFAR-10's, not ImageNet's: a few CIFAR-10 classes, a few
dozen images each, upscaled from 32x32 to 64x64 (bicubic) and saved as JPEG files in
ImageNet's layout (train/<class>/*.JPEG, val/<class>/ILSVRC2012_val_<n>.JPEG). The class
folders are CIFAR-10's label names, not WordNet ids, and the folder says so in its name
and in a README. `write_archives` packs the same images as the three official archives
(train tar of per-class tars, flat val tar, devkit with meta.mat and the validation
ground truth); their MD5s are of course not the published ones.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

from conftest import SAMPLE

# CIFAR-10 labels chosen so that sorted-name order (airplane, bird, cat, ship) differs from CIFAR's (3, 0, 8, 2)
CLASSES = {3: "cat", 0: "airplane", 8: "ship", 2: "bird"}
SIZE = 64
FOLDER = "imagenet-layout-built-from-cifar10-sample"


def _jpeg(x: np.ndarray, size: int = SIZE) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(x).resize((size, size), Image.Resampling.BICUBIC).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def build_layout(dest: Path, train_per_class: int = 24, val_per_class: int = 6) -> Path:
    """dest/FOLDER with train/<class>/<class>_<i>.JPEG and val/<class>/ILSVRC2012_val_<n>.JPEG."""
    from symflow.data import load_cifar10

    cifar = load_cifar10(SAMPLE)
    root = Path(dest) / FOLDER
    (root / "README.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "README.txt").write_text(
        "Not ImageNet: CIFAR-10 images from symflow's shipped sample (symflow/cifar-10-sample), "
        "upscaled to 64x64, laid out "
        "as an extracted ILSVRC2012 (class folders are CIFAR-10 label names) for symflow's tests.\n")
    val = []
    for label, name in CLASSES.items():
        (root / "train" / name).mkdir(parents=True, exist_ok=True)
        (root / "val" / name).mkdir(parents=True, exist_ok=True)
        train_idx = np.flatnonzero(cifar.y_train == label)[:train_per_class]
        for i, j in enumerate(train_idx):
            (root / "train" / name / f"{name}_{i}.JPEG").write_bytes(_jpeg(cifar.x_train[j]))
        val.extend((name, j) for j in np.flatnonzero(cifar.y_test == label)[:val_per_class])
    order = np.random.default_rng(0).permutation(len(val))  # validation numbers mix the classes, as in ILSVRC2012
    for number, k in enumerate(order, 1):
        name, j = val[k]
        (root / "val" / name / f"ILSVRC2012_val_{number:08d}.JPEG").write_bytes(_jpeg(cifar.x_test[j]))
    return root


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _meta_mat(classes: list[str]) -> tuple[bytes, dict[str, int]]:
    """A devkit meta.mat: the leaf synsets with ILSVRC2012_IDs in an order that is not sorted by name,
    plus one ancestor synset (num_children > 0) that is not a class."""
    from scipy.io import savemat

    fields = ["ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children", "wordnet_height",
              "num_train_images"]
    ids = {name: i + 1 for i, name in enumerate(sorted(classes, reverse=True))}
    rows = [(ids[n], n, f"{n}, CIFAR-10 class", "", 0, np.zeros(0), 0, 0) for n in classes]
    rows.append((len(classes) + 1, "animal", "animal", "", 2, np.array([1.0, 2.0]), 1, 0))
    synsets = np.empty((len(rows), 1), dtype=[(f, object) for f in fields])
    for r, row in enumerate(rows):
        synsets[r, 0] = row
    buf = io.BytesIO()
    savemat(buf, {"synsets": synsets})
    return buf.getvalue(), ids


def write_archives(layout: Path, dest: Path) -> dict[str, str]:
    """The three ILSVRC2012 archives of the images in `layout`, in `dest`; returns their MD5s by part."""
    from symflow.data import md5_file

    dest.mkdir(parents=True, exist_ok=True)
    classes = sorted(p.name for p in (layout / "train").iterdir())
    with tarfile.open(dest / "ILSVRC2012_img_train.tar", "w") as outer:
        for name in reversed(classes):  # an archive order that is not sorted
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as inner:
                for f in sorted((layout / "train" / name).iterdir()):
                    _add(inner, f.name, f.read_bytes())
            _add(outer, f"{name}.tar", buf.getvalue())
    val = sorted((f.name, f) for f in (layout / "val").glob("*/*.JPEG"))
    with tarfile.open(dest / "ILSVRC2012_img_val.tar", "w") as tar:
        for name, f in val:
            _add(tar, name, f.read_bytes())
    meta, ids = _meta_mat(classes)
    truth = "".join(f"{ids[f.parent.name]}\n" for _, f in val).encode()
    with tarfile.open(dest / "ILSVRC2012_devkit_t12.tar.gz", "w:gz") as tar:
        _add(tar, "ILSVRC2012_devkit_t12/data/meta.mat", meta)
        _add(tar, "ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt", truth)
    names = {"train": "ILSVRC2012_img_train.tar", "val": "ILSVRC2012_img_val.tar",
             "devkit": "ILSVRC2012_devkit_t12.tar.gz"}
    return {part: md5_file(dest / name) for part, name in names.items()}
