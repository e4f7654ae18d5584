"""ImageNet data: finding the source, MD5 checks, conversion into shards, labels, subsets, augmentation.

Real images: an ImageNet-layout folder built from the shipped CIFAR-10 sample (tests/imagenet_layout.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from imagenet_layout import CLASSES, build_layout, write_archives
from symflow.imagenet import data as D


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    return build_layout(tmp_path_factory.mktemp("imagenet"))


@pytest.fixture(scope="module")
def shards(layout, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    D.convert(layout, out, shard_size=40, workers=2)
    return D.Shards(out)


def test_folder_conversion_labels_follow_sorted_class_names(shards, layout):
    assert shards.classes == sorted(CLASSES.values())
    assert shards.count("train") == 4 * 24 and shards.count("val") == 4 * 6
    assert len(shards.manifest["splits"]["train"]["shards"]) == 3  # 96 records, 40 a shard
    for split in ("train", "val"):
        src = shards.source(split)
        for i in range(0, shards.count(split), 7):
            label, key, data = D.decode_record(src[i])
            assert label == shards.labels(split)[i] and key == shards.keys(split)[i]
            cls = shards.classes[label]
            assert data == (layout / split / cls / key).read_bytes()  # the original bytes, unchanged


def test_archives_give_the_same_images_labels_and_subsets(layout, shards, tmp_path):
    md5s = write_archives(layout, tmp_path / "archives")
    manifest = D.convert(tmp_path / "archives", tmp_path / "out", md5s=md5s, shard_size=1000)
    got = D.Shards(tmp_path / "out")
    assert manifest["source"]["kind"] == "archives" and got.classes == shards.classes
    assert got.manifest["class_names"][0] == "airplane, CIFAR-10 class"
    for split in ("train", "val"):
        a = dict(zip(got.keys(split), got.labels(split)))
        b = dict(zip(shards.keys(split), shards.labels(split)))
        assert a == b  # the devkit's ILSVRC2012_IDs are not in name order; labels still are
    # record order differs (the archive is not sorted), the subsets do not
    ka = got.keys("train")[D.subset_indices(got, 30, 0)]
    kb = shards.keys("train")[D.subset_indices(shards, 30, 0)]
    assert list(ka) == list(kb)


def test_archive_with_the_wrong_md5_is_refused_with_its_name(layout, tmp_path):
    write_archives(layout, tmp_path)
    with pytest.raises(D.ImageNetError, match=r"ILSVRC2012_img_train.tar: MD5 [0-9a-f]{32} is not the published "
                                               r"1d675b47d978889d74fa0da5fadfb00e.*download it again"):
        D.convert(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_missing_sources_say_what_and_where(tmp_path):
    with pytest.raises(D.ImageNetError, match=r"does not exist.*ILSVRC2012_img_train.tar.*train/<wnid>/\*.JPEG"):
        D.find_source(tmp_path / "nowhere")
    with pytest.raises(D.ImageNetError, match=r"no ImageNet in .*put ILSVRC2012_img_train.tar"):
        D.find_source(tmp_path)
    (tmp_path / "ILSVRC2012_img_val.tar").write_bytes(b"")
    with pytest.raises(D.ImageNetError, match=r"missing ILSVRC2012_img_train.tar, ILSVRC2012_devkit_t12.tar.gz"):
        D.find_source(tmp_path)
    (tmp_path / "train" / "n01").mkdir(parents=True)
    with pytest.raises(D.ImageNetError, match=r"val: missing; an extracted ImageNet needs .*/val/<wnid>/\*.JPEG"):
        D.find_source(tmp_path)
    with pytest.raises(D.ImageNetError, match=r"manifest.json: missing; .* not a finished ImageNet conversion"):
        D.Shards(tmp_path)


def test_val_class_without_training_folder_is_named(layout, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(layout, root)
    (root / "val" / "dog").mkdir()
    with pytest.raises(D.ImageNetError, match=r"val/dog: class 'dog' has no training folder"):
        D.convert(root, tmp_path / "out")


def test_subset_sizes_are_the_papers():
    sizes = D.subset_sizes()
    assert sizes[0] == 1_281_167 and sizes[-1] == 28_310 and len(sizes) == 12
    assert all(a > b for a, b in zip(sizes, sizes[1:]))


def test_subsets_are_nested_prefixes_of_one_permutation(shards):
    order = D.subset_order(shards.keys("train"), 0)
    assert sorted(order) == list(range(shards.count("train")))
    sizes = D.subset_sizes(shards.count("train"), 6)
    subsets = [set(D.subset_indices(shards, m, 0)) for m in sizes]
    assert all(small < big for big, small in zip(subsets, subsets[1:]))
    assert list(D.subset_indices(shards, 20, 1)) != list(D.subset_indices(shards, 20, 0))
    with pytest.raises(ValueError, match="m = 97 must lie in 1..96"):
        D.subset_indices(shards, 97, 0)


def test_train_batches_are_deterministic_and_resume_mid_stream(shards):
    idx = D.subset_indices(shards, 32, 0)
    it, total = D.train_batches(shards, idx, batch_size=8, epochs=2, seed=3, image_size=32, threads=2)
    batches = list(it)
    assert total == 8 and len(batches) == 8
    assert batches[0]["image"].shape == (8, 32, 32, 3) and batches[0]["image"].dtype == np.uint8
    first = np.concatenate([b["label"] for b in batches[:4]])
    assert sorted(first) == sorted(shards.labels("train")[idx])  # one epoch = the subset once
    again, _ = D.train_batches(shards, idx, batch_size=8, epochs=2, seed=3, image_size=32, start_step=5, threads=1)
    for a, b in zip(batches[5:], again):
        np.testing.assert_array_equal(a["image"], b["image"])
    other, _ = D.train_batches(shards, idx, batch_size=8, epochs=2, seed=4, image_size=32)
    assert not np.array_equal(next(iter(other))["image"], batches[0]["image"])


def test_eval_batches_pad_the_last_batch(shards):
    batches = list(D.eval_batches(shards, batch_size=10, image_size=32))
    assert [int(b["mask"].sum()) for b in batches] == [10, 10, 4]
    np.testing.assert_array_equal(np.concatenate([b["label"][b["mask"]] for b in batches]), shards.labels("val"))


def test_random_crop_box_respects_area_and_ratio():
    rng = np.random.default_rng(0)
    boxes = [D.random_crop_box(rng, 500, 375) for _ in range(300)]
    found = [b for b in boxes if b is not None]
    assert len(found) > 250
    for left, top, right, bottom in found:
        w, h = right - left, bottom - top
        assert 0 <= left and right <= 500 and 0 <= top and bottom <= 375
        assert w * h >= 0.1 * 500 * 375 - 1
        assert 3 / 4 - 0.02 <= w / h <= 4 / 3 + 0.02


def test_a_source_with_another_number_of_training_images_is_refused(layout, tmp_path):
    with pytest.raises(D.ImageNetError, match=r"96 training images, not the 1281167 the settings expect"):
        D.convert(layout, tmp_path / "out", train_images=1_281_167)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_worker_processes_do_not_change_the_batches(shards):
    idx = D.subset_indices(shards, 16, 0)
    one, _ = D.train_batches(shards, idx, batch_size=8, epochs=1, seed=5, image_size=32, workers=0)
    two, _ = D.train_batches(shards, idx, batch_size=8, epochs=1, seed=5, image_size=32, workers=2)
    same = [np.array_equal(a["image"], b["image"]) and np.array_equal(a["label"], b["label"]) for a, b in zip(one, two)]
    assert same == [True, True]
