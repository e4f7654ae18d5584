"""Training throughput of symflow's ImageNet step (issue 19): images/s of one model at 224 x 224,
bfloat16 and float32, on every local device, with the transform tau inside the step.

The step is symflow.imagenet.train.make_steps' own (normalise, tau, forward, backward, Nesterov
SGD, weight decay), fed uint8 batches already on the device, so this measures the accelerator,
not the input pipeline (a real run also needs the host to decode and augment this many JPEGs a
second: see the `workers` knob). The flax example's reference: ResNet-50 on 8 V100s with mixed
precision at about 8,270 images/s, about 1,030 per V100 (symflow.imagenet.cost).

    PYTHONPATH=$PWD .venv/bin/python bench/imagenet_throughput.py --model ResNet50 --batch 256 \\
        --precision bf16 fp32 --steps 30

Prints one line per precision and a markdown table; --csv appends the rows to a file.
Tiny CPU check: --model ResNetTiny --image-size 32 --batch 16 --steps 3 --warmup 1.
"""

from __future__ import annotations

import argparse
import csv
import time


def measure(model: str, precision: str, batch: int, image_size: int, steps: int, warmup: int, transform: str) -> dict:
    import dataclasses

    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh

    from symflow.groups import parse_spec
    from symflow.imagenet.models import build_model
    from symflow.imagenet.train import Recipe, init_state, make_steps
    from symflow.imagenet.transforms import device_transform

    recipe = dataclasses.replace(Recipe(), batch_size=batch, image_size=image_size, half_precision=precision == "bf16")
    devices = jax.devices()
    mesh = Mesh(np.asarray(devices), ("data",))
    net = build_model(model, dtype=jnp.bfloat16 if recipe.half_precision else jnp.float32)
    tau = device_transform(transform, 0, (image_size, image_size, 3))
    train, _, rep, split = make_steps(net, parse_spec(tau.spec).group, recipe, mesh)
    state = jax.device_put(init_state(net, jax.random.key(0), image_size, recipe), rep)
    element = jax.device_put(tau.element, rep)
    rng = np.random.default_rng(0)
    images = jax.device_put(rng.integers(0, 256, (batch, image_size, image_size, 3), dtype=np.uint8), split)
    labels = jax.device_put(rng.integers(0, 1000, batch).astype(np.int32), split)
    lr = np.float32(0.1)
    t0 = time.perf_counter()
    for _ in range(warmup):  # compilation, then steady state
        state, metrics = train(state, images, labels, element, lr)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        state, metrics = train(state, images, labels, element, lr)
    jax.block_until_ready(metrics)
    seconds = time.perf_counter() - t0
    rate = steps * batch / seconds
    return {"model": model, "precision": precision, "transform": tau.spec, "batch": batch, "image_size": image_size,
            "devices": f"{len(devices)} x {devices[0].device_kind}", "images_per_s": round(rate, 1),
            "images_per_s_per_device": round(rate / len(devices), 1), "step_ms": round(1000 * seconds / steps, 2),
            "warmup_s": round(compile_s, 1), "loss": float(metrics["loss"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="ResNet50")
    ap.add_argument("--precision", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32"])
    ap.add_argument("--batch", type=int, default=256, help="global batch (a multiple of the device count)")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--transform", default="o3_pixel")
    ap.add_argument("--csv", default=None)
    args = ap.parse_args()
    rows = []
    for precision in args.precision:
        row = measure(args.model, precision, args.batch, args.image_size, args.steps, args.warmup, args.transform)
        print(row, flush=True)
        rows.append(row)
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    if args.csv:
        with open(args.csv, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            if fh.tell() == 0:
                w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
