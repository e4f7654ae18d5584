"""GPU-hours of an ImageNet training job, for the plan.

Where the rate comes from: the flax ImageNet example's README reports ResNet-50 on 8 x V100
with mixed precision (configs/v100_x8_mixed_precision.py, batch 2048) as 62,500 steps in 4.3 h,
that is 62,500 x 2,048 / (4.3 x 3,600) = 8,269 images/s, about 1,034 per V100, its evaluations
included. Other models scale by their forward FLOPs per image (:data:`FORWARD_GFLOPS`, measured
from these models by XLA's cost analysis, :func:`model_flops`), and other image sizes by the
number of pixels. A rate measured on the user's GPUs (images/s per GPU of ResNet-50) replaces
the V100 figure: `per_gpu_rate`. These are planning numbers, not measurements of a run: a run's
own throughput is in its log and in point.csv (images_per_s).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

# flax examples/imagenet/README.md, "v100_x8_mixed_precision": 62,500 steps of 2,048 images in 4.3 h on 8 V100s
REFERENCE_MODEL = "ResNet50"
REFERENCE_IMAGES_PER_S = 62_500 * 2_048 / (4.3 * 3_600)
REFERENCE_GPUS = 8
REFERENCE_IMAGE_SIZE = 224

# forward GFLOPs per 224 x 224 image (2 per multiply-add), XLA's cost analysis of symflow.imagenet.models
# (model_flops; tests/test_imagenet_cost.py checks two of them against it); other models are measured when asked
FORWARD_GFLOPS = {
    "ResNet18": 3.373,
    "ResNet34": 6.768,
    "ResNet50": 7.947,
    "ResNet101": 15.03,
    "ResNet152": 22.161,
    "ResNet200": 29.019,
    "MixerS16": 7.608,
}
EVAL_FRACTION = 1 / 3  # an evaluated image costs a forward pass, a trained one forward + backward (~3 forwards)


@functools.lru_cache(maxsize=32)
def forward_gflops(model: str) -> float:
    """The table's value, or for a model outside it (a plug-in, the tiny test models) XLA's measure."""
    return FORWARD_GFLOPS[model] if model in FORWARD_GFLOPS else model_flops(model) / 1e9


def model_flops(name: str, image_size: int = REFERENCE_IMAGE_SIZE, **overrides) -> float:
    """Forward FLOPs of one image through `name` (XLA's cost analysis of the lowered computation)."""
    import jax
    import jax.numpy as jnp

    from symflow.imagenet.models import build_model

    model = build_model(name, **overrides)
    x = jax.ShapeDtypeStruct((1, image_size, image_size, 3), jnp.float32)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(x.shape), train=False))
    analysis = jax.jit(lambda v, x: model.apply(v, x, train=False)).lower(variables, x).cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return float(analysis["flops"])


def images_per_s(model: str, gpus: int, *, per_gpu_rate: float | None = None,
                 image_size: int = REFERENCE_IMAGE_SIZE) -> float:
    """Training images/s of `model` on `gpus` GPUs: ResNet-50's rate per GPU (the flax example's
    V100 figure unless `per_gpu_rate`), scaled by ResNet-50's FLOPs over the model's and by pixels."""
    base = REFERENCE_IMAGES_PER_S / REFERENCE_GPUS if per_gpu_rate is None else float(per_gpu_rate)
    scale = FORWARD_GFLOPS[REFERENCE_MODEL] / forward_gflops(model) * (REFERENCE_IMAGE_SIZE / image_size) ** 2
    return base * int(gpus) * scale


@dataclass(frozen=True)
class JobCost:
    gpu_hours: float
    wall_hours: float
    images_per_s: float  # the rate assumed, all GPUs of the job
    train_images: float
    eval_images: float


def job_cost(model: str, m: int, *, epochs: float = 150.0, gpus: int = 8, eval_every_epochs: float = 1.0,
             test_images: int = 50_000, per_gpu_rate: float | None = None,
             image_size: int = REFERENCE_IMAGE_SIZE) -> JobCost:
    """The cost of one training run (model, m): m x epochs training images and a test-set evaluation
    every eval_every_epochs and at the end, at the assumed rate on `gpus` GPUs."""
    rate = images_per_s(model, gpus, per_gpu_rate=per_gpu_rate, image_size=image_size)
    train = float(m) * float(epochs)
    evals = int(float(epochs) // float(eval_every_epochs)) + 1 if eval_every_epochs else 1
    evaluated = float(evals * test_images)
    seconds = (train + EVAL_FRACTION * evaluated) / rate
    return JobCost(gpu_hours=seconds * gpus / 3600, wall_hours=seconds / 3600, images_per_s=rate,
                   train_images=train, eval_images=evaluated)
