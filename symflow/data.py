"""CIFAR-10 in the official "python version" format, and the data stage (on the images of
any data source: symflow.sources loads them, then :func:`prepare_dataset`).

The same loader reads the official archive's folder (``cifar-10-batches-py``,
five training batches of 10,000 images and a test batch) and the sample that
ships inside the symflow package (``symflow/cifar-10-sample``, package data: the first
1,017 images of four training batches and of the test batch, byte-identical to the
archive; ``data.sample_dir: null``, the default, reads it).

Every folder the loader reads has a ``SHA256SUMS`` file; each batch is checked
against it before it is unpickled, so a damaged or substituted file is refused
with its name. The checksums sit in the same folder, so they prove nothing about
where it came from: the batches (pickles) are read with symflow.safe_pickle, which
admits only what a batch holds (dicts, lists, bytes, str, numbers, numpy arrays of
plain dtypes) and refuses anything else before any of it runs. For the official archive, :func:`extract_archive` verifies the
archive's MD5 (the published c58f30108f718f92721af3b95e74349a) and writes that
file from the extracted batches.

The stage itself (:func:`prepare_dataset`): split the training pool into
train/val with a split seed, take the first n_test test images (or n_test - test_holdout,
followed by test_holdout held-out training images), standardise
each channel with training-set statistics, block-average to R x R, then apply
one fixed random element tau of a transform group (symflow.groups). The targets are one-hot
over the source's K classes (CIFAR-10: 10; :func:`dataset_classes` reads K from a file).
"""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
NUM_CLASSES = 10  # CIFAR-10's; a dataset file without a num_classes attribute (CIFAR-10's) has as many
IMAGE_SIZE = 32
# training-pool and test sizes of each source (used to check a config before any job runs)
SOURCE_SIZES = {"sample": (4068, 1017), "official": (50000, 10000)}


def _sample_dir() -> Path:
    from symflow.package_data import CIFAR10_SAMPLE, path

    return path(CIFAR10_SAMPLE)


# the real CIFAR-10 sample, shipped inside the package (package data, 15 MB): a pip install
# runs the default config offline
SAMPLE_DIR = _sample_dir()


class DataError(RuntimeError):
    """A data file that is missing, damaged or not in the expected format."""


@dataclass(frozen=True)
class Cifar10:
    x_train: np.ndarray  # (N, 32, 32, 3) uint8
    y_train: np.ndarray  # (N,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    label_names: tuple[str, ...]
    checksum: str  # sha256 of the folder's SHA256SUMS file: one digest for the whole source


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


DIGEST_CHARS = 8  # hex digits of a source's identity in dataset names


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sums(folder: Path) -> dict[str, str]:
    sums_file = folder / "SHA256SUMS"
    if not sums_file.exists():
        raise DataError(
            f"{sums_file}: missing; a CIFAR-10 folder needs its SHA256SUMS "
            f"(extract the official archive with `symflow` to create it)"
        )
    sums = {}
    for number, line in enumerate(sums_file.read_text(errors="replace").splitlines(), 1):
        if line.strip():
            parts = line.split()
            if len(parts) != 2 or len(parts[0]) != 64 or any(c not in "0123456789abcdef" for c in parts[0].lower()):
                raise DataError(f"{sums_file}: line {number} is not '<sha256>  <file name>': {line[:80]!r}")
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _load_batch(path: Path, want_sha: str | None) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise DataError(f"{path}: missing CIFAR-10 batch")
    if want_sha is None:
        raise DataError(f"{path}: not listed in its folder's SHA256SUMS; every batch is checked before it is read")
    got = sha256_file(path)
    if got != want_sha:
        raise DataError(
            f"{path}: SHA-256 {got[:16]}... does not match SHA256SUMS ({want_sha[:16]}...); "
            f"the file is damaged or not the CIFAR-10 batch it claims to be"
        )
    from symflow.safe_pickle import UnsafePickleError, load_plain

    try:
        batch = load_plain(path, "a CIFAR-10 batch")
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except UnsafePickleError as exc:  # refused before anything of it ran: it names the file
        raise DataError(str(exc)) from None
    except Exception as exc:  # a non-pickle or a pickle of something else
        raise DataError(f"{path}: not a CIFAR-10 python-format batch ({_one_line(exc)})") from exc
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * IMAGE_SIZE**2:
        raise DataError(f"{path}: data has dtype {data.dtype} and shape {data.shape}, want uint8 (N, 3072)")
    if labels.shape != (data.shape[0],) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"{path}: labels do not match the images or lie outside 0..9")
    # channel-major rows: 1024 red, 1024 green, 1024 blue values -> (N, 32, 32, 3)
    images = data.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def load_cifar10(folder: str | Path) -> Cifar10:
    """Load every training batch present and the test batch from `folder`, verified."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such CIFAR-10 folder")
    sums = read_sums(folder)
    names = [b for b in TRAIN_BATCHES if (folder / b).exists() or b in sums]
    if not names:
        raise DataError(f"{folder}: no data_batch_* files")
    xs, ys = zip(*(_load_batch(folder / b, sums.get(b)) for b in names))
    x_test, y_test = _load_batch(folder / TEST_BATCH, sums.get(TEST_BATCH))
    label_names: tuple[str, ...] = tuple(str(i) for i in range(NUM_CLASSES))
    if (folder / META).exists():
        if META in sums and sha256_file(folder / META) != sums[META]:
            raise DataError(f"{folder / META}: does not match SHA256SUMS")
        from symflow.safe_pickle import UnsafePickleError, load_plain

        try:
            meta = load_plain(folder / META, "a CIFAR-10 batches.meta")
            label_names = tuple(n.decode() for n in meta[b"label_names"])
        except UnsafePickleError as exc:  # refused before anything of it ran: it names the file
            raise DataError(str(exc)) from None
        except Exception as exc:  # a non-pickle or a pickle of something else
            raise DataError(f"{folder / META}: not a CIFAR-10 batches.meta ({_one_line(exc)})") from exc
    return Cifar10(
        x_train=np.concatenate(xs),
        y_train=np.concatenate(ys),
        x_test=x_test,
        y_test=y_test,
        label_names=label_names,
        checksum=sha256_file(folder / "SHA256SUMS"),
    )


def extract_archive(archive: str | Path, dest: str | Path) -> Path:
    """Verify the official archive's MD5, extract it under `dest`, write SHA256SUMS.

    Returns the extracted ``cifar-10-batches-py`` folder.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.exists():
        raise DataError(
            f"{archive}: missing. Without internet, download {ARCHIVE_URL} elsewhere and put it at this path"
        )
    got = md5_file(archive)
    if got != ARCHIVE_MD5:
        raise DataError(f"{archive}: MD5 {got} is not the official {ARCHIVE_MD5}; download it again")
    folder = dest / ARCHIVE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    wanted = set(TRAIN_BATCHES) | {TEST_BATCH, META}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and name in wanted:
                payload = tar.extractfile(member).read()
                (folder / name).write_bytes(payload)
    lines = [f"{sha256_file(folder / n)}  {n}" for n in sorted(wanted)]
    (folder / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    return folder


def download_archive(dest: str | Path, url: str = ARCHIVE_URL, timeout: float = 60.0) -> Path:
    """Download the official archive to `dest` (atomically) and verify its MD5."""
    import urllib.request

    from symflow.h5io import atomic_path

    dest = Path(dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_path(dest) as tmp:
            with open(tmp, "wb") as out:
                while block := resp.read(1 << 20):
                    out.write(block)
            if md5_file(tmp) != ARCHIVE_MD5:
                raise DataError(f"{url}: downloaded file has the wrong MD5")
    except OSError as exc:
        raise DataError(
            f"could not download {url} ({exc}). Without internet, fetch {ARCHIVE_NAME} "
            f"elsewhere and put it at {dest}"
        ) from exc
    return dest


# -- the data stage ----------------------------------------------------------------


@dataclass(frozen=True)
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    train_index: np.ndarray  # positions in the training pool
    val_index: np.ndarray
    test_index: np.ndarray


def split(data: Cifar10, n_train: int, n_val: int, n_test: int, split_seed: int,
          test_holdout: int = 0) -> tuple[np.ndarray, ...]:
    """Indices of train and val (a permutation of the pool by split_seed) and test: the first
    n_test - test_holdout images of the test batch. The test split's last `test_holdout` images
    are held-out training images (the pool's permutation after train and val: never trained on,
    never used for selection); their indices are returned separately (positions in the pool)."""
    pool = len(data.y_train)
    if n_train < 1 or n_val < 0 or n_test < 1:
        raise ValueError("n_train and n_test must be >= 1 and n_val >= 0")
    if not 0 <= test_holdout < n_test and not (test_holdout == n_test and not len(data.y_test)):
        raise ValueError(f"test_holdout = {test_holdout} must be >= 0 and below n_test = {n_test}")
    if n_train + n_val + test_holdout > pool:
        raise ValueError(f"n_train + n_val + test_holdout = {n_train + n_val + test_holdout} exceeds the "
                         f"{pool} training images")
    if n_test - test_holdout > len(data.y_test):
        raise ValueError(f"n_test - test_holdout = {n_test - test_holdout} exceeds the {len(data.y_test)} test images")
    order = np.random.default_rng(np.random.SeedSequence([int(split_seed), 0xC1FA])).permutation(pool)
    # the holdout is taken from the end of the permutation, so n_train and n_val never move it
    holdout = order[pool - test_holdout:] if test_holdout else order[:0]
    return order[:n_train], order[n_train : n_train + n_val], np.arange(n_test - test_holdout), holdout


def downsample(x: np.ndarray, resolution: int) -> np.ndarray:
    """Block-average (N, H, W, C) images to (N, R, R, C); R must divide H and W."""
    n, h, w, c = x.shape
    if resolution < 1 or h % resolution or w % resolution:
        raise ValueError(f"resolution {resolution} must divide the image size {h}x{w}")
    fh, fw = h // resolution, w // resolution
    return x.reshape(n, resolution, fh, resolution, fw, c).mean(axis=(2, 4))


def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    """The (N, k) float32 one-hot targets of labels 0..k-1: the networks' k outputs are regressed on them."""
    return np.eye(k, dtype=np.float32)[labels]


def dataset_classes(attrs: Mapping) -> int:
    """The class count K of a data-stage file (its attributes): the width of its one-hot
    targets and of the networks' outputs. A file without the attribute is CIFAR-10's (10)."""
    return int(attrs.get("num_classes", NUM_CLASSES))


def prepare_splits(data: Cifar10, n_train: int, n_val: int, n_test: int, resolution: int, split_seed: int,
                   test_holdout: int = 0) -> Splits:
    """Split, standardise per channel with training statistics, downsample to R x R. The test
    split is the test batch's first n_test - test_holdout images, then `test_holdout` held-out
    training images (:func:`split`); test_index holds a test image's position in the test batch,
    a held-out one's in the training pool."""
    tr, va, te, ho = split(data, n_train, n_val, n_test, split_seed, test_holdout)
    x_tr = data.x_train[tr].astype(np.float64) / 255.0
    mean = x_tr.mean(axis=(0, 1, 2))
    std = x_tr.std(axis=(0, 1, 2))

    def prep(x: np.ndarray) -> np.ndarray:
        z = (x.astype(np.float64) / 255.0 - mean) / std
        return downsample(z, resolution)

    return Splits(
        x_train=prep(data.x_train[tr]),
        y_train=data.y_train[tr],
        x_val=prep(data.x_train[va]),
        y_val=data.y_train[va],
        x_test=prep(np.concatenate([data.x_test[te], data.x_train[ho]])),
        y_test=np.concatenate([data.y_test[te], data.y_train[ho]]),
        mean=mean,
        std=std,
        train_index=tr,
        val_index=va,
        test_index=np.concatenate([te, ho]),
    )


def sample_images(n: int, resolution: int, folder: str | Path = SAMPLE_DIR, split_seed: int = 0) -> np.ndarray:
    """n real training images (float64, (n, R, R, 3)) prepared as the data stage does:
    the first n of the split by split_seed, standardised with their own channel statistics,
    block-averaged to R x R. For quick checks (``symflow audit``, tests)."""
    splits = prepare_splits(load_cifar10(folder), int(n), 0, 1, int(resolution), int(split_seed))
    return splits.x_train


def add_flips(splits: Splits) -> Splits:
    """The training split followed by its left-right mirror images (the paper's Fig. 4
    augmentation, 45k -> 90k): row n + i is row i flipped; val and test are unchanged.

    The flip is applied before tau. Channel statistics and the block average commute
    with it, so the first n rows are exactly the unflipped dataset's.
    """
    import dataclasses

    return dataclasses.replace(
        splits,
        x_train=np.concatenate([splits.x_train, splits.x_train[:, :, ::-1, :]]),
        y_train=np.concatenate([splits.y_train, splits.y_train]),
        train_index=np.concatenate([splits.train_index, splits.train_index]),
    )


def transform_splits(splits: Splits, transform: str, seed: int, num_classes: int = NUM_CLASSES) -> dict[str, np.ndarray]:
    """Apply one element tau (drawn from `seed`) to every split; arrays ready for HDF5 (the
    targets y_* one-hot over `num_classes`)."""
    from symflow.groups import sample_element, transform_images

    element = sample_element(transform, seed, splits.x_train.shape[1:])
    out: dict[str, np.ndarray] = {}
    for part in ("train", "val", "test"):
        x = getattr(splits, f"x_{part}")
        y = getattr(splits, f"y_{part}")
        out[f"x_{part}"] = transform_images(transform, seed, x, element).astype(np.float32)
        out[f"y_{part}"] = one_hot(y, num_classes)
        out[f"labels_{part}"] = y.astype(np.int64)
        out[f"index_{part}"] = getattr(splits, f"{part}_index").astype(np.int64)
    return out


def split_duplicates(hashes_train: tuple[str, ...], hashes_test: tuple[str, ...], train: np.ndarray,
                     val: np.ndarray, test: np.ndarray, holdout: np.ndarray) -> str:
    """A warning naming how many images of one split are also in another (by the content hash
    of their decoded pixels), or '' when none are (indices as :func:`split` gives)."""
    pool = np.asarray(hashes_train, dtype=object)
    batch = np.asarray(hashes_test, dtype=object)
    parts = {"train": set(pool[train]), "val": set(pool[val]),
             "test": set(batch[test]) | set(pool[holdout])}
    found = [f"{a}/{b} {len(parts[a] & parts[b])}" for a, b in (("train", "val"), ("train", "test"), ("val", "test"))
             if parts[a] & parts[b]]
    if not found:
        return ""
    return ("warning: identical images in two splits (by content hash): " + ", ".join(found)
            + "; test accuracy is optimistic where a test image was trained on")


def class_count(data: Cifar10, source_dir: str | Path) -> int:
    """K, the number of classes of a source's images (its label names), once every label is
    checked to lie in 0..K-1; a DataError where K < 2 or a label lies outside."""
    k = len(data.label_names)
    if k < 2:
        raise DataError(f"{source_dir}: {k} class(es); a classifier needs at least 2")
    for part, labels in (("training", data.y_train), ("test", data.y_test)):
        if len(labels) and (labels.min() < 0 or labels.max() >= k):
            raise DataError(f"{source_dir}: {part} labels lie outside 0..{k - 1} (the {k} classes' indices)")
    return k


def prepare_dataset(
    source_dir: str | Path,
    out_path: str | Path,
    *,
    source: str,
    n_train: int,
    n_val: int,
    n_test: int,
    resolution: int,
    split_seed: int,
    transform: str,
    seed: int,
    flip: bool = False,
    digest: str | None = None,
    test_holdout: int = 0,
    images: Cifar10 | None = None,
) -> None:
    """The data stage: one HDF5 file per (dataset, transform, seed), written atomically.

    With `flip`, the training split holds 2 n_train images: the n_train of the split,
    then their left-right mirror images (:func:`add_flips`), all transformed by tau.
    `images`: the source's images, loaded (symflow.sources.make_dataset); None reads the
    CIFAR-10 folder `source_dir`. The targets y_* are one-hot over the source's K classes (its
    label names); a file of any source but CIFAR-10's records K as the attribute num_classes.
    """
    from symflow.groups import parse_spec
    from symflow.h5io import package_versions, write_h5

    spec = parse_spec(transform)
    data = load_cifar10(source_dir) if images is None else images
    if digest is not None and source != "official" and not data.checksum.startswith(digest):
        raise DataError(
            f"{source_dir}: its SHA256SUMS digests to {data.checksum[:DIGEST_CHARS]}, not {digest} as the "
            "dataset name says; the folder changed since the workflow was planned"
        )
    notes = list(getattr(data, "notes", ()))  # what a source's checks found (an image folder's)
    if getattr(data, "hashes_train", None):
        notes.append(split_duplicates(data.hashes_train, data.hashes_test,
                                      *split(data, n_train, n_val, n_test, split_seed, test_holdout)))
    notes = [n for n in notes if n]
    for note in notes:
        level = logging.WARNING if note.startswith("warning") else logging.INFO
        logging.getLogger(__name__).log(level, "%s: %s", source_dir, note)
    num_classes = class_count(data, source_dir)
    splits = prepare_splits(data, n_train, n_val, n_test, resolution, split_seed, test_holdout)
    if flip:
        splits = add_flips(splits)
    arrays = transform_splits(splits, spec.id, seed, num_classes)
    attrs = {
        "kind": "dataset",
        "source": source,
        "source_dir": str(source_dir),
        "source_checksum": data.checksum,
        "source_checksum_kind": "sha256 of the folder's SHA256SUMS file",
        "archive_md5": ARCHIVE_MD5 if source == "official" else "n/a (shipped sample)" if source == "sample" else "n/a",
        "group": spec.group,
        "transform": spec.id,
        "t": spec.t if spec.t is not None else float("nan"),
        "seed": int(seed),
        "split_seed": int(split_seed),
        "resolution": int(resolution),
        "n_train": int(n_train),
        "n_val": int(n_val),
        "n_test": int(n_test),
        "test_holdout": int(test_holdout),
        "test_rows": (f"rows 0..{n_test - test_holdout - 1}: the test batch's first {n_test - test_holdout} images "
                      f"(index_test: position in the batch)"
                      + (f"; rows {n_test - test_holdout}..{n_test - 1}: held-out training-pool images, never in "
                         "train or val (index_test: position in the pool)" if test_holdout else "")),
        "flip": int(bool(flip)),
        "flip_note": "x_train rows n_train + i are rows i mirrored left-right (before tau)" if flip else "",
        "channel_mean": splits.mean.tolist(),
        "channel_std": splits.std.tolist(),
        "label_names": list(data.label_names),
        "preprocessing": "x/255, per-channel standardisation (train stats), block-average to RxR, "
        + ("left-right flipped copies appended to train, " if flip else "")
        + "then tau",
        "versions": package_versions(),
    }
    if source not in ("sample", "official"):  # CIFAR-10's files keep their attributes of old
        attrs["source_notes"] = "; ".join(notes)
        attrs["num_classes"] = num_classes  # absent: 10 (dataset_classes)
        attrs["test_rows"] = attrs["test_rows"].replace("the test batch", "the source's test batch")
    write_h5(out_path, arrays, attrs)


def load_dataset(path: str | Path, parts: tuple[str, ...] = ("train", "val", "test")) -> dict[str, np.ndarray]:
    """Read a data-stage file (checksum verified): x_*, y_*, labels_* for the requested parts."""
    from symflow.h5io import read_h5

    arrays, attrs = read_h5(path)
    classes = dataset_classes(attrs)
    widths = sorted({a.shape[-1] for name, a in arrays.items() if name.startswith("y_")} - {classes})
    if widths:
        raise DataError(f"{path}: one-hot targets of width {widths[0]}, but the file has {classes} classes")
    keep = {k: v for k, v in arrays.items() if k.split("_", 1)[-1] in parts}
    keep["attrs"] = attrs  # type: ignore[assignment]
    return keep
