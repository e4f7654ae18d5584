"""Per-image results of every run, gathered into one file: what the claims' paired intervals read.

Every cell of the workflow is scored on the same test images. The gathered tables keep one
number per run (its accuracy); the claims need the image-by-image record behind it, so that
cells scored on the same images are compared image by image (``symflow.evidence``).
:func:`gather` reads each run's main output (a kernel regression's predictions, a finite
network's predictions.h5, an ensemble's mean.h5) and writes results/tables/predictions.h5:

    correct_<i>   (N_i, n_i) uint8    1 where the run's largest output is the image's label
    sq_error_<i>  (N_i, n_i) float32  the image's squared error, mean over the K outputs
    sdist_<i>     (M_i, n_i) float32  Fig. S1: |ensemble mean - reference|^2 over the K outputs
    labels_<i>    (n_i,)     int64    the test labels

one index i per test set (a dataset id), and the attribute ``testsets``: for each, its
dataset id, the run files in row order (``paths``, the runs table's ``path`` column) and
the S-Dist rows (``sdist``: [ensemble mean path, reference name, reference path]).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

_log = logging.getLogger("symflow.predictions")
KINDS = ("correct", "sq_error")  # per-image values of a run: accuracy's and MSE's


def per_image(outputs: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """correct (uint8) and sq_error (float32) of (n, K) outputs against integer labels."""
    outputs = np.asarray(outputs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if outputs.ndim != 2 or outputs.shape[0] != labels.shape[0]:
        raise ValueError(f"outputs {outputs.shape} do not match {labels.shape[0]} labels")
    targets = np.eye(outputs.shape[1])[labels]
    return {
        "correct": (np.argmax(outputs, axis=1) == labels).astype(np.uint8),
        "sq_error": ((outputs - targets) ** 2).mean(axis=1).astype(np.float32),
    }


def gather(outputs: Sequence[str | os.PathLike], labels: Mapping[str, str | os.PathLike],
           sdist: Sequence[tuple[str | os.PathLike, Mapping[str, str | os.PathLike]]], out: str | os.PathLike,
           log: logging.Logger | None = None) -> dict[str, int]:
    """Write results/tables/predictions.h5 (see the module's docstring).

    outputs: each run's main HDF5 output (with `test_outputs` and a `dataset` attribute);
    labels: dataset id -> a data-stage file of that dataset (its test labels); sdist: for each
    Fig. S1 ensemble, (its mean.h5, {reference name: reference file}). Returns runs per dataset."""
    from symflow.data import load_dataset
    from symflow.h5io import package_versions, read_h5, write_h5

    log = log or _log
    label_of = {ds: np.asarray(load_dataset(p, parts=("test",))["labels_test"], np.int64) for ds, p in labels.items()}
    sets: dict[str, dict] = {ds: {"paths": [], "correct": [], "sq_error": [], "sdist": [], "sdist_rows": []}
                             for ds in label_of}

    def test_outputs(path) -> tuple[str, np.ndarray]:
        arrays, attrs = read_h5(path)
        ds = str(attrs.get("dataset", ""))
        if ds not in label_of:
            raise ValueError(f"{path}: dataset {ds!r} has no labels among {sorted(label_of)}")
        test = np.asarray(arrays["test_outputs"])
        if "labels_test" in arrays and not np.array_equal(arrays["labels_test"], label_of[ds]):
            raise ValueError(f"{path}: its test labels are not those of {ds}")
        return ds, test

    for path in sorted(set(map(str, outputs))):
        ds, outputs_ = test_outputs(path)
        vals = per_image(outputs_, label_of[ds])
        s = sets[ds]
        s["paths"].append(path)
        s["correct"].append(vals["correct"])
        s["sq_error"].append(vals["sq_error"])
    for mean_path, refs in sdist:
        ds, ens = test_outputs(mean_path)
        for name, ref_path in sorted(refs.items()):
            ref_ds, ref = test_outputs(ref_path)
            if ref_ds != ds:
                raise ValueError(f"{ref_path}: dataset {ref_ds} is not {ds} of {mean_path}")
            sets[ds]["sdist"].append(((np.asarray(ens, np.float64) - ref) ** 2).sum(axis=1).astype(np.float32))
            sets[ds]["sdist_rows"].append([str(mean_path), name, str(ref_path)])

    arrays, meta = {}, []
    for i, (ds, s) in enumerate(sorted(sets.items())):
        n = len(label_of[ds])
        arrays[f"labels_{i}"] = label_of[ds]
        arrays[f"correct_{i}"] = np.array(s["correct"], np.uint8).reshape(len(s["paths"]), n)
        arrays[f"sq_error_{i}"] = np.array(s["sq_error"], np.float32).reshape(len(s["paths"]), n)
        arrays[f"sdist_{i}"] = np.array(s["sdist"], np.float32).reshape(len(s["sdist_rows"]), n)
        meta.append({"dataset": ds, "paths": s["paths"], "sdist": s["sdist_rows"]})
        log.info("%s: %d runs, %d S-Dist rows, %d test images", ds, len(s["paths"]), len(s["sdist_rows"]), n)
    write_h5(out, arrays, {"kind": "per_image_predictions", "testsets": meta, "versions": package_versions()})
    return {m["dataset"]: len(m["paths"]) for m in meta}


def labels_by_dataset(paths: Sequence[str | os.PathLike]) -> dict[str, str]:
    """dataset id -> data-stage file, from the files' paths (results/data/{dataset}/{transform}/s{seed}.h5)."""
    from pathlib import Path

    return {Path(p).parent.parent.name: str(p) for p in paths}


@dataclass
class Predictions:
    """Per-image values by run file (and by Fig. S1 ensemble and reference): what cells are made of."""

    runs: dict[str, tuple[str, dict[str, np.ndarray]]] = field(default_factory=dict)  # path -> (testset, kind -> (n,))
    sdist: dict[tuple[str, str], tuple[str, np.ndarray]] = field(default_factory=dict)  # (mean path, ref) -> (testset, (n,))

    @classmethod
    def read(cls, path: str | os.PathLike) -> Predictions:
        from symflow.h5io import read_h5

        arrays, attrs = read_h5(path)
        meta = attrs["testsets"]
        meta = json.loads(meta) if isinstance(meta, str) else meta
        out = cls()
        for i, m in enumerate(meta):
            ds = m["dataset"]
            for r, p in enumerate(m["paths"]):
                out.runs[p] = (ds, {k: arrays[f"{k}_{i}"][r] for k in KINDS})
            for r, (mean_path, name, _ref) in enumerate(m["sdist"]):
                out.sdist[(mean_path, name)] = (ds, arrays[f"sdist_{i}"][r])
        return out

    def add(self, path: str, testset: str, **values: np.ndarray) -> None:
        """Add a run's per-image values (tests, and tables built by hand)."""
        self.runs[str(path)] = (testset, {k: np.asarray(v) for k, v in values.items()})

    def values(self, path: str, kind: str) -> tuple[str, np.ndarray]:
        """(testset, per-image values) of the run whose main output is `path`; KeyError if absent."""
        testset, vals = self.runs[str(path)]
        return testset, vals[kind]
