"""Write tests/data/engine_nt_golden.npz: neural-tangents' kernels for the engine's test cases.

    PYTHONPATH=. python tests/make_engine_golden.py

For every case in tests/engine_cases.py: the inputs, and nt's NNGP and NTK (stax
kernel_fn of the registered architecture, float64) for (x1, x2) and (x1, None).
tests/test_engine.py compares the engine with these (running nt there for every
case would take minutes) and checks a few cases against live nt as well.
"""

from __future__ import annotations

import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from engine_cases import CASES, GOLDEN, case_id, inputs  # noqa: E402
from symflow._nt import nt  # noqa: E402
from symflow.architectures import ARCHITECTURES  # noqa: E402


def main() -> None:
    out = {}
    for arch, hp, res, n in CASES:
        t0 = time.time()
        x1, x2 = inputs(res, n)
        out[f"inputs-R{res}-n{n}/x1"], out[f"inputs-R{res}-n{n}/x2"] = x1, x2
        kf = ARCHITECTURES.get(arch).stax(hp)[2]
        key = case_id(arch, hp, res, n)
        for tag, y in (("12", x2), ("11", None)):
            k = kf(x1, y, ("nngp", "ntk"))
            out[f"{key}/nngp{tag}"] = np.asarray(k[0], np.float64)
            out[f"{key}/ntk{tag}"] = np.asarray(k[1], np.float64)
        print(f"{key}: {time.time() - t0:.1f}s", flush=True)
    out["meta/versions"] = np.array(f"neural-tangents {nt.__version__}, jax {jax.__version__}")
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(GOLDEN, **out)
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
