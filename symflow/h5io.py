"""HDF5 artifacts: written atomically, stamped with a content checksum, verified on read.

Every artifact symflow writes goes through :func:`write_h5`:

* the file is written under a temporary name in the target folder and renamed
  into place only when complete, so a job killed at any moment never leaves a
  partial file at the final path;
* the attribute ``content_sha256`` holds a SHA-256 over every dataset (name,
  dtype, shape and bytes), and :func:`read_h5` recomputes it, so a truncated or
  bit-flipped file fails with an error that names it instead of being reused;
* no timestamps are stored, so the same arrays and attributes give the same bytes;
* the file gets the mode the process's umask gives a new file (0644 under umask 022,
  0664 under 002), as any other program's output would: the temporary file is created
  with mode 0666 and the umask applied by the system (not tempfile's private 0600).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from symflow.faults import armed, fault_point

CHECKSUM_ATTR = "content_sha256"


class CorruptArtifactError(RuntimeError):
    """An artifact that cannot be read, or whose content does not match its checksum."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it to `path` if the block succeeds.

    The temporary file exists (empty) when the block starts, created with the umask's mode;
    writers that open it for writing keep that mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:  # a fresh name, as tempfile.mkstemp picks one, but mode 0666 & ~umask
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:
            continue
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        fault_point("atomic.rename", str(path))
        os.replace(tmp, path)
        fault_point("atomic.renamed", str(path))
    finally:
        if tmp.exists():
            tmp.unlink()


def write_csv(path: str | os.PathLike, rows: list[Mapping[str, Any]], columns) -> None:
    """Rows (dicts) as a CSV with these columns, written atomically."""
    import csv

    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)


def content_checksum(arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _attr_value(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)) and not (
        isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value)
    ):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return "null"
    return value


def write_h5(path: str | os.PathLike, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> None:
    """Write `arrays` as datasets and `attrs` as root attributes, atomically, with a checksum."""
    import h5py

    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as f:
            for name in sorted(arrays):
                f.create_dataset(name, data=arrays[name], track_times=False)
                if armed():  # fault injection (tests): the kill finds this much on disk
                    f.flush()
                    fault_point("h5.dataset", str(path))
            for key in sorted(attrs):
                f.attrs[key] = _attr_value(attrs[key])
            f.attrs[CHECKSUM_ATTR] = content_checksum(arrays)


def read_h5(
    path: str | os.PathLike, names: list[str] | None = None, verify: bool = True
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read datasets (all, or `names`) and attributes; verify the checksum over all datasets."""
    import h5py

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such artifact")
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _decode(v) for k, v in f.attrs.items()}
            every = {k: f[k][()] for k in f.keys()}
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CorruptArtifactError(
            f"{path}: cannot be read as HDF5 ({exc}); delete it and rerun the workflow "
            f"(or run `symflow verify-cache`)"
        ) from exc
    if verify:
        want = attrs.get(CHECKSUM_ATTR)
        if want is None:
            raise CorruptArtifactError(f"{path}: has no {CHECKSUM_ATTR} attribute (not written by symflow?)")
        got = content_checksum(every)
        if got != want:
            raise CorruptArtifactError(
                f"{path}: content checksum mismatch (stored {want[:12]}..., computed {got[:12]}...); "
                f"the file is corrupt: delete it and rerun the workflow (or run `symflow verify-cache`)"
            )
    if names is not None:
        missing = [n for n in names if n not in every]
        if missing:
            raise KeyError(f"{path}: no dataset(s) {missing}; has {sorted(every)}")
        every = {n: every[n] for n in names}
    return every, attrs


def read_attrs(path: str | os.PathLike) -> dict[str, Any]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {k: _decode(v) for k, v in f.attrs.items()}
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CorruptArtifactError(f"{path}: cannot be read as HDF5 ({exc})") from exc


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def verify_h5(path: str | os.PathLike) -> None:
    """Raise CorruptArtifactError if `path` is unreadable or fails its checksum."""
    read_h5(path, verify=True)


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine symflow's numbers (for provenance attributes),
    symflow's git commit (`symflow_commit`, symflow.provenance), and, where the process has
    imported JAX, the device it computes on (`jax_device`, e.g. "cpu" or "gpu: NVIDIA H200"):
    float32 results differ between them in the last bits."""
    import sys
    from importlib import metadata

    out = {}
    for pkg in ("symflow", "numpy", "h5py", "jax", "jaxlib", "neural-tangents", "flax", "optax"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    from symflow.provenance import commit

    out["symflow_commit"] = commit()  # where symflow runs from a git checkout (symflow.provenance)
    if "jax" in sys.modules:
        out["jax_device"] = jax_device()
    return out


def jax_device() -> str:
    """JAX's default backend, and the kind of its first device where it is not the CPU."""
    import jax

    backend = jax.default_backend()
    return backend if backend == "cpu" else f"{backend}: {jax.devices()[0].device_kind}"
