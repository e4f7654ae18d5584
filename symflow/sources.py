"""Data sources: where the data stage's images come from, chosen by name (``data.source``)
from a registry, as groups and architectures are.

    sample    real CIFAR-10 images in the python format, by default the sample shipped
              inside the package (symflow/cifar-10-sample); ``data.sample_dir`` names another
    official  the full CIFAR-10 archive, downloaded and MD5-checked by the workflow
    digits    scikit-learn's 8x8 handwritten digits (1,797 real images, one channel),
              shipped inside the package (symflow/digits, with its licence and source)
    folder    a user's folder of images, one subfolder per class (``data.folder``; any
              number K >= 2 of classes: the networks get K outputs), any format Pillow
              reads, each image resized to data.resolution; a checksum manifest
              (SHA256SUMS) is written into the folder on its first read

Every source has an identity, a short digest that goes into the dataset's name (so data
from two folders never share a path): the SHA-256 of its folder's SHA256SUMS, or for the
official archive its published MD5. Where the folder lies is not part of it (a speed knob).
The dataset name begins with the source's stem: ``cifar10-sample``, ``cifar10-official``
(CIFAR-10's names are those of the releases before this registry), ``digits``, ``folder``.

A plug-in registers its own source with ``SOURCES.register(DataSource(...))``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from symflow.data import (
    ARCHIVE_FOLDER,
    ARCHIVE_MD5,
    DIGEST_CHARS,
    NUM_CLASSES,
    SOURCE_SIZES,
    Cifar10,
    DataError,
    _one_line,
    load_cifar10,
    prepare_dataset,
    read_sums,
    sha256_file,
)
from symflow.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataSource:
    """A source of labelled images for the data stage.

    location(data) -> the folder a data job reads (a location only: never in a path);
    digest(data) -> its identity, 8 hex digits, for the dataset name;
    sizes(data) -> (training pool, test batch) image counts, to check a config;
    load(location, resolution) -> the images (:class:`symflow.data.Cifar10`, uint8 or float
    values in [0, 255], (N, H, W, C)); H must be a multiple of the resolution;
    classes(data) -> K, the class count (its label names' count), known before any job runs
    (for cost estimates and the figures' chance line; the data stage reads K from the images).
    """

    name: str
    description: str
    title: str  # for figures and tables: what the data are
    location: Callable[[Mapping], str]
    digest: Callable[[Mapping], str]
    sizes: Callable[[Mapping], tuple[int, int]]
    load: Callable[[str, int], Cifar10]
    image_size: int | None = None  # the images' side; None: resized to data.resolution
    channels: int | None = None  # None: the data's own (read when loaded)
    paper: bool = False  # the paper's data (CIFAR-10): its stated numbers apply
    tags: tuple[str, ...] = field(default_factory=tuple)
    classes: Callable[[Mapping], int] = lambda data: NUM_CLASSES  # CIFAR-10's and the digits' 10


SOURCES: Registry[DataSource] = Registry("data source")


def dataset_stem(source: str) -> str:
    """The first part of a dataset's name: CIFAR-10's two sources keep their names of old
    (``cifar10-sample``, ``cifar10-official``), every other source is named by itself."""
    return f"cifar10-{source}" if source in ("sample", "official") else source


def folder_digest(folder: str | Path, missing: str = "every source folder needs its SHA256SUMS") -> str:
    """The first hex digits of the SHA-256 of `folder`'s SHA256SUMS; a DataError that says
    `missing` where it is absent."""
    sums = Path(folder) / "SHA256SUMS"
    if not sums.is_file():
        raise DataError(f"{sums}: missing; {missing}")
    return sha256_file(sums)[:DIGEST_CHARS]


# -- CIFAR-10 ------------------------------------------------------------------------------------


def _sample_digest(data: Mapping) -> str:
    from symflow.data import SAMPLE_DIR

    return folder_digest(data["sample_dir"], f"data.sample_dir names a CIFAR-10 folder in the python format, "
                                             f"which needs its SHA256SUMS (as {SAMPLE_DIR / 'README.md'} describes)")


def _cifar_load(folder: str, resolution: int) -> Cifar10:
    return load_cifar10(folder)


SOURCES.register(DataSource(
    name="sample",
    description="real CIFAR-10 images in the python format: the sample shipped in the package "
                "(4,068 train, 1,017 test; offline), or the folder data.sample_dir names",
    title="CIFAR-10 (sample)",
    location=lambda data: data["sample_dir"],
    digest=_sample_digest,
    sizes=lambda data: SOURCE_SIZES["sample"],
    load=_cifar_load,
    image_size=32,
    channels=3,
    paper=True,
))

SOURCES.register(DataSource(
    name="official",
    description="the full CIFAR-10 archive (50,000 train, 10,000 test), downloaded to "
                "data.official_dir and MD5-checked by the workflow",
    title="CIFAR-10 (official)",
    location=lambda data: f"{data['official_dir']}/{ARCHIVE_FOLDER}",
    digest=lambda data: ARCHIVE_MD5[:DIGEST_CHARS],
    sizes=lambda data: SOURCE_SIZES["official"],
    load=_cifar_load,
    image_size=32,
    channels=3,
    paper=True,
))


# -- scikit-learn's digits -----------------------------------------------------------------------

DIGITS_FILE = "digits.csv.gz"
DIGITS_POOL, DIGITS_TEST = 1497, 300  # the first rows are the training pool, the last the test batch
DIGITS_SIZE = 8


def digits_dir() -> Path:
    from symflow.package_data import DIGITS, path

    return path(DIGITS)


def load_digits(folder: str | Path) -> Cifar10:
    """The 1,797 digits, checked against the folder's SHA256SUMS: (N, 8, 8, 1) float32 in
    [0, 255] (the 0..16 counts scaled by 255/16, exactly), labels 0..9."""
    import gzip

    folder = Path(folder)
    sums = read_sums(folder)
    path = folder / DIGITS_FILE
    if not path.is_file():
        raise DataError(f"{path}: missing")
    if sha256_file(path) != sums.get(DIGITS_FILE):
        raise DataError(f"{path}: does not match its SHA256SUMS; the file is damaged")
    with gzip.open(path, "rt") as fh:
        table = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    if table.shape != (DIGITS_POOL + DIGITS_TEST, DIGITS_SIZE**2 + 1):
        raise DataError(f"{path}: shape {table.shape}, want (1797, 65)")
    x = (table[:, :-1] * (255.0 / 16.0)).astype(np.float32).reshape(-1, DIGITS_SIZE, DIGITS_SIZE, 1)
    y = table[:, -1].astype(np.int64)
    return Cifar10(
        x_train=x[:DIGITS_POOL], y_train=y[:DIGITS_POOL], x_test=x[DIGITS_POOL:], y_test=y[DIGITS_POOL:],
        label_names=tuple(str(i) for i in range(10)), checksum=sha256_file(folder / "SHA256SUMS"),
    )


SOURCES.register(DataSource(
    name="digits",
    description="scikit-learn's 8x8 handwritten digits (UCI optdigits test set; 1,797 real images, "
                "one channel; shipped in the package): 1,497 train, 300 test",
    title="scikit-learn digits",
    location=lambda data: str(digits_dir()),
    digest=lambda data: folder_digest(digits_dir()),
    sizes=lambda data: (DIGITS_POOL, DIGITS_TEST),
    load=lambda folder, resolution: load_digits(folder),
    image_size=DIGITS_SIZE,
    channels=1,
))


# -- a folder of images, one subfolder per class -------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
MANIFEST = "SHA256SUMS"
BALANCE_RATIO = 1.5  # largest / smallest class above this: a warning


@dataclass(frozen=True)
class FolderLayout:
    """The image files of a folder: (relative path, class index) per split."""

    root: Path
    classes: tuple[str, ...]
    train: tuple[tuple[str, int], ...]
    test: tuple[tuple[str, int], ...]


def _class_files(split_dir: Path, root: Path, classes: tuple[str, ...] | None) -> tuple[tuple[str, ...], list]:
    found = sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not found:
        raise DataError(f"{split_dir}: no class folders (put each class's images in a subfolder named after it)")
    if classes is not None and tuple(found) != classes:
        raise DataError(f"{split_dir}: class folders {', '.join(found)} differ from train's {', '.join(classes)}")
    files = []
    for k, name in enumerate(found):
        folder = split_dir / name
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        for p in entries:
            if p.is_dir():
                raise DataError(f"{p}: a folder inside class folder {name!r}; a class folder holds image files only")
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(f"{p}: not an image file (want {', '.join(s[1:] for s in IMAGE_SUFFIXES)})")
        if not entries:
            raise DataError(f"{folder}: empty class folder (no image files)")
        files += [(p.relative_to(root).as_posix(), k) for p in entries]
    return tuple(found), files


def folder_layout(root: str | Path) -> FolderLayout:
    """The class folders of `root` and their files. Either ROOT/<class>/<image> (every image in
    the training pool; the test split is held-out pool images, data.test_holdout = data.n_test)
    or ROOT/train/<class>/<image> and ROOT/test/<class>/<image> (the same classes)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such image folder")
    subs = {d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")}
    if subs == {"train", "test"}:
        classes, train = _class_files(root / "train", root, None)
        _, test = _class_files(root / "test", root, classes)
    else:
        classes, train = _class_files(root, root, None)
        test = []
    return FolderLayout(root, classes, tuple(train), tuple(test))


def folder_manifest(root: str | Path, layout: FolderLayout | None = None) -> dict[str, str]:
    """The folder's SHA256SUMS (file -> sha256), written on the first read; afterwards the files
    present must be exactly those it lists (contents are checked when the images are read)."""
    root = Path(root)
    layout = layout or folder_layout(root)
    names = [rel for rel, _ in layout.train + layout.test]
    sums_file = root / MANIFEST
    if not sums_file.exists():
        from symflow.h5io import atomic_path

        lines = [f"{sha256_file(root / rel)}  {rel}" for rel in sorted(names)]
        try:
            with atomic_path(sums_file) as tmp:
                Path(tmp).write_text("\n".join(lines) + "\n")
        except OSError as exc:
            raise DataError(f"{sums_file}: could not write the folder's manifest ({_one_line(exc)}); "
                            "make the folder writable once, or write it with sha256sum") from None
        log.info("%s: manifest of %d images written", sums_file, len(names))
    sums = read_sums(root)
    unlisted = sorted(set(names) - set(sums))
    missing = sorted(set(sums) - set(names))
    if unlisted or missing:
        what = f"{unlisted[0]} is not listed" if unlisted else f"{missing[0]} is listed but missing"
        raise DataError(f"{sums_file}: {what} ({len(unlisted)} new, {len(missing)} missing files): the folder "
                        "changed since its manifest was written; delete SHA256SUMS to index it again "
                        "(a new digest, so a new dataset name)")
    return sums


def _check_classes(layout: FolderLayout) -> int:
    """K, the folder's class count (any K >= 2: the networks get K outputs)."""
    if len(layout.classes) < 2:
        raise DataError(f"{layout.root}: {len(layout.classes)} class folder; a classifier needs at least 2")
    return len(layout.classes)


def _folder_sizes(data: Mapping) -> tuple[int, int]:
    layout = folder_layout(_folder_of(data))
    _check_classes(layout)
    return len(layout.train), len(layout.test)


def _folder_classes(data: Mapping) -> int:
    return _check_classes(folder_layout(_folder_of(data)))


def _folder_of(data: Mapping) -> str:
    if not data.get("folder"):
        raise DataError("data.folder: not set; the folder source reads a folder with one subfolder per class")
    return str(data["folder"])


def _folder_digest(data: Mapping) -> str:
    folder_manifest(_folder_of(data))
    return folder_digest(_folder_of(data))


def _read_image(path: Path, resolution: int) -> tuple[np.ndarray, str, tuple[int, int]]:
    """One image: centre-cropped to a square, area-resized to R x R (float32 in [0, 255],
    (R, R, C)); the SHA-256 of its decoded pixels; its size (width, height)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            gray = im.mode in ("1", "L", "LA", "I", "I;16", "F")
            im = im.convert("L" if gray else "RGB")  # alpha dropped, palettes expanded
    except Exception as exc:  # any decoder error: the file is not an image Pillow reads
        raise DataError(f"{path}: unreadable as an image ({_one_line(exc)})") from None
    pixels = np.asarray(im, dtype=np.uint8)
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    content = hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()
    h, w = pixels.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = pixels[top:top + side, left:left + side].astype(np.float32)
    if side == resolution:
        out = square
    elif side % resolution == 0:  # an exact block average
        f = side // resolution
        out = square.reshape(resolution, f, resolution, f, -1).mean(axis=(1, 3))
    else:
        out = np.stack([np.asarray(Image.fromarray(square[:, :, c], mode="F").resize(
            (resolution, resolution), Image.Resampling.BOX)) for c in range(square.shape[2])], axis=-1)
    return out.astype(np.float32), content, (w, h)


@dataclass(frozen=True)
class FolderImages(Cifar10):
    """A folder's images, with what the checks found (:func:`load_folder`)."""

    hashes_train: tuple[str, ...] = ()
    hashes_test: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def load_folder(root: str | Path, resolution: int) -> FolderImages:
    """Every image of the folder, checked against its manifest, resized to R x R.

    Refused with a one-line DataError: no class folders, an empty class folder, a file that is not
    an image or that Pillow cannot read, images with different channel counts, a file changed since
    the manifest was written, fewer than 2 classes. Noted (FolderImages.notes, logged by the
    data stage): unbalanced classes, the image sizes (cropped or enlarged ones)."""
    root = Path(root)
    layout = folder_layout(root)
    _check_classes(layout)
    sums = folder_manifest(root, layout)
    first: tuple[Path, int] | None = None
    sizes: dict[tuple[int, int], int] = {}

    def read(entries) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
        nonlocal first
        xs, hashes = [], []
        for rel, _ in entries:
            path = root / rel
            if sha256_file(path) != sums[rel]:
                raise DataError(f"{path}: changed since the folder's SHA256SUMS was written; delete SHA256SUMS "
                                "to index the folder again (a new dataset name)")
            x, content, size = _read_image(path, resolution)
            if first is None:
                first = (path, x.shape[-1])
            elif x.shape[-1] != first[1]:
                raise DataError(f"{path}: {x.shape[-1]} channel(s), but {first[0]} has {first[1]}; every image "
                                "needs the same number of channels (convert them to one mode first)")
            sizes[size] = sizes.get(size, 0) + 1
            xs.append(x)
            hashes.append(content)
        labels = np.array([k for _, k in entries], dtype=np.int64)
        c = first[1] if first else 1
        return (np.stack(xs) if xs else np.zeros((0, resolution, resolution, c), np.float32)), labels, tuple(hashes)

    x_train, y_train, h_train = read(layout.train)
    x_test, y_test, h_test = read(layout.test)
    notes = [*_balance_notes(layout.classes, y_train), _size_note(sizes, resolution)]
    return FolderImages(
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, label_names=layout.classes,
        checksum=sha256_file(root / MANIFEST), hashes_train=h_train, hashes_test=h_test,
        notes=tuple(n for n in notes if n),
    )


def _balance_notes(classes: tuple[str, ...], labels: np.ndarray) -> list[str]:
    counts = np.bincount(labels, minlength=len(classes))
    small, large = int(np.argmin(counts)), int(np.argmax(counts))
    if counts[large] > BALANCE_RATIO * counts[small]:
        return [f"warning: unbalanced classes: {classes[small]!r} has {counts[small]} training images, "
                f"{classes[large]!r} {counts[large]} (accuracy then rewards the large classes)"]
    return []


def _size_note(sizes: dict[tuple[int, int], int], resolution: int) -> str:
    if not sizes:
        return ""
    listed = ", ".join(f"{w}x{h} ({n})" for (w, h), n in sorted(sizes.items(), key=lambda kv: -kv[1])[:4])
    more = f" and {len(sizes) - 4} more sizes" if len(sizes) > 4 else ""
    text = f"image sizes: {listed}{more}, each resized to {resolution}x{resolution}"
    if any(w != h for w, h in sizes):
        text += "; non-square images are centre-cropped to a square first"
    if any(min(w, h) < resolution for w, h in sizes):
        text = "warning: " + text + f"; some images are smaller than {resolution}x{resolution} and are enlarged"
    return text


SOURCES.register(DataSource(
    name="folder",
    description="a folder of images (data.folder), one subfolder per class (or train/ and test/ "
                "holding them), any format Pillow reads, resized to data.resolution; its "
                "SHA256SUMS manifest is written on the first read",
    title="image folder",
    location=_folder_of,
    digest=_folder_digest,
    sizes=_folder_sizes,
    load=lambda folder, resolution: load_folder(folder, resolution),
    classes=_folder_classes,
))


# -- for the workflow and the config check -------------------------------------------------------


def source_digest(data: Mapping) -> str:
    """The identity of a config's data source, for its dataset name: the first hex digits of
    the SHA-256 of the folder's SHA256SUMS (the shipped sample, the digits, a user's folder),
    or of the official archive's published MD5 (its extraction checks it)."""
    return SOURCES.get(data["source"]).digest(data)


def source_sizes(data: Mapping) -> tuple[int, int]:
    """(training pool, test batch) image counts of a config's data source."""
    return _ask(tuple(sorted(data.items())), "sizes")


def source_classes(data: Mapping) -> int:
    """K, the class count of a config's data source (10 for CIFAR-10 and the digits)."""
    return _ask(tuple(sorted(data.items())), "classes")


@functools.lru_cache(maxsize=16)
def _ask(items: tuple, question: str):  # a folder is listed once per process and question
    data = dict(items)
    return getattr(SOURCES.get(data["source"]), question)(data)


def make_dataset(source_dir: str | Path, out_path: str | Path, *, source: str, resolution: int, **settings) -> None:
    """The data stage on any registered source: load its images from `source_dir` (a location),
    then :func:`symflow.data.prepare_dataset` (split, standardise, downsample, tau)."""
    images = SOURCES.get(source).load(str(source_dir), int(resolution))
    prepare_dataset(source_dir, out_path, source=source, resolution=resolution, images=images, **settings)


def source_title(name: str) -> str:
    """What a source's data are, for figures and tables (its name where it is not registered)."""
    return SOURCES.get(name).title if name in SOURCES else name
