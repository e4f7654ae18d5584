"""Make tests/golden/kernels.npz: NNGP and NTK values of every architecture on a few
fixed inputs, computed with neural-tangents 0.6.5 on a jax release it supports.

This script is NOT run by the test suite. It was run once, in a throwaway virtual
environment (Python 3.11) made with

    python3.11 -m venv /tmp/golden-venv
    /tmp/golden-venv/bin/pip install "jax==0.4.23" "jaxlib==0.4.23" "numpy<2" \
        "scipy<1.13" "ml_dtypes<0.4" frozendict
    /tmp/golden-venv/bin/pip install --no-deps neural-tangents==0.6.5
    PYTHONPATH=. /tmp/golden-venv/bin/python tests/golden/make_golden.py

jax 0.4.23 (Dec 2023) is the release current when neural-tangents 0.6.5 came out.
The only thing changed there is the TensorFlow bridge: neural-tangents imports
``neural_tangents.experimental.empirical_tf`` (tensorflow + tf2jax) at import time,
which is not installed, so that one module is replaced by a stub below. Nothing of
jax is patched (none of the shims of symflow/_nt.py are needed on jax 0.4.23).

The architectures are symflow's own definitions (symflow/architectures.py), imported
with ``symflow._nt`` pointed at this plain neural-tangents, so the stored numbers are
"symflow's stax definitions evaluated by the stack neural-tangents was released on";
tests/test_golden.py evaluates the same definitions through symflow._nt on the
project's stack and must match them to 1e-5 relative.

The inputs are stored in the file too (x1, x2), so no random stream has to agree
across numpy versions.
"""

from __future__ import annotations

import json
import platform
import sys
import types
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

# -- the one stub: the TensorFlow bridge ----------------------------------------
stub = types.ModuleType("neural_tangents.experimental.empirical_tf.empirical")
stub.empirical_ntk_fn_tf = stub.get_apply_fn_and_params = None
sys.modules[stub.__name__] = stub

import jax  # noqa: E402

# float64 values are made in a process with x64 on, float32 ones in a process with it
# off (under x64, neural-tangents promotes float32 inputs to float64)
DTYPE = sys.argv[1] if len(sys.argv) > 1 else None
if DTYPE == "float64":
    jax.config.update("jax_enable_x64", True)

import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

shim = types.ModuleType("symflow._nt")
shim.nt, shim.stax = nt, stax
sys.modules["symflow._nt"] = shim

from symflow.architectures import ARCHITECTURES, ModelHP  # noqa: E402

HPS = {
    "paper": ModelHP(),  # depth 8, sigma_w^2 2, sigma_b^2 0.01, 3x3 filters
    "other": ModelHP(depth=3, weight_variance=1.5, bias_variance=0.05, filter_size=3),
}
ARCHS = ["FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8"]


def inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20220722)
    return rng.standard_normal((3, 8, 8, 3)), rng.standard_normal((2, 8, 8, 3))


def compute(dtype: str) -> None:
    x1, x2 = inputs()
    out: dict[str, np.ndarray] = {}
    for hp_name, hp in HPS.items():
        for arch in ARCHS:
            kernel_fn = ARCHITECTURES.get(arch).stax(hp)[2]
            a, b = x1.astype(dtype), x2.astype(dtype)
            for pair, (u, v) in {"cross": (a, b), "self": (a, None)}.items():
                k = kernel_fn(u, v, ("nngp", "ntk"))
                for name in ("nngp", "ntk"):
                    value = np.asarray(getattr(k, name))
                    assert value.dtype == np.dtype(dtype), (arch, dtype, value.dtype)
                    out[f"{hp_name}/{arch}/{dtype}/{pair}/{name}"] = value
            print(dtype, hp_name, arch, out[f"{hp_name}/{arch}/{dtype}/cross/ntk"][0], flush=True)
    np.savez(HERE / f".part-{dtype}.npz", **out)


def main() -> None:
    import subprocess

    x1, x2 = inputs()
    out: dict[str, np.ndarray] = {"x1": x1, "x2": x2}
    for dtype in ("float64", "float32"):
        subprocess.run([sys.executable, __file__, dtype], check=True)
        part = HERE / f".part-{dtype}.npz"
        with np.load(part) as f:
            out.update({k: f[k] for k in f.files})
        part.unlink()
    versions = {p: metadata.version(p) for p in ("jax", "jaxlib", "neural-tangents", "numpy")}
    meta = {
        "versions": versions,
        "python": platform.python_version(),
        "hps": {k: vars(v) for k, v in HPS.items()},
        "stubbed": ["neural_tangents.experimental.empirical_tf.empirical (TensorFlow bridge)"],
    }
    out["meta"] = np.array(json.dumps(meta, sort_keys=True))
    np.savez_compressed(HERE / "kernels.npz", **out)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    compute(DTYPE) if DTYPE else main()
