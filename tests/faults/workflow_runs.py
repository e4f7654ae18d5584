"""Helpers of the fault-injection tests: the smallest workflow targets on the tiny config,
a snakemake runner, and a comparable snapshot of every final output under results/."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
# smaller than tiny.yaml where it costs time: 2 hidden layers (quick to compile), one test
# block; the kernel backend named, so the paths below do not depend on the default's
OVERRIDE = "model: {depth: 2}\nkernels: {backend: engine, dtype: float32}\n"
OVERRIDE_DATA = "data: {n_test: 40}\n"
DATASET = "cifar10-sample.0e454ec3-r8-n200.40.40-split0"
HP = "L2-w2-b0.01-f3"
KSPEC = "engine-float32"
DATA = f"results/data/{DATASET}/identity/s0.h5"
BLOCKS = f"results/kernels/{DATASET}/FCN/{HP}/{KSPEC}/identity/s0/B40"
REGRESSION = f"results/regression/{DATASET}/FCN/{HP}/{KSPEC}/identity/s0/m40"
RUN = f"{DATASET}/VEC-w4-gaussian/{HP}/identity"
SGD = f"results/sgd/{RUN}/nn/m40/s0/i0"
ETA0 = f"results/sgd/{RUN}/eta0/m40/s0/i0.json"
TRAIN_LOG = f"logs/sgd/{RUN}/nn/m40/s0/i0.log"
CHECKPOINT = f"checkpoints/sgd/{RUN}/nn/m40/s0/i0/state.msgpack"
# one kernel regression (FCN NTK, m = 40: data, three Gram blocks) and one short SGD run
# (VEC-4, m = 40, 60 steps, checkpoints at 20 and 40: data, eta0, training)
TARGETS = [f"{REGRESSION}/ntk.csv", f"{SGD}/metrics.csv"]
# columns and fields that hold wall times, not results
TIMING = {"wall_time_s", "seconds"}


def new_workdir(path: Path) -> Path:
    """An empty project folder: the default config (read by the Snakefile; its data.sample_dir
    null is the sample shipped in the package), the override."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config").mkdir(exist_ok=True)
    (path / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    (path / "override.yaml").write_text(OVERRIDE + OVERRIDE_DATA)
    return path


def snakemake_cmd(workdir: Path, *args: str, targets=TARGETS) -> list[str]:
    # --keep-going and --rerun-incomplete as in profiles/default
    return [str(SNAKEMAKE), *targets, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
            "--keep-going", "--rerun-incomplete", *args,
            "--configfile", str(TINY), str(workdir / "override.yaml")]  # fmt: skip


def env(fault: str | None = None) -> dict[str, str]:
    out = {**os.environ, "PYTHONPATH": str(REPO)}
    out.pop("SNAKEMAKE_PROFILE", None)
    out.pop("SYMFLOW_FAULT_KILL", None)
    if fault:
        out["SYMFLOW_FAULT_KILL"] = fault
    return out


def snakemake(workdir: Path, *args: str, fault: str | None = None, check: bool = True, targets=TARGETS,
              timeout: float = 600) -> subprocess.CompletedProcess:  # fmt: skip
    proc = subprocess.run(snakemake_cmd(workdir, *args, targets=targets), cwd=workdir, env=env(fault),
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def symflow(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "symflow.cli", *args]
    return subprocess.run(cmd, cwd=workdir, env=env(), capture_output=True, text=True, timeout=120)


def content(path: Path) -> Any:
    """A file's results in comparable form (HDF5: every dataset's dtype, shape and bytes, and the
    attributes; CSV: the rows; JSON: the fields), wall times left out. Reading an HDF5 file
    verifies its checksum, so a partial or corrupt file raises here."""
    from symflow.h5io import read_h5

    if path.suffix == ".h5":
        arrays, attrs = read_h5(path)
        return {
            "arrays": {k: (a.dtype.str, a.shape, a.tobytes()) for k, a in sorted(arrays.items())},
            "attrs": {k: _plain(v) for k, v in attrs.items() if k not in TIMING},
        }
    if path.suffix == ".csv":
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            rows = [{k: v for k, v in row.items() if k not in TIMING} for row in reader]
        assert rows and None not in rows[-1].values(), f"{path}: incomplete CSV"
        return {"columns": reader.fieldnames, "rows": rows}
    if path.suffix == ".json":
        return {k: _plain(v) for k, v in json.loads(path.read_text()).items() if k not in TIMING}
    return path.read_bytes()


def _plain(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and value != value:
        return "nan"  # NaN attributes (e.g. t of a non-path group) compare equal
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def final_files(workdir: Path) -> list[str]:
    """Files at final paths under results/ (not the hidden temporaries of atomic writes)."""
    root = workdir / "results"
    if not root.exists():
        return []
    return sorted(p.relative_to(workdir).as_posix() for p in root.rglob("*") if p.is_file() and p.name[0] != ".")


def temporaries(workdir: Path, under: str = "results") -> list[str]:
    root = workdir / under
    if not root.exists():
        return []
    return sorted(p.relative_to(workdir).as_posix() for p in root.rglob(".*.tmp*") if p.is_file())


def snapshot(workdir: Path) -> dict[str, Any]:
    return {rel: content(workdir / rel) for rel in final_files(workdir)}


def assert_same_outputs(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert sorted(got) == sorted(want), f"different files: {sorted(set(got) ^ set(want))}"
    differ = [rel for rel in want if got[rel] != want[rel]]
    assert not differ, f"outputs differ from the reference run: {differ}"


def checkpoint_step(path: Path) -> int:
    from flax import serialization

    from symflow.train import checkpoint_payload

    return int(serialization.msgpack_restore(checkpoint_payload(path))["step"])
