"""ILSVRC2012 from the user's disk, converted once into random-access shards.

Sources (:func:`find_source`): a folder holding either

* the official archives ``ILSVRC2012_img_train.tar``, ``ILSVRC2012_img_val.tar`` and
  ``ILSVRC2012_devkit_t12.tar.gz`` (the devkit gives the validation labels), each checked
  against its published MD5 (:data:`ARCHIVES`), or
* the extracted images ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG``.

Labels are positions in the sorted list of class ids (wnids), the usual order of
torchvision, tensorflow-datasets and the flax example.

:func:`convert` writes ArrayRecord shards (``train-00000.array_record``, ...), written with
``group_size:1`` so that any record is one seek away, an index of every record's key (the
image's file name) and label (``index.npz``), and ``manifest.json`` last: a folder without
it is an unfinished conversion. A record is ``<label:uint16><len(key):uint16><key><image
bytes>``, the original JPEG bytes unchanged (:func:`encode_record`). ArrayRecord and grain
(TensorFlow-free, multi-process, deterministic per index) are what flax's own examples are
moving to; symflow pins both.

Subsets (:func:`subset_order`): one fixed permutation of the training images (seeded,
over the images sorted by key, so the archives and the extracted folder give the same
subsets) and m_i = floor(2^(-i/2) m) (:func:`subset_sizes`) takes its first m_i: the
subsets are nested, and every transform and model sees the same images at each m_i.

The host half of the input pipeline (:func:`train_batches`, :func:`eval_batches`) decodes
and augments as the flax ImageNet example does (random-resized crop and flip for training,
centre crop for evaluation) and yields uint8 batches; normalisation and the transform
tau run on the device (symflow.imagenet.transforms).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import struct
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from symflow.data import DataError, md5_file

_log = logging.getLogger(__name__)

# The published MD5s of the ILSVRC2012 downloads: image-net.org's ILSVRC2012 download page,
# as copied into torchvision (pytorch/vision, torchvision/datasets/imagenet.py, ARCHIVE_META).
ARCHIVES = {
    "train": ("ILSVRC2012_img_train.tar", "1d675b47d978889d74fa0da5fadfb00e"),
    "val": ("ILSVRC2012_img_val.tar", "29b22e2961454d5413ddabcf34fc5622"),
    "devkit": ("ILSVRC2012_devkit_t12.tar.gz", "fa75699e90414af021442c21a62c3abf"),
}
TRAIN_IMAGES = 1_281_167  # m_ImageNet of Sec. 6.2
VAL_IMAGES = 50_000
NUM_CLASSES = 1000
# the flax example's normalisation (input_pipeline.py), in pixel units 0..255
MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
IMAGE_SIZE = 224
CROP_FRACTION = 224 / 256  # centre crop: image_size / (image_size + 32) at 224, as the flax example
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
SPLITS = ("train", "val")
MANIFEST = "manifest.json"
INDEX = "index.npz"
FORMAT = 1
_WHERE = (
    "put ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz there "
    "(from image-net.org), or the extracted images as train/<wnid>/*.JPEG and val/<wnid>/*.JPEG"
)


class ImageNetError(DataError):
    """ImageNet files that are missing, damaged or not laid out as expected (one line, with the fix)."""


# -- finding and checking the source ---------------------------------------------------------


@dataclass(frozen=True)
class Source:
    kind: str  # archives | folder
    root: Path


def find_source(root: str | Path) -> Source:
    """The ILSVRC2012 source in `root`: its extracted folders if present, else the three archives."""
    root = Path(root)
    if not root.is_dir():
        raise ImageNetError(f"ImageNet folder {root} does not exist: create it and {_WHERE}")
    has = {split: (root / split).is_dir() for split in SPLITS}
    if any(has.values()):
        missing = [s for s in SPLITS if not has[s]]
        if missing:
            raise ImageNetError(f"{root / missing[0]}: missing; an extracted ImageNet needs "
                                f"{root}/{missing[0]}/<wnid>/*.JPEG")
        return Source("folder", root)
    absent = [name for name, _ in ARCHIVES.values() if not (root / name).is_file()]
    if len(absent) == len(ARCHIVES):
        raise ImageNetError(f"no ImageNet in {root}: {_WHERE}")
    if absent:
        raise ImageNetError(f"{root}: missing {', '.join(absent)}; put {'it' if len(absent) == 1 else 'them'} "
                            f"beside the other ILSVRC2012 archives (from image-net.org)")
    return Source("archives", root)


def verify_archives(root: str | Path, md5s: dict[str, str] | None = None) -> dict[str, str]:
    """Check each archive's MD5 against the published one (or `md5s`, by part); returns name -> MD5."""
    want = {part: md5 for part, (_, md5) in ARCHIVES.items()} | dict(md5s or {})
    got = {}
    for part, (name, _) in ARCHIVES.items():
        path = Path(root) / name
        digest = md5_file(path)
        if digest != want[part]:
            raise ImageNetError(f"{path}: MD5 {digest} is not the published {want[part]}; the file is damaged "
                                f"or another release: download it again from image-net.org")
        got[name] = digest
    return got


def _listing_digest(entries: Iterable[tuple[str, int]]) -> str:
    """A digest of (relative path, size) pairs: names an extracted folder without reading 150 GB."""
    digest = hashlib.sha256()
    for rel, size in entries:
        digest.update(f"{rel}\t{size}\n".encode())
    return digest.hexdigest()


# -- reading the images of a source -----------------------------------------------------------


@dataclass(frozen=True)
class Image:
    key: str  # the file name, unique over a split (n01440764_10026.JPEG, ILSVRC2012_val_00000001.JPEG)
    wnid: str
    data: bytes


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def folder_classes(root: Path) -> list[str]:
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not classes:
        raise ImageNetError(f"{root / 'train'}: no class folders; an extracted ImageNet has train/<wnid>/*.JPEG")
    return classes


def folder_files(root: Path, split: str, classes: list[str]) -> list[tuple[str, Path]]:
    """(wnid, path) of every image of `split`, sorted by class then file name."""
    known = set(classes)
    out = []
    for folder in sorted(p for p in (root / split).iterdir() if p.is_dir()):
        if folder.name not in known:
            raise ImageNetError(f"{folder}: class {folder.name!r} has no training folder in {root / 'train'}")
        out.extend((folder.name, f) for f in sorted(folder.iterdir()) if f.is_file() and _is_image(f.name))
    if not out:
        raise ImageNetError(f"{root / split}: no images; an extracted ImageNet has {split}/<wnid>/*.JPEG")
    return out


def iter_folder(files: list[tuple[str, Path]], workers: int = 8) -> Iterator[Image]:
    """The images of `files`, in order, read by a pool of threads (file reading is I/O bound)."""
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for (wnid, path), data in zip(files, pool.map(lambda wp: wp[1].read_bytes(), files)):
            yield Image(path.name, wnid, data)


def read_devkit(path: str | Path) -> tuple[list[str], dict[str, str], list[str]]:
    """From ILSVRC2012_devkit_t12.tar.gz: the 1000 class wnids (sorted), wnid -> words, and the
    wnid of each validation image in file-number order (ILSVRC2012_val_00000001 first)."""
    from scipy.io import loadmat

    members = {}
    with tarfile.open(path, "r:gz") as tar:
        for m in tar.getmembers():
            for want in ("data/meta.mat", "data/ILSVRC2012_validation_ground_truth.txt"):
                if m.isfile() and m.name.endswith(want):
                    members[want] = tar.extractfile(m).read()
    for want in ("data/meta.mat", "data/ILSVRC2012_validation_ground_truth.txt"):
        if want not in members:
            raise ImageNetError(f"{path}: no {want}; is it ILSVRC2012_devkit_t12.tar.gz?")
    synsets = loadmat(io.BytesIO(members["data/meta.mat"]), squeeze_me=True)["synsets"]
    leaves = [s for s in synsets if int(s["num_children"]) == 0]  # the 1000 classes; the rest are their ancestors
    id_to_wnid = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in leaves}
    words = {str(s["WNID"]): str(s["words"]) for s in leaves}
    truth = members["data/ILSVRC2012_validation_ground_truth.txt"].decode().split()
    return sorted(words), words, [id_to_wnid[int(i)] for i in truth]


def iter_train_archive(path: str | Path) -> Iterator[Image]:
    """The images of ILSVRC2012_img_train.tar: one inner tar per class (<wnid>.tar), streamed."""
    with tarfile.open(path, "r|") as outer:
        for member in outer:
            if not (member.isfile() and member.name.endswith(".tar")):
                continue
            wnid = Path(member.name).stem
            with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as inner:
                for im in inner:
                    if im.isfile() and _is_image(im.name):
                        yield Image(Path(im.name).name, wnid, inner.extractfile(im).read())


_VAL_NUMBER = re.compile(r"_(\d+)\.[A-Za-z]+$")


def iter_val_archive(path: str | Path, val_wnids: list[str]) -> Iterator[Image]:
    """The images of ILSVRC2012_img_val.tar (flat), labelled by the devkit's ground truth."""
    with tarfile.open(path, "r|") as tar:
        for member in tar:
            if not (member.isfile() and _is_image(member.name)):
                continue
            name = Path(member.name).name
            match = _VAL_NUMBER.search(name)
            if not match or not 1 <= int(match.group(1)) <= len(val_wnids):
                raise ImageNetError(f"{path}: {name} is not an ILSVRC2012_val_<number> image the devkit labels")
            yield Image(name, val_wnids[int(match.group(1)) - 1], tar.extractfile(member).read())


# -- shards --------------------------------------------------------------------------------------


def encode_record(label: int, key: str, data: bytes) -> bytes:
    kb = key.encode()
    return struct.pack("<HH", int(label), len(kb)) + kb + data


def decode_record(record: bytes) -> tuple[int, str, bytes]:
    label, n = struct.unpack_from("<HH", record)
    return label, record[4 : 4 + n].decode(), record[4 + n :]


class _ShardWriter:
    """Records of one split into numbered ArrayRecord files of `shard_size` records each."""

    def __init__(self, folder: Path, split: str, shard_size: int):
        self.folder, self.split, self.shard_size = folder, split, int(shard_size)
        self.names: list[str] = []
        self.keys: list[str] = []
        self.labels: list[int] = []
        self._writer = None

    def write(self, label: int, image: Image) -> None:
        from array_record.python.array_record_module import ArrayRecordWriter

        if self._writer is None or len(self.keys) % self.shard_size == 0:
            self.close()
            name = f"{self.split}-{len(self.names):05d}.array_record"
            self._writer = ArrayRecordWriter(str(self.folder / name), "group_size:1")
            self.names.append(name)
        self._writer.write(encode_record(label, image.key, image.data))
        self.keys.append(image.key)
        self.labels.append(int(label))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def convert(
    root: str | Path,
    out: str | Path,
    *,
    shard_size: int = 10_000,
    md5s: dict[str, str] | None = None,
    train_images: int | None = None,
    workers: int = 8,
    log: logging.Logger | None = None,
) -> dict:
    """Convert the ILSVRC2012 in `root` (archives or extracted folder) into shards under `out`.

    md5s: expected MD5 per archive part (train, val, devkit); default the published ones.
    train_images: if given, the number of training images the source must have (the workflow
    names its runs' m before the conversion runs).
    Returns the manifest (also written to out/manifest.json, last).
    """
    from symflow.h5io import atomic_path, package_versions

    log = log or _log
    source = find_source(root)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("*.array_record"), out / MANIFEST, out / INDEX]:
        stale.unlink(missing_ok=True)
    names: dict[str, str] = {}
    if source.kind == "archives":
        log.info("checking the MD5s of the ILSVRC2012 archives in %s", source.root)
        checked = verify_archives(source.root, md5s)
        classes, names, val_wnids = read_devkit(source.root / ARCHIVES["devkit"][0])
        streams = {"train": iter_train_archive(source.root / ARCHIVES["train"][0]),
                   "val": iter_val_archive(source.root / ARCHIVES["val"][0], val_wnids)}
        digest = _listing_digest(sorted(checked.items()))
        provenance = {"kind": "archives", "md5": checked}
    else:
        classes = folder_classes(source.root)
        files = {split: folder_files(source.root, split, classes) for split in SPLITS}
        streams = {split: iter_folder(files[split], workers) for split in SPLITS}
        digest = _listing_digest(
            (f"{split}/{wnid}/{path.name}", path.stat().st_size) for split in SPLITS for wnid, path in files[split])
        provenance = {"kind": "folder", "listing": "sha256 of 'split/wnid/name<TAB>size' lines, sorted"}
    label_of = {wnid: i for i, wnid in enumerate(classes)}
    splits = {}
    for split in SPLITS:
        writer = _ShardWriter(out, split, shard_size)
        try:
            for n, image in enumerate(streams[split], 1):
                if image.wnid not in label_of:
                    raise ImageNetError(f"{source.root}: {split} image {image.key} has class {image.wnid!r}, "
                                        f"not one of the {len(classes)} classes")
                writer.write(label_of[image.wnid], image)
                if n % 50_000 == 0:
                    log.info("%s: %d images converted", split, n)
        finally:
            writer.close()
        if split == "train" and train_images is not None and len(writer.keys) != int(train_images):
            raise ImageNetError(f"{source.root}: {len(writer.keys)} training images, not the {int(train_images)} "
                                f"the settings expect (train_images); is the source complete?")
        if len(set(writer.keys)) != len(writer.keys):
            raise ImageNetError(f"{source.root}: two {split} images share a file name; keys must be unique")
        log.info("%s: %d images in %d shards", split, len(writer.keys), len(writer.names))
        splits[split] = writer
    index = {f"{s}_{what}": np.asarray(getattr(w, what), dtype=np.int32 if what == "labels" else str)
             for s, w in splits.items() for what in ("keys", "labels")}
    with atomic_path(out / INDEX, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **index)
    content = hashlib.sha256(digest.encode())
    for name in sorted(index):
        content.update(f"{name}|".encode() + np.ascontiguousarray(index[name]).tobytes())
    manifest = {
        "format": FORMAT,
        "kind": "imagenet-shards",
        "source": {"root": str(source.root), "digest": digest, **provenance},
        "content_sha256": content.hexdigest(),  # the source's digest and every key and label, in record order
        "classes": classes,
        "class_names": [names.get(w, "") for w in classes],
        "splits": {s: {"count": len(w.keys), "shards": w.names} for s, w in splits.items()},
        "record": "<label:uint16 little-endian><len(key):uint16><key utf-8><image bytes as in the source>",
        "versions": package_versions(),
    }
    with atomic_path(out / MANIFEST, suffix=".json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


class Shards:
    """A converted ImageNet: its manifest, the index of keys and labels, random access to records."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        path = self.folder / MANIFEST
        if not path.is_file():
            raise ImageNetError(f"{path}: missing; {self.folder} is not a finished ImageNet conversion "
                                f"(run the conversion again)")
        self.manifest = json.loads(path.read_text())
        if self.manifest.get("format") != FORMAT:
            raise ImageNetError(f"{path}: format {self.manifest.get('format')}, this symflow reads {FORMAT}; "
                                f"convert again")
        try:
            with np.load(self.folder / INDEX, allow_pickle=False) as index:  # arrays only, never a pickle
                self._index = {k: index[k] for k in index.files}
        except (OSError, ValueError) as exc:
            raise ImageNetError(f"{self.folder / INDEX}: not an index of plain arrays ({' '.join(str(exc).split())}); "
                                f"convert again") from None
        for split in SPLITS:
            for name in self.manifest["splits"][split]["shards"]:
                if not (self.folder / name).is_file():
                    raise ImageNetError(f"{self.folder / name}: missing shard; convert again")

    @property
    def classes(self) -> list[str]:
        return list(self.manifest["classes"])

    @property
    def digest(self) -> str:
        return self.manifest["content_sha256"]

    def count(self, split: str) -> int:
        return int(self.manifest["splits"][split]["count"])

    def keys(self, split: str) -> np.ndarray:
        return self._index[f"{split}_keys"]

    def labels(self, split: str) -> np.ndarray:
        return self._index[f"{split}_labels"]

    def paths(self, split: str) -> list[str]:
        return [str(self.folder / n) for n in self.manifest["splits"][split]["shards"]]

    def source(self, split: str):
        """grain's random-access source over the split's shards (index i = record i)."""
        import grain

        return grain.sources.ArrayRecordDataSource(self.paths(split))


# -- subsets -------------------------------------------------------------------------------------


def subset_sizes(total: int = TRAIN_IMAGES, count: int = 12) -> list[int]:
    """m_i = floor(2^(-i/2) total) for i = 0..count-1 (Sec. 6.2: 1,281,167 down to 28,310)."""
    return [int(np.floor(total * 2.0 ** (-i / 2))) for i in range(int(count))]


def subset_order(keys: np.ndarray, subset_seed: int) -> np.ndarray:
    """Record indices in the order of one fixed permutation of the images sorted by key; the
    subset of size m is its first m entries, so the subsets are nested."""
    import zlib

    canonical = np.argsort(np.asarray(keys), kind="stable")
    rng = np.random.default_rng(np.random.SeedSequence([int(subset_seed), zlib.crc32(b"imagenet-subset")]))
    return canonical[rng.permutation(len(canonical))]


def subset_indices(shards: Shards, m: int, subset_seed: int) -> np.ndarray:
    n = shards.count("train")
    if not 1 <= int(m) <= n:
        raise ValueError(f"subset size m = {m} must lie in 1..{n} (the converted training images)")
    return subset_order(shards.keys("train"), subset_seed)[: int(m)]


# -- decoding and augmentation (host) ------------------------------------------------------------


# the formats PIL may decode: ImageNet's JPEGs and its one PNG. Not every PIL plugin: EPS,
# for one, runs Ghostscript on the file, so bytes from a user's folder never reach it.
DECODE_FORMATS = ("JPEG", "PNG")


def decode_image(data: bytes):
    """A PIL RGB image from JPEG (or PNG, CMYK, greyscale: ImageNet has a few) bytes; any
    other format is refused (PIL.UnidentifiedImageError) without reaching its plugin."""
    from PIL import Image as PILImage

    image = PILImage.open(io.BytesIO(data), formats=DECODE_FORMATS)
    return image.convert("RGB") if image.mode != "RGB" else image


def _resize(image, box, size: int) -> np.ndarray:
    from PIL import Image as PILImage

    return np.asarray(image.resize((size, size), PILImage.Resampling.BICUBIC, box=box), dtype=np.uint8)


def centre_crop(image, size: int = IMAGE_SIZE, crop_fraction: float = CROP_FRACTION) -> np.ndarray:
    """The centre square of side crop_fraction x min(H, W), resized to size x size (bicubic)."""
    w, h = image.size
    side = int(crop_fraction * min(h, w))
    top, left = (h - side + 1) // 2, (w - side + 1) // 2
    return _resize(image, (left, top, left + side, top + side), size)


def random_crop_box(rng: np.random.Generator, width: int, height: int, area=(0.08, 1.0),
                    ratio=(3 / 4, 4 / 3), min_covered: float = 0.1, attempts: int = 10):
    """(left, top, right, bottom) of a random crop, or None after `attempts` misses.

    As tf.image.sample_distorted_bounding_box with the flax example's arguments: area fraction
    and aspect ratio (w / h) uniform in their ranges, the crop covering >= min_covered of the image.
    """
    total = width * height
    for _ in range(attempts):
        target = rng.uniform(*area) * total
        aspect = rng.uniform(*ratio)
        w = int(round(np.sqrt(target * aspect)))
        h = int(round(np.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height and w * h >= min_covered * total:
            left = int(rng.integers(0, width - w + 1))
            top = int(rng.integers(0, height - h + 1))
            return left, top, left + w, top + h
    return None


def train_image(data: bytes, rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """Random-resized crop (centre crop where no crop was found) and a random left-right flip."""
    image = decode_image(data)
    box = random_crop_box(rng, *image.size)
    x = centre_crop(image, size) if box is None else _resize(image, box, size)
    return x[:, ::-1] if rng.uniform() < 0.5 else x


def eval_image(data: bytes, size: int = IMAGE_SIZE) -> np.ndarray:
    return centre_crop(decode_image(data), size)


def _stack(items) -> dict[str, np.ndarray]:
    return {"image": np.stack([i[0] for i in items]), "label": np.asarray([i[1] for i in items], np.int32)}


class _Read:
    """index -> record of `source` (a class, not a lambda, so that worker processes can pickle it)."""

    def __init__(self, source):
        self.source = source

    def __call__(self, index) -> bytes:
        return self.source[int(index)]


class _TrainExample:
    """record -> (augmented uint8 image, label)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, record: bytes, rng: np.random.Generator):
        label, _, data = decode_record(record)
        return train_image(data, rng, self.size), label


def train_batches(
    shards: Shards,
    indices: np.ndarray,
    *,
    batch_size: int,
    epochs: float,
    seed: int,
    image_size: int = IMAGE_SIZE,
    start_step: int = 0,
    workers: int = 0,
    threads: int = 4,
):
    """Batches {'image': uint8 (B, S, S, 3), 'label': int32 (B,)} of the training subset `indices`,
    reshuffled each epoch, from batch `start_step` on (a resumed run continues the same stream).

    The order and every augmentation are a function of (seed, position) only, not of
    `workers` (processes) or `threads`. Returns (iterable, total batches of the run).
    """
    import grain

    source = shards.source("train")
    indices = np.asarray(indices, dtype=np.int64)
    whole_epochs = int(np.ceil(epochs))
    ds = (grain.MapDataset.source(indices).seed(int(seed)).shuffle().repeat(whole_epochs)
          .map(_Read(source)).random_map(_TrainExample(image_size)))
    total = int(len(indices) * epochs) // int(batch_size)
    ds = ds.batch(int(batch_size), drop_remainder=True, batch_fn=_stack)[int(start_step) : total]
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, threads), prefetch_buffer_size=max(2, threads)))
    if workers > 0:
        from absl import flags

        if not flags.FLAGS.is_parsed():  # grain 0.2.18 reads an absl flag in mp_prefetch (google/grain#1355)
            flags.FLAGS.mark_as_parsed()
        it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=int(workers)))
    return it, total


def eval_batches(shards: Shards, *, batch_size: int, image_size: int = IMAGE_SIZE, split: str = "val",
                 limit: int | None = None, indices=None, threads: int = 4) -> Iterator[dict[str, np.ndarray]]:
    """Centre-cropped batches of the records `indices` of `split` (default: all, in record order; the
    first `limit` of them if given); the last batch is padded to batch_size with 'mask' False there."""
    source = shards.source(split)
    indices = np.arange(shards.count(split)) if indices is None else np.asarray(indices, dtype=np.int64)
    if limit is not None:
        indices = indices[: int(limit)]

    def one(i: int):
        label, _, data = decode_record(source[int(i)])
        return eval_image(data, image_size), label

    with ThreadPoolExecutor(max(1, threads)) as pool:
        for start in range(0, len(indices), batch_size):
            items = list(pool.map(one, indices[start : start + batch_size]))
            batch = _stack(items)
            pad = batch_size - len(items)
            batch["mask"] = np.arange(batch_size) < len(items)
            if pad:
                batch["image"] = np.concatenate([batch["image"], np.zeros((pad,) + batch["image"].shape[1:], np.uint8)])
                batch["label"] = np.concatenate([batch["label"], np.zeros(pad, np.int32)])
            yield batch
