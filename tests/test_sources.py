"""Data sources as a registry (issue 31): CIFAR-10's names unchanged, the shipped digits, an image
folder made here from real CIFAR-10 sample images written as PNGs, and the folder checks (a test
per refusal, each a one-line error)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CONFIG, SAMPLE, TINY
from symflow.cli import _load_configs
from symflow.configuration import ConfigError, dataset_id, parse_dataset_id, validate
from symflow.data import DataError, load_cifar10
from symflow.sources import SOURCES, digits_dir, load_digits, load_folder, source_digest
from symflow.sources import make_dataset as prepare_dataset

PIL = pytest.importorskip("PIL.Image")

DEFAULT_DATASET = "cifar10-sample.0e454ec3-r8-n1000.250.2500h1500-split0"


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


# -- the registry, and CIFAR-10 as before -------------------------------------------------------


def test_registry_lists_the_sources():
    assert SOURCES.names()[:4] == ["sample", "official", "digits", "folder"]
    out = subprocess.run([sys.executable, "-m", "symflow.cli", "list"], capture_output=True, text=True, check=True)
    for name in ("sample", "official", "digits", "folder"):
        assert f"\n  {name} " in out.stdout


def test_cifar10_names_are_unchanged():
    from symflow.jobs import Jobs

    assert Jobs(validate(_load_configs([str(CONFIG)]))).dataset == DEFAULT_DATASET
    data = {"source": "official", "resolution": 32, "n_train": 45000, "n_val": 5000, "n_test": 10000,
            "split_seed": 0}
    assert source_digest(data) == "c58f3010"
    assert dataset_id(data, "c58f3010") == "cifar10-official.c58f3010-r32-n45000.5000.10000-split0"
    assert parse_dataset_id(DEFAULT_DATASET) == {"source": "sample", "digest": "0e454ec3", "resolution": 8,
                                                 "n_train": 1000, "n_val": 250, "n_test": 2500,
                                                 "test_holdout": 1500, "split_seed": 0, "flip": False}


def test_an_unknown_source_is_one_line():
    cfg = _load_configs([str(CONFIG)])
    cfg["data"]["source"] = "digit"
    with pytest.raises(ConfigError) as exc:
        validate(cfg)
    assert one_line(exc).startswith("data.source: unknown data source 'digit' (did you mean 'digits'?)")


# -- digits ---------------------------------------------------------------------------------------


def test_digits_are_the_shipped_real_images():
    d = load_digits(digits_dir())
    assert d.x_train.shape == (1497, 8, 8, 1) and d.x_test.shape == (300, 8, 8, 1)
    assert set(np.unique(d.x_train / (255 / 16))) <= set(range(17))  # the 0..16 counts, exactly
    assert np.bincount(d.y_train).min() >= 140 and np.bincount(d.y_test).min() >= 25
    assert d.checksum[:8] == source_digest({"source": "digits"})
    name = dataset_id({"source": "digits", "resolution": 8, "n_train": 1000, "n_val": 200, "n_test": 300,
                       "split_seed": 0}, d.checksum[:8])
    assert name == f"digits.{d.checksum[:8]}-r8-n1000.200.300-split0"
    assert parse_dataset_id(name)["source"] == "digits"


def test_digits_data_stage_on_one_channel(tmp_path):
    out = tmp_path / "d.h5"
    prepare_dataset(digits_dir(), out, source="digits", n_train=100, n_val=20, n_test=50, resolution=4,
                    split_seed=0, transform="o3_pixel", seed=0, digest=source_digest({"source": "digits"}))
    from symflow.data import load_dataset

    d = load_dataset(out)
    assert d["x_train"].shape == (100, 4, 4, 1) and d["y_test"].shape == (50, 10)
    assert d["attrs"]["source"] == "digits"


def test_digits_config_refusals_are_one_line():
    cfg = _load_configs([str(CONFIG), str(TINY)])
    cfg["data"].update(source="digits", resolution=16)
    with pytest.raises(ConfigError) as exc:
        validate(cfg)
    assert one_line(exc) == "data.resolution: 16 must divide the 8x8 images of source 'digits'"
    cfg["data"]["resolution"] = 8
    with pytest.raises(ConfigError) as exc:
        validate(cfg)
    assert "needs 3" in one_line(exc) and "so3_path" in one_line(exc)


# -- an image folder --------------------------------------------------------------------------------


def write_folder(root: Path, per_class: int = 6, split: bool = False, mode: str = "RGB",
                 classes: tuple[str, ...] | None = None) -> Path:
    """Real CIFAR-10 sample images (its test batch, in order) as PNGs, one subfolder per class (of
    `classes`, CIFAR-10's names; all ten by default)."""
    from PIL import Image

    cifar = load_cifar10(SAMPLE)
    parts = {"train": cifar.x_test[:500], "test": cifar.x_test[500:]} if split else {"": cifar.x_test}
    labels = {"train": cifar.y_test[:500], "test": cifar.y_test[500:]} if split else {"": cifar.y_test}
    for part, x in parts.items():
        for k, name in enumerate(cifar.label_names):
            if classes is not None and name not in classes:
                continue
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in np.flatnonzero(labels[part] == k)[:per_class]:
                Image.fromarray(x[i]).convert(mode).save(folder / f"{i:04d}.png")
    return root


def folder_config(root: Path, **data) -> dict:
    cfg = _load_configs([str(CONFIG), str(TINY)])
    cfg["data"].update({"source": "folder", "folder": str(root), "n_train": 30, "n_val": 10, "n_test": 20,
                        "test_holdout": 20, **data})
    cfg["experiments"]["fig2"]["m"] = 20
    cfg["experiments"]["fig3"]["m"] = 20
    cfg["experiments"]["fig4"]["m"] = [20]
    cfg["experiments"]["figS1"]["m"] = 20
    cfg["experiments"]["figS5"]["m"] = 20
    cfg["experiments"]["figS6"]["m"] = [20]
    cfg["kernels"]["block_size"] = {"default": 20, "GAP": 20, "LAP4": 20, "LAP8": 20}
    cfg["kernels"]["audit_size"] = 8
    cfg["figS2"]["images"] = 2
    return cfg


def test_a_folder_of_real_images(tmp_path):
    from symflow.data import load_dataset
    from symflow.jobs import Jobs

    root = write_folder(tmp_path / "imgs")
    assert not (root / "SHA256SUMS").exists()
    jobs = Jobs(validate(folder_config(root)))
    assert (root / "SHA256SUMS").exists()  # written on the first read
    assert jobs.dataset == f"folder.{jobs.digest}-r8-n30.10.20h20-split0"
    assert jobs.source_folder() == str(root)
    moved = shutil.move(root, tmp_path / "elsewhere")  # a location: the same identity
    assert source_digest({"source": "folder", "folder": moved}) == jobs.digest

    images = load_folder(moved, 8)
    assert images.x_train.shape == (60, 8, 8, 3) and images.x_test.shape == (0, 8, 8, 3)
    cifar = load_cifar10(SAMPLE)  # the PNGs hold CIFAR-10's pixels: an 8x8 block average of them
    first = np.flatnonzero(cifar.y_test == 0)[0]
    want = cifar.x_test[first].astype(np.float32).reshape(8, 4, 8, 4, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(images.x_train[0], want, rtol=0, atol=1e-4)
    assert images.label_names == cifar.label_names
    assert images.notes == ("image sizes: 32x32 (60), each resized to 8x8",)

    out = tmp_path / "f.h5"
    prepare_dataset(moved, out, source="folder", n_train=30, n_val=10, n_test=20, test_holdout=20, resolution=8,
                    split_seed=0, transform="o3_shared", seed=1, digest=jobs.digest)
    d = load_dataset(out)
    assert d["x_train"].shape == (30, 8, 8, 3) and d["x_test"].shape == (20, 8, 8, 3)


def test_a_folder_with_train_and_test(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=3, split=True, mode="L")
    images = load_folder(root, 4)
    assert images.x_train.shape == (30, 4, 4, 1) and images.x_test.shape == (30, 4, 4, 1)
    cfg = folder_config(root, n_train=20, n_val=5, n_test=10, test_holdout=0)
    assert validate(cfg)["data"]["source"] == "folder"


def test_a_folder_source_needs_its_folder(tmp_path):
    cfg = folder_config(tmp_path / "nowhere")
    with pytest.raises(ConfigError) as exc:
        validate(cfg)
    assert one_line(exc) == f"data.source folder: {tmp_path / 'nowhere'}: no such image folder"
    cfg["data"]["folder"] = None
    with pytest.raises(ConfigError) as exc:
        validate(cfg)
    assert one_line(exc).startswith("data.source folder: data.folder: not set")


def test_a_folder_needs_test_holdout_without_a_test_split(tmp_path):
    root = write_folder(tmp_path / "imgs")
    with pytest.raises(ConfigError) as exc:
        validate(folder_config(root, test_holdout=0))
    assert one_line(exc).startswith("data.test_holdout: 0 must equal data.n_test = 20")


# -- what a folder is refused for: one line each ------------------------------------------------------


def refused(root: Path, resolution: int = 8) -> str:
    with pytest.raises(DataError) as exc:
        load_folder(root, resolution)
    return one_line(exc)


def test_no_class_folders(tmp_path):
    (tmp_path / "imgs").mkdir()
    assert "no class folders" in refused(tmp_path / "imgs")


def test_an_empty_class(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=2)
    for f in (root / "cat").iterdir():
        f.unlink()
    assert refused(root) == f"{root / 'cat'}: empty class folder (no image files)"


def test_an_unreadable_file(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=2)
    (root / "dog" / "broken.png").write_bytes(b"not a png at all")
    text = refused(root)
    assert text.startswith(f"{root / 'dog' / 'broken.png'}: unreadable as an image (")


def test_a_file_that_is_not_an_image(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=2)
    (root / "dog" / "notes.txt").write_text("hello")
    assert refused(root).startswith(f"{root / 'dog' / 'notes.txt'}: not an image file")


def test_mixed_channel_counts(tmp_path):
    from PIL import Image

    root = write_folder(tmp_path / "imgs", per_class=2)
    path = sorted((root / "truck").iterdir())[0]
    Image.open(path).convert("L").save(path)
    text = refused(root)
    assert text.startswith(f"{path}: 1 channel(s), but ") and "has 3" in text


def test_a_folder_of_three_classes(tmp_path):
    """K = 3 class folders: a dataset with num_classes 3, one-hot targets of width 3 and
    networks with 3 outputs."""
    from symflow.architectures import ModelHP
    from symflow.data import dataset_classes, load_dataset
    from symflow.jobs import Jobs
    from symflow.sources import source_classes
    from symflow.train.model import build_model, init_key, init_params

    root = write_folder(tmp_path / "imgs", per_class=20, classes=("cat", "dog", "ship"))
    cfg = validate(folder_config(root))
    assert source_classes(cfg["data"]) == 3
    out = tmp_path / "f.h5"
    prepare_dataset(root, out, source="folder", n_train=30, n_val=10, n_test=20, test_holdout=20, resolution=8,
                    split_seed=0, transform="identity", seed=0, digest=Jobs(cfg).digest)
    d = load_dataset(out)
    assert d["attrs"]["num_classes"] == dataset_classes(d["attrs"]) == 3
    assert d["attrs"]["label_names"] == ["cat", "dog", "ship"]
    for part in ("train", "val", "test"):
        y, labels = d[f"y_{part}"], d[f"labels_{part}"]
        assert y.shape == (len(labels), 3) and (y.argmax(axis=1) == labels).all()
    assert set(d["labels_train"]) == {0, 1, 2}
    model = build_model("FCN", ModelHP(depth=2), 4, dataset_classes(d["attrs"]))
    params = init_params(model.init_fn, init_key(0), d["x_train"].shape[1:])
    assert np.asarray(model.apply_fn(params, d["x_train"][:5])).shape == (5, 3)


def test_a_folder_of_one_class(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=2, classes=("cat",))
    assert refused(root) == f"{root}: 1 class folder; a classifier needs at least 2"


def test_a_folder_that_changed_since_its_manifest(tmp_path):
    from PIL import Image

    root = write_folder(tmp_path / "imgs", per_class=2)
    load_folder(root, 8)
    Image.new("RGB", (32, 32), (10, 20, 30)).save(root / "cat" / "new.png")
    assert "new.png is not listed" in refused(root) and "delete SHA256SUMS" in refused(root)
    (root / "cat" / "new.png").unlink()
    first = sorted((root / "cat").iterdir())[0]
    Image.open(sorted((root / "dog").iterdir())[0]).save(first)  # same name, other content
    assert refused(root).startswith(f"{first}: changed since the folder's SHA256SUMS was written")


# -- what a folder is checked for: notes and warnings ----------------------------------------------


def test_unbalanced_classes_and_sizes_are_noted(tmp_path):
    from PIL import Image

    root = write_folder(tmp_path / "imgs", per_class=2)
    for i in range(3):  # more real images in one class, one of them at another size, not square
        src = sorted((root / "ship").iterdir())[i % 2]
        Image.open(src).resize((48, 40)).save(root / "ship" / f"extra{i}.png")
    notes = load_folder(root, 8).notes
    assert notes[0] == "warning: unbalanced classes: 'airplane' has 2 training images, 'ship' 5 (accuracy then " \
                       "rewards the large classes)"
    assert notes[1].startswith("image sizes: 32x32 (20), 48x40 (3), each resized to 8x8; non-square")


def test_duplicates_across_splits_are_noted(tmp_path, caplog):
    root = write_folder(tmp_path / "imgs", per_class=4)
    for k, cls in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
        for f in sorted(cls.iterdir()):
            shutil.copy(f, cls / f"copy-{f.name}")  # every image twice
    out = tmp_path / "f.h5"
    with caplog.at_level("WARNING"):
        prepare_dataset(root, out, source="folder", n_train=40, n_val=20, n_test=20, test_holdout=20, resolution=8,
                        split_seed=0, transform="identity", seed=0)
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "identical images in two splits (by content hash): train/val" in text and "train/test" in text
    from symflow.h5io import read_h5

    assert "identical images in two splits" in read_h5(out)[1]["source_notes"]


def test_the_digits_overlay_validates_and_leaves_fig_s1_out():
    from symflow.jobs import FigS2, Figure, Jobs

    jobs = Jobs(validate(_load_configs([str(CONFIG), str(CONFIG.parent / "digits.yaml")])))
    assert jobs.dataset == f"digits.{source_digest({'source': 'digits'})}-r8-n1000.200.300-split0"
    targets = {r.job for r in jobs.targets()}
    assert Figure("fig2") in targets and FigS2() in targets and Figure("figS1") not in targets
    assert not jobs.figS1_s_dists() and not any("so3_path" in t for t in jobs.figS2_transforms())
    assert "figS1" not in jobs.input_paths(next(j for j in targets if j.rule == "evaluate_claims"))


def test_symflow_audit_on_the_digits():
    """Thm 4.1 on one-channel real images from the command line: VEC is invariant to O(1)^d
    (a sign per pixel), at float precision; so3_path refuses one channel in one line."""
    def audit(*args):
        return subprocess.run([sys.executable, "-m", "symflow.cli", "audit", *args, "--source", "digits", "--n", "4",
                               "--backend", "engine"], capture_output=True, text=True)

    ok = audit("VEC", "o3_pixel")
    assert ok.returncode == 0 and "4 digits source images at 8x8" in ok.stdout and "verdict:  agrees" in ok.stdout
    refused = audit("GAP", "so3_path-t0.5")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "so3_path needs 3 channels" in refused.stderr
