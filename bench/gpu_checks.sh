#!/usr/bin/env bash
# Issue 18's GPU measurements in one call of at most 10 minutes (bench/README.md, "On a GPU").
# Sections run in order of what the acceptance needs, each under its own time limit and all
# under one deadline (GPU_CHECKS_SECONDS, default 530 s; the report after it has 40 s more): a
# section with too little time left is skipped and says so, and every section writes its CSV
# as soon as it has numbers.
#
#   0. symflow plan for config/gpu.yaml, and a GPU job's start-up (RATES['h200_job_start_s'] is
#      the CPU figure; the plan prices GPU jobs with it until this says otherwise), and that
#      configure_jax keeps a job without a GPU on the CPU
#   1. packed training: run-steps/s of 8 VEC runs packed against one by one (>= 10x asked)
#   2. the kernel engine against plain neural-tangents, all six architectures at 8, 16 and
#      32, each engine layer schedule (symflow.engine.SCHEDULES) against the same nt timing, at
#      tiles near the workflow's (whole blocks for FCN/VEC: one call of up to 1M pairs)
#   3. four small training jobs sharing the GPU against one alone (bench/gpu_sharing.py)
#   4. tests/test_engine.py on the GPU (every schedule against the float64 goldens)
#   5. tests/test_train_packed.py at full float32 precision (XLA's TF32 would blur it)
#
#   then, whatever the deadline left: bench/gpu_report.py on what was written, the verdict on
#   each acceptance criterion and the settings to make (gpu_report.md), priced by symflow plan
#
# On the lent H200 (its image has jax with CUDA, flax, optax, h5py, pandas, pytest): first,
# here, `bash bench/gpu_wheels.sh` (neural-tangents and the few packages the image lacks,
# into .whl/), then run `bash bench/gpu_checks.sh` there with `.whl` carried. Writes the log
# and CSVs to ${OUT:-bench/results/gpu}. GPU_CHECKS_ONLY (an extended regex) runs only the
# sections whose names match it, e.g. a rerun of those that failed: GPU_CHECKS_ONLY='packed'.
# GPU_CHECKS_WHEELS=0 leaves .whl/ uninstalled (the tests run it so, on CPU).
set -u
START=$SECONDS
DEADLINE=${GPU_CHECKS_SECONDS:-530}
OUT=${OUT:-bench/results/gpu}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_checks.log") 2>&1
if [[ ${GPU_CHECKS_WHEELS:-1} != 0 ]] && compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
date -u
nvidia-smi -L
python3 -c "import jax, flax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())" || exit 1

section() { # section NAME SECONDS COMMAND...: runs COMMAND under min(SECONDS, time left)
    local name=$1 budget=$2
    shift 2
    local left=$((DEADLINE - (SECONDS - START)))
    if [[ -n ${GPU_CHECKS_ONLY:-} ]] && ! [[ $name =~ $GPU_CHECKS_ONLY ]]; then
        echo "== $name: skipped (not in GPU_CHECKS_ONLY)"
        return
    fi
    if ((left < 25)); then
        echo "== $name: skipped (${left} s left of ${DEADLINE})"
        return
    fi
    ((budget > left)) && budget=$left
    echo "== $name (limit ${budget} s; $((SECONDS - START)) s elapsed)"
    local t0=$SECONDS
    timeout -k 5 "$budget" "$@"
    echo "-- $name: exit $? after $((SECONDS - t0)) s"
}

SCHEDULES=$(python3 -c "from symflow.engine import SCHEDULES; print(' '.join(SCHEDULES))")
SPATIAL_SCHEDULES=$SCHEDULES                                      # GAP, LAPk: every schedule
DENSE_SCHEDULES=$(echo "$SCHEDULES" | sed 's/\bfused\b//g')    # FCN, VEC, LCN: no fused schedule
KB="python3 bench/kernel_bench.py --repeats 3 --min-seconds 0.2 --budget-seconds 3"

section "plan for config/gpu.yaml (H200-hours at symflow.costs.RATES)" 30 \
    python3 -m symflow.cli plan --configfile config/gpu.yaml --stages
section "a GPU job's start-up: python, jax with CUDA, symflow's training and kernels, one compiled call (3 processes)" 25 \
    bash -c 'TIMEFORMAT="start-up: %R s wall"; for i in 1 2 3; do time python3 -c "import jax, symflow.train, symflow.kernels
jax.jit(lambda x: x + 1)(jax.numpy.ones(8)).block_until_ready()"; done'
section "device pinning: a job with gpus=0 on the CPU, with gpus=1 on the GPU" 25 \
    bash -c 'for g in 0 1; do python3 -c "from symflow.runtime import configure_jax; configure_jax(1, resources={\"gpu\": $g})
import jax; from symflow.h5io import jax_device; print(\"pinning: gpus=$g ->\", jax_device())"; done'
section "packed training, 8 x 8" 85 \
    python3 bench/packed_training.py --resolutions 8 --widths 16 32 128 --pack 8 --steps 200 --repeats 1 \
    --csv "$OUT/packed_training_r8.csv"
section "packed training, 32 x 32" 70 \
    python3 bench/packed_training.py --resolutions 32 --widths 16 128 --pack 8 --steps 200 --repeats 1 \
    --csv "$OUT/packed_training_r32.csv"
section "kernels: FCN at 8, 16, 32 (one call of 1M pairs)" 40 \
    $KB --archs FCN --resolutions 8 16 32 --n 1024 --batch 1024 --schedule $DENSE_SCHEDULES --csv "$OUT/kernel_fcn.csv"
section "kernels: VEC, LCN at 8 (256k pairs a call)" 40 \
    $KB --archs VEC LCN --resolutions 8 --n 1024 --batch 512 --schedule $DENSE_SCHEDULES --csv "$OUT/kernel_vec_r8.csv"
section "kernels: VEC, LCN at 16 and 32 (65k and 16k pairs a call)" 50 \
    bash -c "$KB --archs VEC LCN --resolutions 16 --n 512 --batch 256 --schedule $DENSE_SCHEDULES --csv $OUT/kernel_vec_r16.csv && \
             $KB --archs VEC LCN --resolutions 32 --n 256 --batch 128 --schedule $DENSE_SCHEDULES --csv $OUT/kernel_vec_r32.csv"
section "kernels: GAP, LAP4, LAP8 at 32 (64 pairs a call; GAP >= 15,000 pairs/s asked)" 60 \
    $KB --archs GAP LAP4 LAP8 --resolutions 32 --n 16 --batch 8 --schedule $SPATIAL_SCHEDULES --csv "$OUT/kernel_spatial_r32.csv"
section "kernels: GAP, LAP4, LAP8 at 8 and 16" 60 \
    bash -c "$KB --archs GAP LAP4 LAP8 --resolutions 8 --n 256 --batch 128 --schedule $SPATIAL_SCHEDULES --csv $OUT/kernel_spatial_r8.csv && \
             $KB --archs GAP LAP4 LAP8 --resolutions 16 --n 64 --batch 32 --schedule $SPATIAL_SCHEDULES --csv $OUT/kernel_spatial_r16.csv"
section "GPU sharing: 4 training jobs at once against one (resources.jobs_per_gpu)" 60 \
    python3 bench/gpu_sharing.py --jobs 4 --resolution 32 --width 16 --steps 300
section "tests/test_engine.py on the GPU" 80 \
    python3 -m pytest -q -p no:cacheprovider --tb=line tests/test_engine.py
section "tests/test_train_packed.py at full float32 precision" 60 \
    env JAX_DEFAULT_MATMUL_PRECISION=highest python3 -m pytest -q -p no:cacheprovider --tb=line tests/test_train_packed.py
echo "== report (bench/gpu_report.py; $((SECONDS - START)) s elapsed)"
timeout -k 5 40 python3 bench/gpu_report.py "$OUT" --markdown "$OUT/gpu_report.md" --replan config/gpu.yaml
echo "-- report: exit $?"
echo "== done in $((SECONDS - START)) s"
