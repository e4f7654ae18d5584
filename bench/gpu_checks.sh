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
echo "== packed training equals runs made one by one (full float32 products: XLA's TF32 would blur it)"
JAX_DEFAULT_MATMUL_PRECISION=highest timeout 150 python3 -m pytest -q -p no:cacheprovider --tb=line \
    tests/test_train_packed.py 2>&1 | tail -6
echo "== packed training: run-steps/s of 8 VEC runs packed against one by one"
timeout 420 python3 bench/packed_training.py --resolutions 8 32 --widths 16 32 64 128 --pack 8 --steps 200 \
    --repeats 1 --csv "$OUT/packed_training.csv" 2>&1 | tail -30
echo "== symflow plan --configfile config/gpu.yaml (H200-hours at the rates in symflow/plan.py)"
timeout 60 python3 -m symflow.cli plan --configfile config/gpu.yaml 2>&1 | grep -E "^(total|kernel|eta0|sgd) "
