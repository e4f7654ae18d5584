"""Untrusted data cannot run code (issue 29): CIFAR-10 batches are read with symflow.safe_pickle,
which admits only plain data and refuses anything else before any of it is called."""

from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest

from symflow.data import DataError, load_cifar10, sha256_file
from symflow.safe_pickle import UnsafePickleError, load_plain


class _Command:
    """Unpickling this runs a shell command (what a malicious batch would carry)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _batch(n: int = 3, **extra) -> dict:
    rng = np.random.default_rng(0)
    return {b"batch_label": b"x", b"labels": [1, 2, 3][:n], b"data": rng.integers(0, 255, (n, 3072), np.uint8),
            b"filenames": [b"a.png"] * n, **extra}  # fmt: skip


def _folder_with(sample_dir, tmp_path, name: str, payload: bytes):
    folder = tmp_path / "cifar"
    shutil.copytree(sample_dir, folder)
    for f in folder.iterdir():
        f.chmod(0o644)
    (folder / name).write_bytes(payload)
    sums = (folder / "SHA256SUMS").read_text().replace(sha256_file(sample_dir / name), sha256_file(folder / name))
    (folder / "SHA256SUMS").write_text(sums)  # its true checksum: the folder's sums prove nothing
    return folder


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("name", ["data_batch_1", "test_batch", "batches.meta"])
def test_a_batch_that_would_run_a_command_is_refused_and_nothing_runs(sample_dir, tmp_path, name, protocol):
    marker = tmp_path / "ran"
    payload = pickle.dumps(_batch(evil=_Command(f"touch {marker}")), protocol=protocol)
    folder = _folder_with(sample_dir, tmp_path, name, payload)
    with pytest.raises(DataError) as caught:
        load_cifar10(folder)
    message = str(caught.value)
    assert "\n" not in message and name in message and "posix.system" in message and "refused" in message
    assert not marker.exists(), "the batch's command ran"
    pickle.loads(payload)  # the payload is live: plain pickle runs it
    assert marker.exists()


def test_a_stack_global_not_spelled_out_just_before_it_is_refused_unread(tmp_path):
    """STACK_GLOBAL takes its names from the stack: "posix", "numpy", POP, "system" imports
    posix.system, though the last two strings are "numpy" and "system". Names that are not
    the two string opcodes just before it are refused before anything runs."""
    marker = tmp_path / "ran"
    command = f"touch {marker}".encode()

    def text(s: bytes) -> bytes:
        return b"\x8c" + bytes([len(s)]) + s  # SHORT_BINUNICODE

    ops = b"\x80\x04" + text(b"posix") + text(b"numpy") + b"0" + text(b"system") + b"\x93" + text(command) + b"\x85R."
    with pytest.raises(UnsafePickleError, match="not spelled out"):
        load_plain(ops, "a test pickle")
    assert not marker.exists()
    pickle.loads(ops)  # the pickle is live: plain pickle runs posix.system
    assert marker.exists()


def test_plain_data_of_every_protocol_and_numpys_old_names_load():
    batch = _batch(scalar=np.float32(2.5), nested=(1, [2.0, None, True], {"k": b"v"}))
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        got = load_plain(pickle.dumps(batch, protocol=protocol), "a test batch")
        assert np.array_equal(got[b"data"], batch[b"data"]) and got["nested"] == batch["nested"]
    # the official archive was pickled by Python 2 and numpy 1: numpy.core, not numpy._core
    old = pickle.dumps(batch, protocol=2).replace(b"numpy._core.", b"numpy.core.")
    assert b"numpy.core.multiarray\n_reconstruct" in old
    assert np.array_equal(load_plain(old, "a test batch")[b"data"], batch[b"data"])


@pytest.mark.parametrize(
    "value, asked",
    [(np.array([1, "a"], dtype=object), "dtype object"),
     (np.zeros(2, dtype=[("a", "i4"), ("b", "f4")]), "dtype"),
     ({b"x": {1, 2}}, "set"),
     (_batch(when=np.datetime64("2020-01-01")), "datetime64")],
)  # fmt: skip
def test_objects_a_batch_does_not_hold_are_refused(value, asked):
    for protocol in (2, 5):
        with pytest.raises(UnsafePickleError, match=f"refused.*{asked}"):
            load_plain(pickle.dumps(value, protocol=protocol), "a test batch")


def test_not_a_pickle_is_one_line():
    for data in (b"\x00\x01 not a pickle at all", b"", pickle.dumps(_batch())[:-100]):
        with pytest.raises(pickle.UnpicklingError, match="^not a pickle: ") as caught:
            load_plain(data, "a test batch")
        assert "\n" not in str(caught.value)


def test_imagenet_decodes_jpeg_and_png_only(tmp_path):
    """The ImageNet reader hands a user's image bytes to PIL's JPEG and PNG decoders only (EPS,
    for one, would run Ghostscript); anything else is refused unread."""
    import io

    from PIL import Image, UnidentifiedImageError

    from symflow.imagenet.data import decode_image

    pixels = np.random.default_rng(0).integers(0, 255, (8, 8, 3), np.uint8)
    for fmt in ("JPEG", "PNG", "BMP", "EPS"):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format=fmt)
        if fmt in ("JPEG", "PNG"):
            assert decode_image(buf.getvalue()).size == (8, 8)
        else:
            Image.open(io.BytesIO(buf.getvalue()))  # PIL alone would open it
            with pytest.raises(UnidentifiedImageError):
                decode_image(buf.getvalue())


def test_an_imagenet_index_holding_a_pickle_is_refused(tmp_path):
    import json

    from symflow.imagenet import data as D

    (tmp_path / D.MANIFEST).write_text(json.dumps({"format": D.FORMAT}))
    np.savez(tmp_path / D.INDEX, train_keys=np.array([_Command("true")], dtype=object))
    with pytest.raises(D.ImageNetError, match="not an index of plain arrays.*allow_pickle=False"):
        D.Shards(tmp_path)
