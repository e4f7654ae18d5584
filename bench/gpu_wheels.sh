#!/usr/bin/env bash
# The Python packages bench/gpu_checks.sh needs that the lent H200 machine's image lacks
# (/work/.library/device/KINDS.md lists what it has: jax 0.11.2 with CUDA 13, flax, optax,
# h5py, pandas, pytest, pyyaml, ...), as wheels for its Python 3.12 on x86-64, into .whl/
# (ignored by git; name it in the device run's `carry`). Versions from requirements/lock.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { grep -i "^$1==" requirements/*.txt | head -1 | cut -d: -f2; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    "$(pin neural-tangents)" "$(pin frozendict)" "$(pin jsonschema)" "$(pin jsonschema-specifications)" \
    "$(pin referencing)" "$(pin rpds-py)"
ls -la .whl
