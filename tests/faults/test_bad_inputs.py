"""Bad input: a CIFAR-10 folder with a damaged, substituted, unlisted or malformed file is
refused with the file's name, by the loader and through the workflow's data rule.

Already in tests/test_data.py (not repeated here): a bit-flipped batch against its
SHA256SUMS, a pickle of the wrong shape with a matching sum, a missing SHA256SUMS or
folder, and the official archive's MD5."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from faults import workflow_runs as W
from symflow.data import DataError, load_cifar10, sha256_file


def _copy(sample_dir: Path, dest: Path) -> Path:
    shutil.copytree(sample_dir, dest)
    for f in dest.iterdir():
        f.chmod(0o644)
    return dest


def _replace(folder: Path, name: str, payload: bytes, update_sums: bool = True) -> None:
    """Put `payload` at folder/name (with its SHA256SUMS entry updated: a format fault, not a checksum one)."""
    old = sha256_file(folder / name)
    (folder / name).write_bytes(payload)
    if update_sums:
        sums = folder / "SHA256SUMS"
        sums.write_text(sums.read_text().replace(old, sha256_file(folder / name)))


def _truncated(folder, name):
    _replace(folder, name, (folder / name).read_bytes()[:5000])


def _empty(folder, name):
    _replace(folder, name, b"")


def _not_a_pickle(folder, name):
    _replace(folder, name, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)


def _labels_out_of_range(folder, name):
    with open(folder / name, "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    batch[b"labels"] = [11] * len(batch[b"labels"])
    _replace(folder, name, pickle.dumps(batch))


def _substituted(folder, name):  # another batch's (valid) bytes under this name: its sum is wrong
    other = "data_batch_1" if name != "data_batch_1" else "data_batch_2"
    _replace(folder, name, (folder / other).read_bytes(), update_sums=False)


def _unlisted(folder, name):
    sums = folder / "SHA256SUMS"
    sums.write_text("".join(line + "\n" for line in sums.read_text().splitlines() if not line.endswith(name)))


def _bad_meta(folder, name):
    _replace(folder, "batches.meta", pickle.dumps({b"something": 1}))


def _malformed_sums(folder, name):
    sums = folder / "SHA256SUMS"
    sums.write_text(sums.read_text().replace(f"  {name}", f" {name} extra"))


BAD = [
    (_truncated, "data_batch_3", "data_batch_3: not a CIFAR-10 python-format batch"),
    (_empty, "test_batch", "test_batch: not a CIFAR-10 python-format batch"),
    (_not_a_pickle, "data_batch_1", "data_batch_1: not a CIFAR-10 python-format batch"),
    (_labels_out_of_range, "data_batch_2", "data_batch_2: labels do not match the images or lie outside 0..9"),
    (_substituted, "data_batch_4", "data_batch_4: SHA-256 .* does not match SHA256SUMS"),
    (_unlisted, "data_batch_2", "data_batch_2: not listed in its folder's SHA256SUMS"),
    (_bad_meta, "batches.meta", "batches.meta: not a CIFAR-10 batches.meta"),
    (_malformed_sums, "data_batch_1", "SHA256SUMS: line 1 is not"),
]


@pytest.mark.parametrize("damage, name, message", BAD, ids=[b[0].__name__.strip("_") for b in BAD])
def test_a_bad_cifar_file_is_refused_with_its_name(sample_dir, tmp_path, damage, name, message):
    folder = _copy(sample_dir, tmp_path / "cifar")
    damage(folder, name)
    with pytest.raises(DataError, match=message) as info:
        load_cifar10(folder)
    assert str(folder) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.slow
def test_the_data_rule_refuses_a_damaged_batch_with_its_name(sample_dir, tmp_path):
    """Through snakemake: the job fails, its log (shown) names the file; no data file is written."""
    folder = _copy(sample_dir, tmp_path / "cifar")
    raw = bytearray((folder / "data_batch_3").read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit
    (folder / "data_batch_3").write_bytes(bytes(raw))
    work = W.new_workdir(tmp_path / "wf")
    (work / "override.yaml").write_text(W.OVERRIDE + f"data: {{n_test: 40, sample_dir: '{folder}'}}\n")
    proc = W.snakemake(work, "--show-failed-logs", targets=[W.DATA], check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{folder}/data_batch_3: SHA-256" in out and "does not match SHA256SUMS" in out, out[-3000:]
    assert not (work / W.DATA).exists() and not W.temporaries(work)
    np.testing.assert_equal(W.final_files(work), [])
