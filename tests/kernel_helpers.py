"""Helpers of the kernel-stage tests (a module, not conftest.py, so other suites are untouched)."""

from __future__ import annotations

import numpy as np


def write_data_file(path, *, n_train=6, n_val=3, n_test=5, res=4, transform="identity", seed=0, data_seed=0):
    """A small file in the data stage's layout (random standardised images, one-hot labels)."""
    from symflow.groups import parse_spec, transform_images
    from symflow.h5io import write_h5

    rng = np.random.default_rng(data_seed)
    arrays, spec = {}, parse_spec(transform)
    for part, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        x = rng.standard_normal((n, res, res, 3))
        labels = rng.integers(0, 10, n)
        arrays[f"x_{part}"] = transform_images(spec, seed, x).astype(np.float32)
        arrays[f"y_{part}"] = np.eye(10, dtype=np.float32)[labels]
        arrays[f"labels_{part}"] = labels.astype(np.int64)
    attrs = {"kind": "dataset", "transform": spec.id, "group": spec.group, "seed": seed, "resolution": res}
    write_h5(path, arrays, attrs)
    return path
