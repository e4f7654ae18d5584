"""The symmetry audit: Theorem 4.1's invariances, checked on the data rather than trusted.

For an (architecture, transform, seed), the NNGP and NTK of the architecture are
computed in float64 on a small subset (the first `audit_size` training images and the
first `n_test` test images, together as one Gram matrix) of the untransformed data and
of the transformed data, and compared entry by entry:

    max_rel_diff = max_ij |K(tau x_i, tau x_j) - K(x_i, x_j)| / |K(x_i, x_j)|

(ReLU kernels with sigma_b^2 > 0 have no zero entries). Beside it is the theorem's
prediction (the registry's claim, ``Architecture.claims(group, infinite=True)``) and a
verdict:

    agrees                 claimed invariant and max_rel_diff <= tolerance, or
                           not claimed and max_rel_diff > tolerance
    refutes                claimed invariant, yet max_rel_diff > tolerance
    unexpected-invariance  not claimed, yet max_rel_diff <= tolerance (the theorem states
                           invariances only; this flags a transform that happens to be
                           trivial, such as so3_path at t = 0)

Kernel reuse across transforms (the workflow's ``kernels.reuse_invariant``) reads the
audit first and refuses to reuse where it refutes the claim (:func:`check_reuse`), and
the gathered table (:func:`gather`) fails on any refuted claim: either way the run stops
with one line naming the architecture, the group and the measured difference.
:func:`audit_equality` checks the registry's kernel equalities (LCN_inf = VEC_inf) the
same way. Plug-in entries are audited like the paper's.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from symflow.provenance import PROVENANCE_COLUMNS, current

_log = logging.getLogger("symflow.audit")

AUDIT_COLUMNS = (
    "dataset",
    "architecture",
    "transform",
    "group",
    "seed",
    "claimed_invariant",
    "max_rel_diff_nngp",
    "max_rel_diff_ntk",
    "tolerance",
    "verdict",
    "n_train_images",
    "n_test_images",
    "backends",
    "hp",
    *PROVENANCE_COLUMNS,  # the symflow that computed the row (symflow.provenance)
)
LEGACY_AUDIT_COLUMNS = AUDIT_COLUMNS[: -len(PROVENANCE_COLUMNS)]  # rows from before those columns


class ClaimRefuted(RuntimeError):
    """The audit refutes an invariance (or equality) the registry claims."""


class ReuseRefused(ClaimRefuted):
    """The audit refutes the invariance that a kernel reuse relies on."""


def refutation(row: dict[str, Any]) -> str:
    """One line: what the audit measured against what the registry claims."""
    worst = max(float(row["max_rel_diff_nngp"]), float(row["max_rel_diff_ntk"]))
    arch, transform, group = row["architecture"], row["transform"], row["group"]
    if "=" in arch:
        a, b = arch.split("=", 1)
        return (
            f"the registry claims {a} and {b} have equal kernels, but the symmetry audit measured a max "
            f"relative difference of {worst:.3g} between them (tolerance {float(row['tolerance']):g})"
        )
    return (
        f"the registry claims {arch} is invariant to {group}, but the symmetry audit measured a max relative "
        f"difference of {worst:.3g} (tolerance {float(row['tolerance']):g}) between {arch}'s kernels on "
        f"{transform} data and on untransformed data (seed {row['seed']})"
    )


def max_rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / |b| over entries (b the reference)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.maximum(np.abs(b), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b) / denom))


def verdict(claimed: bool, diff: float, tolerance: float) -> str:
    invariant = bool(np.isfinite(diff) and diff <= tolerance)
    if claimed:
        return "agrees" if invariant else "refutes"
    return "unexpected-invariance" if invariant else "agrees"


def available_backends(arch: str) -> list[str]:
    """nt always; the engine too where it is installed and supports the architecture."""
    out = ["nt"]
    try:
        from symflow import engine
    except ImportError:
        return out
    try:
        if engine.supports(arch):
            out.append("engine")
    except Exception as exc:  # pragma: no cover - a broken engine must not stop the audit
        _log.warning("engine.supports(%s) failed (%s); auditing with nt only", arch, exc)
    return out


def subset(data: dict[str, np.ndarray], audit_size: int, n_test: int) -> np.ndarray:
    return np.concatenate([data["x_train"][:audit_size], data["x_test"][:n_test]])


def compare_kernels(
    arch_a: str,
    x_a: np.ndarray,
    arch_b: str,
    x_b: np.ndarray,
    hp,
    backends: Sequence[str] = ("nt",),
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Max relative differences between arch_a's kernels on x_a and arch_b's on x_b (float64)."""
    from symflow.kernels import kernel_on

    log = log or _log
    diffs = {"nngp": 0.0, "ntk": 0.0}
    used = []
    for backend in backends:
        ka, ua = kernel_on(arch_a, hp, x_a, backend=backend, dtype="float64")
        kb, ub = kernel_on(arch_b, hp, x_b, backend=backend, dtype="float64")
        if ua != backend or ub != backend:
            log.warning("audit: backend %s was not used (got %s, %s); skipped", backend, ua, ub)
            continue
        used.append(backend)
        for name in diffs:
            d = max_rel_diff(ka[name], kb[name])
            log.info("%s vs %s, %s, backend %s: max relative difference %.3g", arch_a, arch_b, name, backend, d)
            diffs[name] = max(diffs[name], d)
    return {"max_rel_diff_nngp": diffs["nngp"], "max_rel_diff_ntk": diffs["ntk"], "backends": "+".join(used)}


def audit_arrays(
    arch: str,
    transform: str,
    x: np.ndarray,
    x_tau: np.ndarray,
    *,
    hp,
    tolerance: float,
    backends: Sequence[str] | None = None,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Audit `arch` on images x and their transformed copies x_tau (tau of `transform`).

    Returns the claim, the max relative differences of NNGP and NTK (float64, the
    worst over `backends`), the verdict and the backends used.
    """
    from symflow.architectures import ARCHITECTURES
    from symflow.groups import parse_spec

    spec = parse_spec(transform)
    claimed = ARCHITECTURES.get(arch).claims(spec.group, infinite=True)
    backends = list(backends) if backends is not None else available_backends(arch)
    diffs = compare_kernels(arch, x_tau, arch, x, hp, backends, log)
    worst = max(diffs["max_rel_diff_nngp"], diffs["max_rel_diff_ntk"])
    return {
        "architecture": arch,
        "transform": spec.id,
        "group": spec.group,
        "claimed_invariant": bool(claimed),
        **diffs,
        "tolerance": float(tolerance),
        "verdict": verdict(claimed, worst, tolerance),
    }


def audit_pair(
    identity_path: str | Path,
    transformed_path: str | Path,
    out_csv: str | Path,
    *,
    dataset: str,
    arch: str,
    hp,
    transform: str,
    seed: int,
    audit_size: int,
    tolerance: float,
    n_test: int = 4,
    backends: Sequence[str] | None = None,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Audit one (architecture, transform, seed); write a one-row CSV and return the row."""
    from symflow.data import load_dataset
    from symflow.groups import IDENTITY, parse_spec

    log = log or _log
    spec = parse_spec(transform)
    plain = load_dataset(identity_path, parts=("train", "test"))
    moved = load_dataset(transformed_path, parts=("train", "test"))
    if plain["attrs"]["transform"] != IDENTITY:
        raise ValueError(f"{identity_path}: is not untransformed data (transform {plain['attrs']['transform']})")
    if moved["attrs"]["transform"] != spec.id:
        raise ValueError(f"{transformed_path}: holds {moved['attrs']['transform']} data, not {spec.id}")
    x = subset(plain, audit_size, n_test)
    x_tau = subset(moved, audit_size, n_test)
    result = audit_arrays(arch, spec.id, x, x_tau, hp=hp, tolerance=tolerance, backends=backends, log=log)
    row = {
        "dataset": dataset,
        "seed": int(seed),
        **result,
        "n_train_images": int(min(audit_size, len(plain["x_train"]))),
        "n_test_images": int(min(n_test, len(plain["x_test"]))),
        "hp": hp.tag,
        **current(),
    }
    log.info(
        "%s on %s (seed %d): claimed invariant %s, max relative difference nngp %.3g ntk %.3g -> %s",
        arch,
        spec.id,
        seed,
        row["claimed_invariant"],
        row["max_rel_diff_nngp"],
        row["max_rel_diff_ntk"],
        row["verdict"],
    )
    write_rows(out_csv, [row])
    return row


def audit_equality(
    data_path: str | Path,
    out_csv: str | Path,
    *,
    dataset: str,
    arch_a: str,
    arch_b: str,
    hp,
    audit_size: int,
    tolerance: float,
    n_test: int = 4,
    backends: Sequence[str] = ("nt",),
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """Check that two architectures have the same kernels (LCN_inf = VEC_inf) on a data subset."""
    from symflow.data import load_dataset

    log = log or _log
    data = load_dataset(data_path, parts=("train", "test"))
    x = subset(data, audit_size, n_test)
    diffs = compare_kernels(arch_a, x, arch_b, x, hp, backends, log)
    worst = max(diffs["max_rel_diff_nngp"], diffs["max_rel_diff_ntk"])
    row = {
        "dataset": dataset,
        "architecture": f"{arch_a}={arch_b}",
        "transform": data["attrs"]["transform"],
        "group": data["attrs"]["group"],
        "seed": int(data["attrs"]["seed"]),
        "claimed_invariant": True,
        **diffs,
        "tolerance": float(tolerance),
        "verdict": verdict(True, worst, tolerance),
        "n_train_images": int(min(audit_size, len(data["x_train"]))),
        "n_test_images": int(min(n_test, len(data["x_test"]))),
        "hp": hp.tag,
        **current(),
    }
    log.info("%s = %s: max relative difference %.3g -> %s", arch_a, arch_b, worst, row["verdict"])
    write_rows(out_csv, [row])
    return row


def write_rows(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    from symflow.h5io import atomic_path

    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=AUDIT_COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({c: _cell(row.get(c)) for c in AUDIT_COLUMNS})


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else str(value)


def read_rows(paths: Iterable[str | Path]) -> list[dict[str, str]]:
    rows = []
    for path in paths:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            columns = tuple(reader.fieldnames or ())
            if columns not in (AUDIT_COLUMNS, LEGACY_AUDIT_COLUMNS):
                raise ValueError(f"{path}: columns {reader.fieldnames} are not the audit's {AUDIT_COLUMNS}")
            rows.extend({**row, **dict.fromkeys(PROVENANCE_COLUMNS, "")} if columns != AUDIT_COLUMNS else row
                        for row in reader)
    return rows


def gather(
    paths: Sequence[str | Path],
    out_csv: str | Path,
    log: logging.Logger | None = None,
    fail_on_refute: bool = True,
) -> list[dict]:
    """One table of every audited pair (sorted), written to out_csv; logs anything but agreement.

    A refuted claim raises ClaimRefuted (one line naming the architecture, the group and
    the measured difference) instead of writing the table, unless fail_on_refute is False.
    """
    log = log or _log
    rows = read_rows(paths)
    rows.sort(key=lambda r: (r["architecture"], r["transform"], int(r["seed"])))
    refuted = [r for r in rows if r["verdict"] == "refutes"]
    if refuted and fail_on_refute:
        for row in refuted:
            log.error("%s", refutation(row))
        more = f" (and {len(refuted) - 1} more refuted claim(s), see the log)" if len(refuted) > 1 else ""
        raise ClaimRefuted(
            f"symmetry audit: {refutation(refuted[0])}{more}; fix the claim in the registry (or the plug-in)"
        )
    write_rows(out_csv, rows)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
        if row["verdict"] != "agrees":
            log.warning(
                "%s on %s (seed %s): %s (max relative differences nngp %s, ntk %s)",
                row["architecture"],
                row["transform"],
                row["seed"],
                row["verdict"],
                row["max_rel_diff_nngp"],
                row["max_rel_diff_ntk"],
            )
    log.info("symmetry audit: %d rows, %s", len(rows), counts)
    return rows


def check_reuse(audit_csv: str | Path, arch: str, transform: str, log: logging.Logger | None = None) -> dict[str, str]:
    """Raise ReuseRefused (one line) unless the audit of (arch, transform) confirms the invariance."""
    log = log or _log
    rows = [r for r in read_rows([audit_csv]) if r["architecture"] == arch and r["transform"] == transform]
    if len(rows) != 1:
        raise ReuseRefused(f"{audit_csv}: holds no audit of {arch} on {transform}")
    row = rows[0]
    if row["claimed_invariant"] != "True" or row["verdict"] != "agrees":
        worst = max(float(row["max_rel_diff_nngp"]), float(row["max_rel_diff_ntk"]))
        raise ReuseRefused(
            f"kernel reuse refused: the symmetry audit ({audit_csv}) measured a max relative difference of "
            f"{worst:.3g} (tolerance {float(row['tolerance']):g}) between {arch}'s kernels on {transform} and on "
            f"untransformed data, so {arch} is not invariant to {row['group']}; fix the claim in the "
            f"architecture registry (or the plug-in) or set kernels.reuse_invariant: false"
        )
    log.info(
        "reusing untransformed kernel blocks for %s on %s: the audit agrees (max relative difference %s)",
        arch,
        transform,
        max(row["max_rel_diff_nngp"], row["max_rel_diff_ntk"], key=float),
    )
    return row
