"""Infinite-width NNGP and NTK Gram matrices as cached B x B blocks.

The training order is the data file's ``x_train`` order; the training set of size m
is its first m examples. The examples are cut into blocks of B (one B per
architecture, from the config). A block is one job and one HDF5 file:

    train (i, j), i <= j      rows of x_train block i, columns of x_train block j
    val   (i, j)              rows of x_val block i (the last may be partial), x_train block j
    test  (i, j)              the same with x_test

For m >= B, B must divide m, and the blocks of m are train (i, j) with
0 <= i <= j < m/B and val/test (i, j) for every row block i and j < m/B. So raising
m only adds blocks. An m < B is cut from the first block(s) (train 0-0, and column
block 0 of val and test).

:func:`compute_block` writes one block (datasets ``nngp`` and ``ntk``, and its
provenance as attributes), :func:`compute_blocks` several of one data file in turn in one
process (a pack: one start-up and compilation, the same bytes); :func:`assemble` reads a set of blocks back into the
(m, m) train-train matrix (symmetric fill from the i <= j blocks) and the
(n_val, m), (n_test, m) val-train and test-train matrices, placing each block by
the rows and columns it records, and checking that they come from one data file,
one architecture and one model.

Backends: ``nt`` (neural-tangents' stax kernel_fn, streamed with ``nt.batch``) and
``engine`` (symflow.engine, a faster implementation of the same recursions). The
engine is imported lazily; where it is missing or cannot compute an architecture (its
registration names no ``engine_recursion``: a plug-in, unless it names one), the
block is computed with nt and the job's log says so (the file's ``backend_used``
attribute says which one computed it).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

SPLITS = ("train", "val", "test")
BACKENDS = ("nt", "engine")
DTYPES = ("float32", "float64")
KERNELS = ("nngp", "ntk")

RowsFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_log = logging.getLogger("symflow.kernels")


# -- block index math -----------------------------------------------------------


def block_size_for(block_sizes: Mapping[str, int], arch: str) -> int:
    """B for an architecture: its own entry of the config's kernels.block_size, or 'default'."""
    return int(block_sizes.get(arch, block_sizes["default"]))


def check_m(m: int, block_size: int) -> None:
    """B must divide m when m >= B (a smaller m is cut from the first block)."""
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    if m >= block_size and m % block_size:
        raise ValueError(f"m = {m} is not a multiple of the block size {block_size}")


def column_blocks(m: int, block_size: int) -> int:
    """How many column (training) blocks the first m examples need."""
    check_m(m, block_size)
    return max(1, m // block_size)


def row_blocks(n_rows: int, block_size: int) -> int:
    """How many row blocks a split of n_rows examples has (the last may be partial)."""
    return max(1, math.ceil(n_rows / block_size))


def blocks_for(m: int, block_size: int, n_val: int, n_test: int) -> list[tuple[str, int, int]]:
    """Every (split, i, j) that the kernel regression on the first m examples reads."""
    nb = column_blocks(m, block_size)
    out = [("train", i, j) for i in range(nb) for j in range(i, nb)]
    for split, n in (("val", n_val), ("test", n_test)):
        out += [(split, i, j) for i in range(row_blocks(n, block_size)) for j in range(nb)]
    return out


def block_ranges(
    split: str, i: int, j: int, block_size: int, n_rows: int, n_train: int
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((row_start, row_stop), (col_start, col_stop)) of block (split, i, j)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if i < 0 or j < 0:
        raise ValueError(f"block indices must be >= 0, got {i}-{j}")
    if split == "train" and i > j:
        raise ValueError(f"train blocks have i <= j (the rest is the transpose), got {i}-{j}")
    rows = (i * block_size, min((i + 1) * block_size, n_rows))
    cols = (j * block_size, min((j + 1) * block_size, n_train))
    if rows[0] >= rows[1]:
        raise ValueError(f"{split} block {i}-{j}: row block {i} starts past the {n_rows} {split} examples")
    if cols[0] >= cols[1]:
        raise ValueError(f"{split} block {i}-{j}: column block {j} starts past the {n_train} training examples")
    return rows, cols


# -- backends -------------------------------------------------------------------------


@contextlib.contextmanager
def precision(dtype: str) -> Iterator[None]:
    """Compute in `dtype` whatever the process default: x64 on for float64, off for float32."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    import jax

    ctx = getattr(jax, "enable_x64", None)
    if ctx is None:  # pragma: no cover - older jax
        from jax.experimental import disable_x64, enable_x64

        ctx = (lambda on: enable_x64() if on else disable_x64())
    with ctx(dtype == "float64"):
        yield


def _pad_rows(x: np.ndarray, multiple: int) -> np.ndarray:
    extra = -len(x) % multiple
    if not extra:
        return x
    return np.concatenate([x, np.repeat(x[-1:], extra, axis=0)])


@functools.lru_cache(maxsize=16)
def nt_rows_fn(arch: str, hp, batch_rows: int) -> RowsFn:
    """(x1, x2) -> (nngp, ntk) with neural-tangents, streamed by nt.batch, batch_rows rows at a time.

    Cached per (arch, hp, batch_rows), so the blocks of one process share one compilation.
    """
    from symflow._nt import nt
    from symflow.architectures import ARCHITECTURES

    kernel_fn = ARCHITECTURES.get(arch).stax(hp)[2]
    batched = nt.batch(kernel_fn, batch_size=batch_rows, device_count=0, store_on_device=False)

    def rows(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n1, n2 = len(x1), len(x2)
        out = batched(_pad_rows(x1, batch_rows), _pad_rows(x2, batch_rows), ("nngp", "ntk"))
        return np.asarray(out[0])[:n1, :n2], np.asarray(out[1])[:n1, :n2]

    return rows


def engine_rows_fn(arch: str, hp, batch_rows: int) -> RowsFn | None:
    """The engine's (x1, x2) -> (nngp, ntk), or None where the engine is missing or declines."""
    import importlib

    try:  # through sys.modules, so a test can take the module away or replace it
        engine = importlib.import_module("symflow.engine")
    except ImportError as exc:
        _log.warning("kernel backend 'engine' unavailable (%s); falling back to neural-tangents", exc)
        return None
    if not engine.supports(arch):
        _log.warning(
            "kernel backend 'engine': symflow's engine cannot compute %s (its registration names no "
            "engine_recursion); neural-tangents computes it",
            arch,
        )
        return None
    fn = engine.kernel_fn(arch, hp)

    def rows(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nngp, ntk = fn(x1, x2)
        return np.asarray(nngp), np.asarray(ntk)

    return rows


def rows_fn(arch: str, hp, backend: str = "nt", batch_rows: int = 25) -> tuple[RowsFn, str]:
    """The kernel function of `backend` for (arch, hp), and the backend actually used."""
    if backend not in BACKENDS:
        raise ValueError(f"kernel backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "engine":
        fn = engine_rows_fn(arch, hp, batch_rows)
        if fn is not None:
            return fn, "engine"
    return nt_rows_fn(arch, hp, batch_rows), "nt"


def stream_kernel(
    rows: RowsFn,
    x1: np.ndarray,
    x2: np.ndarray,
    batch_rows: int,
    dtype: str,
    log: logging.Logger | None = None,
    what: str = "kernel",
) -> dict[str, np.ndarray]:
    """The (len(x1), len(x2)) NNGP and NTK, batch_rows rows at a time, logging progress."""
    from symflow.faults import fault_point
    from symflow.logs import Progress

    log = log or _log
    n1, n2 = len(x1), len(x2)
    out = {k: np.empty((n1, n2), dtype=dtype) for k in KERNELS}
    progress = Progress(log, what, n1 * n2, unit="pairs")
    x1 = np.asarray(x1, dtype=dtype)
    x2 = np.asarray(x2, dtype=dtype)
    with precision(dtype):
        for start in range(0, n1, batch_rows):
            stop = min(start + batch_rows, n1)
            nngp, ntk = rows(x1[start:stop], x2)
            out["nngp"][start:stop] = nngp
            out["ntk"][start:stop] = ntk
            progress.update((stop - start) * n2)
            fault_point("kernel.tile", what)
    for name, value in out.items():
        if not np.all(np.isfinite(value)):
            raise FloatingPointError(f"{what}: the {name} has non-finite entries")
    return out


# -- one block -------------------------------------------------------------------


def compute_block(
    data_path: str | Path,
    out_path: str | Path,
    *,
    arch: str,
    hp,
    split: str,
    i: int,
    j: int,
    block_size: int,
    backend: str = "nt",
    dtype: str = "float32",
    batch_rows: int = 25,
    log: logging.Logger | None = None,
    data: tuple[dict[str, np.ndarray], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Compute block (split, i, j) of arch's NNGP and NTK on a data-stage file; write it.

    Every entry is computed as a cross pair, as nt.batch does, diagonal blocks included:
    neural-tangents' kernel_fn(x, None) treats the diagonal as exact self pairs, so the
    two differ there by the arc-cosine's rounding at c ~ 1 (about 1e-4 relative on the NTK
    diagonal in float32, 1e-8 in float64). `data`: the file's arrays and attributes as
    read_h5 returns them, where the caller read it already (:func:`compute_blocks`).
    Returns the provenance attributes written.
    """
    from symflow.architectures import ARCHITECTURES
    from symflow.h5io import CHECKSUM_ATTR, package_versions, read_h5, write_h5

    log = log or _log
    ARCHITECTURES.get(arch)  # a clear error for an unknown name
    arrays, data_attrs = data if data is not None else read_h5(data_path)
    x_train = arrays["x_train"]
    x_split = arrays[f"x_{split}"]
    (r0, r1), (c0, c1) = block_ranges(split, i, j, block_size, len(x_split), len(x_train))
    log.info(
        "%s %s block %d-%d of %s (%s, B=%d): rows %d..%d x train %d..%d, backend %s, %s, batch %d",
        arch, split, i, j, data_path, data_attrs.get("transform"), block_size, r0, r1, c0, c1,
        backend, dtype, batch_rows,
    )
    rows, used = rows_fn(arch, hp, backend, batch_rows)
    start = time.perf_counter()
    block = stream_kernel(
        rows, x_split[r0:r1], x_train[c0:c1], batch_rows, dtype, log, what=f"{arch} {split} {i}-{j}"
    )
    seconds = time.perf_counter() - start
    attrs = {
        "kind": "gram_block",
        "architecture": arch,
        "model_hp": dict(vars(hp)),
        "hp_tag": hp.tag,
        "backend": backend,
        "backend_used": used,
        "dtype": dtype,
        "batch_rows": int(batch_rows),
        "transform": data_attrs.get("transform"),
        "group": data_attrs.get("group"),
        "seed": data_attrs.get("seed"),
        "data_file": str(data_path),
        "data_checksum": data_attrs[CHECKSUM_ATTR],
        "split": split,
        "i": int(i),
        "j": int(j),
        "block_size": int(block_size),
        "row_start": int(r0),
        "row_stop": int(r1),
        "col_start": int(c0),
        "col_stop": int(c1),
        "n_rows": int(len(x_split)),
        "n_train": int(len(x_train)),
        "versions": package_versions(),
    }
    write_h5(out_path, block, attrs)
    log.info("wrote %s (%d x %d) in %.1f s, %.0f pairs/s", out_path, r1 - r0, c1 - c0, seconds,
             (r1 - r0) * (c1 - c0) / max(seconds, 1e-9))
    return attrs


def compute_blocks(
    data_path: str | Path,
    blocks: Sequence[tuple[str | Path, str, int, int]],
    *,
    logs: Sequence[logging.Logger] | None = None,
    log: logging.Logger | None = None,
    **settings: Any,
) -> list[dict[str, Any]]:
    """Several blocks of one data file, one after another in this process (a pack,
    symflow.jobs.BlockPack): the data read and verified once, the kernel function built
    and compiled once (rows_fn's cache), each block (out_path, split, i, j) written as
    :func:`compute_block` writes it alone, the same bytes, as soon as it is done.

    `settings`: compute_block's keywords (arch, hp, block_size, backend, dtype,
    batch_rows). `logs`: one logger per block (its own log, as its own job would write
    it), each told the block's start and end and this process's id; `log` the pack's.
    """
    import os

    from symflow.h5io import read_h5
    from symflow.logs import timed

    log = log or _log
    logs = list(logs) if logs is not None else [log] * len(blocks)
    if len(logs) != len(blocks):
        raise ValueError(f"{len(blocks)} blocks but {len(logs)} logs")
    data = read_h5(data_path)
    out = []
    for k, ((out_path, split, i, j), own) in enumerate(zip(blocks, logs)):
        what = f"block {split} {i}-{j} -> {out_path} (pack member {k + 1} of {len(blocks)}, process {os.getpid()})"
        with timed(own, what):
            out.append(compute_block(data_path, out_path, split=split, i=i, j=j, log=own, data=data, **settings))
        log.info("%s: done", what)
    return out


# -- assembly -----------------------------------------------------------------------


@dataclass
class Gram:
    """Assembled kernels: gram[kernel][split] with train (m, m), val (n_val, m), test (n_test, m)."""

    m: int
    matrices: dict[str, dict[str, np.ndarray]]
    provenance: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, kernel: str) -> dict[str, np.ndarray]:
        return self.matrices[kernel]


_SAME = ("architecture", "hp_tag", "data_checksum", "block_size", "dtype", "n_train", "transform", "seed")


def assemble(
    block_files: Iterable[str | Path],
    m: int,
    kernels: Sequence[str] = KERNELS,
    splits: Sequence[str] = SPLITS,
) -> Gram:
    """Read blocks back into full matrices for the first m training examples (float64).

    Each block is placed by the row/column ranges it records; train-train blocks fill
    the upper triangle, which is mirrored (so the result is exactly symmetric). Raises
    if the blocks disagree on their source, or if any needed entry is missing.
    """
    from symflow.h5io import read_h5

    files = [Path(p) for p in block_files]
    if not files:
        raise ValueError("no kernel blocks given")
    out: dict[str, dict[str, np.ndarray]] = {}
    first: dict[str, Any] | None = None
    used: set[str] = set()
    for path in files:
        arrays, attrs = read_h5(path)
        used.add(str(attrs.get("backend_used")))
        if first is None:
            first = attrs
            if m > attrs["n_train"]:
                raise ValueError(f"m = {m} exceeds the {attrs['n_train']} training examples of {attrs['data_file']}")
        for key in _SAME:
            if attrs.get(key) != first.get(key):
                raise ValueError(
                    f"{path}: {key} = {attrs.get(key)!r} differs from {files[0]}'s {first.get(key)!r}; "
                    f"blocks of one Gram matrix must come from one data file and one model"
                )
        split = attrs["split"]
        if split not in splits:
            continue
        r0, r1, c0, c1 = (attrs[k] for k in ("row_start", "row_stop", "col_start", "col_stop"))
        if c0 >= m or (split == "train" and r0 >= m):
            continue  # a block beyond m (not needed)
        c1m = min(c1, m)
        r1m = min(r1, m) if split == "train" else r1
        for kernel in kernels:
            mats = out.setdefault(kernel, {})
            if split not in mats:
                shape = (m, m) if split == "train" else (attrs["n_rows"], m)
                mats[split] = np.full(shape, np.nan)
            mats[split][r0:r1m, c0:c1m] = arrays[kernel][: r1m - r0, : c1m - c0]
    assert first is not None
    for kernel in kernels:
        mats = out.setdefault(kernel, {})
        for split in splits:
            if split not in mats:
                raise ValueError(f"no {split} blocks among the {len(files)} given")
            mat = mats[split]
            if split == "train":
                upper = np.triu(mat)
                if np.isnan(upper).any():
                    r, c = np.argwhere(np.isnan(upper))[0]
                    raise ValueError(f"train entry ({r}, {c}) is in no given block (block size {first['block_size']})")
                mats[split] = upper + np.triu(mat, 1).T
            elif np.isnan(mat).any():
                r, c = np.argwhere(np.isnan(mat))[0]
                raise ValueError(f"{split} entry ({r}, {c}) is in no given block (block size {first['block_size']})")
    provenance = {k: first.get(k) for k in _SAME + ("backend", "model_hp", "data_file")}
    provenance["backends_used"] = sorted(used)
    provenance["blocks"] = len(files)
    return Gram(m=m, matrices=out, provenance=provenance)


def kernel_on(
    arch: str,
    hp,
    x1: np.ndarray,
    x2: np.ndarray | None = None,
    *,
    backend: str = "nt",
    dtype: str = "float64",
    batch_rows: int | None = None,
) -> tuple[dict[str, np.ndarray], str]:
    """The whole (x1, x2) NNGP and NTK in one go (small inputs: audit, tests)."""
    x2 = x1 if x2 is None else x2
    bs = batch_rows or max(len(x1), len(x2))
    if backend == "nt":
        from symflow._nt import nt  # noqa: F401
        from symflow.architectures import ARCHITECTURES

        kernel_fn = ARCHITECTURES.get(arch).stax(hp)[2]
        with precision(dtype):
            k = kernel_fn(np.asarray(x1, dtype), np.asarray(x2, dtype), ("nngp", "ntk"))
            return {"nngp": np.asarray(k[0], dtype=np.float64), "ntk": np.asarray(k[1], dtype=np.float64)}, "nt"
    rows, used = rows_fn(arch, hp, backend, bs)
    out = stream_kernel(rows, x1, x2, bs, dtype, what=f"{arch} kernel")
    return {k: v.astype(np.float64) for k, v in out.items()}, used
