"""The CIFAR-10 loader and the data stage, on the shipped real sample."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest

from symflow.data import (
    DataError,
    dataset_classes,
    downsample,
    extract_archive,
    load_cifar10,
    load_dataset,
    prepare_dataset,
    prepare_splits,
    sha256_file,
)
from symflow.h5io import CorruptArtifactError, read_h5


@pytest.fixture(scope="module")
def cifar(sample_dir):
    return load_cifar10(sample_dir)


def test_loader_shapes_dtypes_and_labels(cifar):
    assert cifar.x_train.shape == (4068, 32, 32, 3) and cifar.x_train.dtype == np.uint8
    assert cifar.x_test.shape == (1017, 32, 32, 3)
    assert cifar.y_train.dtype == np.int64 and cifar.y_train.shape == (4068,)
    assert list(cifar.y_train[:5]) == [6, 9, 9, 4, 1]  # data_batch_1's first labels
    counts = np.bincount(cifar.y_train, minlength=10)
    assert counts.sum() == 4068 and counts.min() >= 4 * 83 and counts.max() <= 4 * 120
    assert np.bincount(cifar.y_test, minlength=10).min() >= 83
    assert cifar.label_names[6] == "frog" and len(cifar.label_names) == 10


def test_loader_reads_channel_major_rows(sample_dir, cifar):
    """Row layout: 1024 red, 1024 green, 1024 blue values, rows of 32."""
    with open(sample_dir / "data_batch_1", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")[b"data"]
    assert cifar.x_train[0, 0, 1, 0] == raw[0, 1]  # red, row 0, column 1
    assert cifar.x_train[0, 2, 0, 1] == raw[0, 1024 + 64]  # green, row 2, column 0
    assert cifar.x_train[0, 31, 31, 2] == raw[0, 3071]  # blue, last pixel


def _copy(sample_dir, tmp_path):
    dest = tmp_path / "cifar"
    shutil.copytree(sample_dir, dest)
    for f in dest.iterdir():
        f.chmod(0o644)
    return dest


def test_damaged_batch_is_refused_with_its_name(sample_dir, tmp_path):
    folder = _copy(sample_dir, tmp_path)
    data = bytearray((folder / "data_batch_2").read_bytes())
    data[5000] ^= 0xFF
    (folder / "data_batch_2").write_bytes(bytes(data))
    with pytest.raises(DataError, match="data_batch_2.*SHA-256"):
        load_cifar10(folder)


def test_wrong_format_is_refused_with_its_name(sample_dir, tmp_path):
    folder = _copy(sample_dir, tmp_path)
    bad = pickle.dumps({b"data": np.zeros((3, 10), np.uint8), b"labels": [0, 1, 2]})
    (folder / "test_batch").write_bytes(bad)
    sums = (folder / "SHA256SUMS").read_text().replace(
        sha256_file(sample_dir / "test_batch"), sha256_file(folder / "test_batch")
    )
    (folder / "SHA256SUMS").write_text(sums)
    with pytest.raises(DataError, match="test_batch.*uint8 \\(N, 3072\\)"):
        load_cifar10(folder)


def test_missing_sums_and_folder(sample_dir, tmp_path):
    folder = _copy(sample_dir, tmp_path)
    (folder / "SHA256SUMS").unlink()
    with pytest.raises(DataError, match="SHA256SUMS"):
        load_cifar10(folder)
    with pytest.raises(DataError, match="no such CIFAR-10 folder"):
        load_cifar10(tmp_path / "nowhere")


def test_archive_md5_is_checked(tmp_path):
    fake = tmp_path / "cifar-10-python.tar.gz"
    fake.write_bytes(b"not the archive")
    with pytest.raises(DataError, match="MD5"):
        extract_archive(fake, tmp_path)
    with pytest.raises(DataError, match="put it at this path"):
        extract_archive(tmp_path / "absent.tar.gz", tmp_path)


def test_downsample_is_block_average():
    x = np.arange(2 * 4 * 4 * 3, dtype=float).reshape(2, 4, 4, 3)
    y = downsample(x, 2)
    assert y.shape == (2, 2, 2, 3)
    np.testing.assert_allclose(y[0, 0, 0], x[0, :2, :2].mean(axis=(0, 1)))
    np.testing.assert_allclose(downsample(x, 4), x)
    with pytest.raises(ValueError, match="divide"):
        downsample(x, 3)


def test_splits_are_disjoint_standardised_and_deterministic(cifar):
    s = prepare_splits(cifar, 300, 100, 50, resolution=32, split_seed=3)
    assert len(set(s.train_index) & set(s.val_index)) == 0
    assert s.x_train.shape == (300, 32, 32, 3) and s.x_test.shape == (50, 32, 32, 3)
    np.testing.assert_allclose(s.x_train.mean(axis=(0, 1, 2)), 0, atol=1e-10)
    np.testing.assert_allclose(s.x_train.std(axis=(0, 1, 2)), 1, atol=1e-10)
    again = prepare_splits(cifar, 300, 100, 50, resolution=32, split_seed=3)
    np.testing.assert_array_equal(s.train_index, again.train_index)
    other = prepare_splits(cifar, 300, 100, 50, resolution=32, split_seed=4)
    assert not np.array_equal(s.train_index, other.train_index)
    np.testing.assert_array_equal(s.test_index, np.arange(50))
    with pytest.raises(ValueError, match="exceeds"):
        prepare_splits(cifar, 4000, 100, 50, resolution=8, split_seed=0)


def test_prepare_dataset_file(sample_dir, tmp_path):
    out = tmp_path / "d.h5"
    kw = dict(source="sample", n_train=60, n_val=20, n_test=30, resolution=8, split_seed=0)
    prepare_dataset(sample_dir, out, transform="o3_pixel", seed=2, **kw)
    d = load_dataset(out)
    assert d["x_train"].shape == (60, 8, 8, 3) and d["x_train"].dtype == np.float32
    assert d["y_train"].shape == (60, 10) and np.all(d["y_train"].sum(1) == 1)
    assert d["x_val"].shape == (20, 8, 8, 3) and d["x_test"].shape == (30, 8, 8, 3)
    a = d["attrs"]
    for key in ("source", "source_checksum", "group", "seed", "t", "resolution", "n_train", "versions"):
        assert key in a
    assert a["group"] == "o3_pixel" and a["seed"] == 2 and a["resolution"] == 8
    assert a["versions"]["numpy"] == np.__version__
    assert "num_classes" not in a and dataset_classes(a) == 10  # CIFAR-10's files keep their attributes
    # identity data, rotated per pixel, equal the o3_pixel file (same split, same seed)
    prepare_dataset(sample_dir, tmp_path / "i.h5", transform="identity", seed=2, **kw)
    from symflow.groups import transform_images

    ident = load_dataset(tmp_path / "i.h5")
    np.testing.assert_allclose(transform_images("o3_pixel", 2, ident["x_test"]), d["x_test"], atol=1e-5)
    # same inputs -> same bytes
    prepare_dataset(sample_dir, tmp_path / "d2.h5", transform="o3_pixel", seed=2, **kw)
    assert (tmp_path / "d2.h5").read_bytes() == out.read_bytes()
    assert not list(tmp_path.glob(".*.tmp*"))  # no temporary files left behind


def test_flip_dataset_appends_mirror_images_before_tau(sample_dir, tmp_path):
    """Fig. 4's flip option: 2n training rows, the first n exactly the unflipped dataset's,
    row n + i the mirror of row i; tau acts after the flip (o3_pixel does not commute with it)."""
    from symflow.groups import transform_images

    kw = dict(source="sample", n_train=30, n_val=10, n_test=10, resolution=8, split_seed=0)
    prepare_dataset(sample_dir, tmp_path / "i.h5", transform="identity", seed=0, **kw)
    prepare_dataset(sample_dir, tmp_path / "if.h5", transform="identity", seed=0, flip=True, **kw)
    plain, flipped = load_dataset(tmp_path / "i.h5"), load_dataset(tmp_path / "if.h5")
    assert flipped["x_train"].shape == (60, 8, 8, 3)
    np.testing.assert_array_equal(flipped["x_train"][:30], plain["x_train"])
    np.testing.assert_array_equal(flipped["x_train"][30:], plain["x_train"][:, :, ::-1, :])
    np.testing.assert_array_equal(flipped["labels_train"], np.tile(plain["labels_train"], 2))
    for part in ("val", "test"):
        np.testing.assert_array_equal(flipped[f"x_{part}"], plain[f"x_{part}"])
    assert flipped["attrs"]["flip"] == 1 and plain["attrs"]["flip"] == 0
    assert not np.allclose(flipped["x_train"][30:], flipped["x_train"][:30])  # images are not symmetric
    prepare_dataset(sample_dir, tmp_path / "pf.h5", transform="o3_pixel", seed=1, flip=True, **kw)
    rotated = load_dataset(tmp_path / "pf.h5")["x_train"]
    np.testing.assert_allclose(rotated, transform_images("o3_pixel", 1, flipped["x_train"]), atol=1e-5)
    flip_after = transform_images("o3_pixel", 1, plain["x_train"])[:, :, ::-1, :]
    assert not np.allclose(rotated[30:], flip_after, atol=1e-3)


def test_corrupt_dataset_file_is_detected(sample_dir, tmp_path):
    out = tmp_path / "d.h5"
    prepare_dataset(sample_dir, out, source="sample", n_train=20, n_val=5, n_test=5, resolution=4,
                    split_seed=0, transform="perm", seed=0)
    raw = bytearray(out.read_bytes())
    # flip a byte inside the x_train dataset's values: find them and damage one
    arrays, _ = read_h5(out)
    needle = arrays["x_train"].tobytes()[:16]
    pos = bytes(raw).find(needle)
    assert pos > 0
    raw[pos + 3] ^= 0x10
    out.write_bytes(bytes(raw))
    with pytest.raises(CorruptArtifactError, match="d.h5.*checksum"):
        load_dataset(out)
    out.write_bytes(bytes(raw[: len(raw) // 2]))  # truncated
    with pytest.raises(CorruptArtifactError, match="d.h5"):
        load_dataset(out)


def test_held_out_training_images_join_the_test_split(sample_dir):
    """data.test_holdout: the test split is the test batch's first n_test - h images, then h
    training-pool images that are neither in train nor in val; the training subsets (the first
    m of train) do not move with n_train or the holdout."""
    from symflow.data import load_cifar10, prepare_splits

    data = load_cifar10(sample_dir)
    held = prepare_splits(data, 300, 50, 120, 8, 0, test_holdout=100)
    plain = prepare_splits(data, 600, 50, 20, 8, 0)
    assert held.x_test.shape == (120, 8, 8, 3) and len(held.y_test) == 120
    assert np.array_equal(held.test_index[:20], np.arange(20))
    pool_rows = held.test_index[20:]
    assert not set(pool_rows) & (set(held.train_index) | set(held.val_index))
    assert np.array_equal(held.y_test[20:], data.y_train[pool_rows])
    assert np.array_equal(held.train_index[:300], plain.train_index[:300])
    with pytest.raises(ValueError, match="exceeds the"):
        prepare_splits(data, len(data.y_train) - 50, 0, 120, 8, 0, test_holdout=100)
