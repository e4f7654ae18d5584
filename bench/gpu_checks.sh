#!/usr/bin/env bash
# GPU checks in one go (bench/README.md, "On a GPU"): the engine's kernels against the
# neural-tangents goldens on the GPU, then kernel and SGD throughput. Measures; asserts
# only through test_engine. Needs jax with CUDA, flax, h5py, pandas, pytest; and
# neural-tangents (and frozendict) importable, e.g. from .gpu/site (PYTHONPATH).
# Writes to ${OUT:-bench/results/gpu}.
set -u
OUT=${OUT:-bench/results/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/.gpu/site:$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import jax, flax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
echo "== test_engine on $(python3 -c 'import jax; print(jax.default_backend())')"
timeout 200 python3 -m pytest -q -p no:cacheprovider --tb=line tests/test_engine.py 2>&1 | tail -25
echo "== kernel throughput, engine vs nt"
timeout 150 python3 bench/kernel_bench.py --archs FCN VEC GAP LAP8 --resolutions 8 --n 256 --batch 128 \
    --budget-seconds 4 --repeats 3 --csv "$OUT/kernel_bench_r8.csv" 2>&1 | tail -8
timeout 150 python3 bench/kernel_bench.py --archs VEC GAP LAP8 --resolutions 32 --n 16 --batch 8 \
    --budget-seconds 4 --repeats 3 --csv "$OUT/kernel_bench_r32.csv" 2>&1 | tail -6
echo "== SGD throughput at 32x32, the paper's widths"
timeout 120 python3 bench/train_bench.py --threads 1 --resolution 32 --arch VEC GAP --width 128 \
    --chunk 100 --repeats 2 2>&1 | tail -4
