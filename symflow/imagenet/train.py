"""Training on ImageNet: the flax ImageNet example's recipe (App. B.2), one run per call.

The recipe (:class:`Recipe`, the example's configs/default.py and tpu.py, 150 epochs as the
paper): SGD with Nesterov momentum 0.9; peak learning rate 0.1 x batch / 256 reached by a
linear warm-up over 5 epochs, then cosine decay to 0; weight decay 1e-4 as 0.5 wd |w|^2 added
to the loss for kernels only (parameters of rank > 1); cross-entropy; random-resized crop and
flip for training, centre crop for evaluation, ImageNet mean/std normalisation
(symflow.imagenet.data); bfloat16 compute where `half_precision` (the example uses bfloat16 on
TPU, float16 with loss scaling on GPU; bfloat16 needs no loss scaling on current GPUs).
The epochs are epochs over the run's m images, so a subset run takes fewer steps.

A run (:func:`train_and_evaluate`) is data-parallel over every local device: a mesh with one
axis 'data', the batch split along it, parameters and optimiser state replicated, so BatchNorm
statistics are over the global batch (the example's synchronised BatchNorm). The transform tau
acts inside the jitted step on the normalised batch, in training and in evaluation.

Resumption: an orbax checkpoint (state, the history so far, a fingerprint of everything that
determines the run) at every evaluation and every `checkpoint_every` steps; a restarted run
restores it and continues the same data stream from that step (the input pipeline is a
function of (seed, position)), so a killed run ends where an uninterrupted one does. A
checkpoint with another fingerprint is ignored, with a warning.

:func:`run_imagenet` is one workflow job: train, then write run.h5 (history and provenance),
metrics.csv (symflow.results.RUN_COLUMNS, stage 'imagenet') and point.csv (the learning-curve
point, symflow.imagenet.results.POINT_COLUMNS).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from symflow.imagenet import data as D

_log = logging.getLogger(__name__)
STAGE = "imagenet"
INFERENCE = "sgd"


@dataclass(frozen=True)
class Recipe:
    """What determines a run's trajectory besides (model, transform, seed, m, data)."""

    epochs: float = 150.0
    batch_size: int = 1024
    base_lr: float = 0.1  # peak learning rate = base_lr x batch_size / 256
    warmup_epochs: float = 5.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    image_size: int = D.IMAGE_SIZE
    half_precision: bool = True
    eval_every_epochs: float = 1.0  # evaluations on the test set (and the last step): the history of Fig. S4

    @property
    def peak_lr(self) -> float:
        return self.base_lr * self.batch_size / 256.0

    def total_steps(self, m: int) -> int:
        return int(m * self.epochs) // self.batch_size

    def steps_per_epoch(self, m: int) -> float:
        return m / self.batch_size

    def eval_steps(self, m: int) -> list[int]:
        """Steps after which the test set is evaluated: every eval_every_epochs, and the last step."""
        total, per_epoch = self.total_steps(m), self.steps_per_epoch(m)
        k = np.arange(1, int(self.epochs / self.eval_every_epochs) + 1) * self.eval_every_epochs
        return sorted({min(total, max(1, int(round(e * per_epoch)))) for e in k} | {total})


@dataclass
class History:
    rows: list[dict] = field(default_factory=list)

    def add(self, **row) -> None:
        self.rows.append(row)

    def arrays(self) -> dict[str, np.ndarray]:
        from symflow.imagenet.results import HISTORY_ARRAYS

        return {k: np.asarray([r[k] for r in self.rows], dtype=np.int64 if k == "step" else np.float64)
                for k in HISTORY_ARRAYS}


@dataclass
class RunResult:
    top1: float
    top5: float
    loss: float
    best_top1: float
    train_loss: float
    train_top1: float
    steps: int
    epochs: float
    images_per_s: float
    wall_time_s: float
    failed: bool
    reason: str
    history: History
    state: Any = None


def run_key(seed: int, purpose: str) -> int:
    """A seed for one purpose of a run (init, data order) from the run's seed."""
    return int(np.random.SeedSequence([int(seed), zlib.crc32(purpose.encode())]).generate_state(1)[0])


def fingerprint(**identity: Any) -> str:
    text = json.dumps({k: identity[k] for k in sorted(identity)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# -- state, steps ---------------------------------------------------------------------------------


def learning_rate(recipe: Recipe, m: int, step) -> np.ndarray:
    """The learning rate of update `step` (0-based): linear warm-up from 0 to the peak over
    warmup_epochs, then cosine decay to 0 at the last step (optax's linear_schedule joined to
    cosine_decay_schedule, as the flax example; computed in numpy on the host)."""
    step = np.asarray(step, dtype=np.float64)
    warmup = int(round(recipe.warmup_epochs * recipe.steps_per_epoch(m)))
    decay = max(recipe.total_steps(m) - warmup, 1)
    t = np.clip(step - warmup, 0, decay) / decay
    cosine = recipe.peak_lr * 0.5 * (1 + np.cos(np.pi * t))
    return np.where(step < warmup, recipe.peak_lr * step / max(warmup, 1), cosine)


def _optimizer(recipe: Recipe):
    """SGD's momentum (Nesterov) without the learning rate: the step scales the update by -lr(step),
    which is optax.sgd(lr_fn, momentum, nesterov) exactly, with lr a traced argument."""
    import optax

    return optax.trace(decay=recipe.momentum, nesterov=recipe.nesterov)


def _init_state(variables, recipe: Recipe) -> dict:
    params = variables["params"]
    return {"step": np.int32(0), "params": params, "batch_stats": variables.get("batch_stats", {}),
            "opt_state": _optimizer(recipe).init(params)}


def init_state(model, key, image_size: int, recipe: Recipe) -> dict:
    """{'step', 'params', 'batch_stats' (empty for models without BatchNorm), 'opt_state'}."""
    return _init_fn(model, int(image_size), recipe)(key)


@functools.lru_cache(maxsize=8)
def _init_fn(model, image_size: int, recipe: Recipe):
    import jax
    import jax.numpy as jnp

    return jax.jit(lambda key: _init_state(
        model.init(key, jnp.zeros((1, image_size, image_size, 3), jnp.float32), train=False), recipe))


def _inputs(images, element, group: str, dtype):
    from symflow.imagenet.transforms import DEVICE_ACTIONS, normalise

    return DEVICE_ACTIONS[group](element, normalise(images, D.MEAN_RGB, D.STDDEV_RGB)).astype(dtype)


def _cross_entropy(logits, labels):
    import optax

    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


@functools.lru_cache(maxsize=8)
def make_steps(model, group: str, recipe: Recipe, mesh):
    """Jitted (train_step, eval_step) of `model` for transforms of `group` (the element and the
    learning rate are arguments): batch sharded over the mesh's 'data' axis, state replicated.
    Cached, so runs of one process that differ only in seed or m share their compilations."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax.sharding import NamedSharding, PartitionSpec as P

    dtype = jnp.bfloat16 if recipe.half_precision else jnp.float32
    rep, split = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    tx = _optimizer(recipe)

    def variables(state):
        bn = state["batch_stats"]
        return {"params": state["params"], **({"batch_stats": bn} if jax.tree_util.tree_leaves(bn) else {})}

    def train_step(state, images, labels, element, lr):
        x = _inputs(images, element, group, dtype)
        has_bn = bool(jax.tree_util.tree_leaves(state["batch_stats"]))

        def loss_fn(params):
            v = {**variables(state), "params": params}
            if has_bn:
                logits, updates = model.apply(v, x, train=True, mutable=["batch_stats"])
            else:
                logits, updates = model.apply(v, x, train=True), {}
            ce = jnp.mean(_cross_entropy(logits, labels))
            l2 = sum(jnp.sum(w**2) for w in jax.tree_util.tree_leaves(params) if w.ndim > 1)
            return ce + 0.5 * recipe.weight_decay * l2, (ce, logits, updates)

        (_, (ce, logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        direction, opt_state = tx.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], jax.tree_util.tree_map(lambda d: -lr * d, direction))
        new = {"step": state["step"] + 1, "params": params, "opt_state": opt_state,
               "batch_stats": updates.get("batch_stats", state["batch_stats"])}
        return new, {"loss": ce, "top1": jnp.mean(jnp.argmax(logits, -1) == labels)}

    def eval_step(state, images, labels, mask, element):
        logits = model.apply(variables(state), _inputs(images, element, group, dtype), train=False)
        top5 = jax.lax.top_k(logits, min(5, logits.shape[-1]))[1]
        w = mask.astype(jnp.float32)
        return {"loss": jnp.sum(w * _cross_entropy(logits, labels)),
                "top1": jnp.sum(w * (jnp.argmax(logits, -1) == labels)),
                "top5": jnp.sum(w * jnp.any(top5 == labels[:, None], axis=-1)),
                "count": jnp.sum(w)}

    train = jax.jit(train_step, in_shardings=(rep, split, split, rep, rep), out_shardings=(rep, rep),
                    donate_argnums=0)
    evaluate = jax.jit(eval_step, in_shardings=(rep, split, split, split, rep), out_shardings=rep)
    return train, evaluate, rep, split


def evaluate_test(evaluate, state, shards, element, recipe: Recipe, split_sharding, limit: int | None = None,
                  threads: int = 4) -> dict[str, float]:
    """top1, top5 and mean cross-entropy on the ILSVRC2012 validation images (the paper's test set)."""
    import jax

    sums = {"loss": 0.0, "top1": 0.0, "top5": 0.0, "count": 0.0}
    for batch in D.eval_batches(shards, batch_size=recipe.batch_size, image_size=recipe.image_size, limit=limit,
                                threads=threads):
        put = [jax.device_put(batch[k], split_sharding) for k in ("image", "label", "mask")]
        out = jax.device_get(evaluate(state, *put, element))
        for k in sums:
            sums[k] += float(out[k])
    n = max(sums["count"], 1.0)
    return {"top1": sums["top1"] / n, "top5": sums["top5"] / n, "loss": sums["loss"] / n, "count": int(sums["count"])}


# -- checkpoints ----------------------------------------------------------------------------------


class Checkpoints:
    """The latest training state of a run under `folder` (orbax), with its history and fingerprint."""

    def __init__(self, folder: str | os.PathLike, fingerprint: str, log: logging.Logger):
        import orbax.checkpoint as ocp

        self.folder, self.fingerprint, self.log = Path(folder).resolve(), fingerprint, log
        self.manager = ocp.CheckpointManager(
            self.folder, options=ocp.CheckpointManagerOptions(max_to_keep=1, enable_async_checkpointing=False))

    def save(self, step: int, state, meta: dict) -> None:
        import orbax.checkpoint as ocp

        from symflow.faults import fault_point

        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave({**meta, "fingerprint": self.fingerprint})),
            force=True)
        self.manager.wait_until_finished()
        fault_point("imagenet.checkpoint", str(self.folder))

    def restore(self, state):
        """(state, meta) of the latest checkpoint, or (state, None) where there is none that fits."""
        import jax
        import orbax.checkpoint as ocp

        step = self.manager.latest_step()
        if step is None:
            return state, None
        try:
            meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
            if meta.get("fingerprint") != self.fingerprint:
                self.log.warning("checkpoint %s ignored: it belongs to other run settings; starting from step 0",
                                 self.folder)
                return state, None
            abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, state)
            restored = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
        except Exception as exc:  # an unreadable checkpoint: start afresh, never crash
            self.log.warning("checkpoint %s ignored (%s); starting from step 0", self.folder, exc)
            return state, None
        return restored["state"], meta

    def remove(self) -> None:
        import shutil

        self.manager.close()
        shutil.rmtree(self.folder, ignore_errors=True)


# -- the run ----------------------------------------------------------------------------------------


def train_and_evaluate(
    shards: D.Shards,
    *,
    model: str,
    transform: str,
    seed: int,
    m: int,
    subset_seed: int = 0,
    recipe: Recipe = Recipe(),
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
    log_every: int = 100,
    workers: int = 0,
    threads: int = 4,
    eval_limit: int | None = None,
    model_overrides: dict | None = None,
    log: logging.Logger | None = None,
) -> RunResult:
    """Train `model` on the first m images of the fixed permutation, tau = `transform` drawn with
    `seed`, and evaluate on the test set every recipe.eval_every_epochs and at the end.

    Speed knobs (never change the result): checkpoint_every, log_every, workers (input processes),
    threads. eval_limit: evaluate on the first eval_limit test images only (tests).
    """
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh

    from symflow.groups import parse_spec
    from symflow.imagenet.models import build_model
    from symflow.imagenet.transforms import device_transform

    log = log or _log
    start_wall = time.perf_counter()
    devices = jax.devices()
    if recipe.batch_size % len(devices):
        raise ValueError(f"batch_size {recipe.batch_size} must be a multiple of the {len(devices)} devices")
    mesh = Mesh(np.asarray(devices), ("data",))
    indices = D.subset_indices(shards, m, subset_seed)
    total = recipe.total_steps(m)
    if total < 1:
        raise ValueError(f"m = {m} x {recipe.epochs} epochs is less than one batch of {recipe.batch_size}")
    shape = (recipe.image_size, recipe.image_size, 3)
    tau = device_transform(transform, seed, shape)
    net = build_model(model, num_classes=len(shards.classes),
                      dtype=jnp.bfloat16 if recipe.half_precision else jnp.float32, **(model_overrides or {}))
    state = init_state(net, jax.random.key(run_key(seed, "init")), recipe.image_size, recipe)
    train_step, eval_step, rep, split = make_steps(net, parse_spec(tau.spec).group, recipe, mesh)
    state = jax.device_put(state, rep)
    element = jax.device_put(tau.element, rep)
    history, start, spent, rates = History(), 0, 0.0, []
    ckpt = None
    if checkpoint_dir is not None:
        ckpt = Checkpoints(checkpoint_dir, fingerprint(
            model=model, overrides=model_overrides or {}, transform=tau.spec, seed=int(seed), m=int(m),
            subset_seed=int(subset_seed), recipe=asdict(recipe), data=shards.digest, eval_limit=eval_limit,
            format=1), log)
        state, meta = ckpt.restore(state)
        if meta is not None:
            start, spent, rates = int(meta["step"]), float(meta["wall_time_s"]), list(meta["rates"])
            history.rows = list(meta["history"])
            log.info("resumed from the checkpoint at step %d of %d (%s)", start, total, checkpoint_dir)
    log.info("%s on %s (seed %d), m = %d (subset seed %d): %d steps of %d images (%.4g epochs), peak lr %.4g, "
             "%s, %d device(s): %s", model, tau.spec, seed, m, subset_seed, total, recipe.batch_size, recipe.epochs,
             recipe.peak_lr, "bfloat16" if recipe.half_precision else "float32", len(devices), devices[0].platform)
    batches, _ = D.train_batches(shards, indices, batch_size=recipe.batch_size, epochs=recipe.epochs,
                                 seed=run_key(seed, "order"), image_size=recipe.image_size, start_step=start,
                                 workers=workers, threads=threads)
    evals = set(recipe.eval_steps(m))
    window, window_start, last = [], time.perf_counter(), {"loss": math.nan, "top1": math.nan}
    failed, reason, step = False, "", start
    for step, batch in enumerate(batches, start + 1):
        images = jax.device_put(batch["image"], split)
        labels = jax.device_put(batch["label"], split)
        state, metrics = train_step(state, images, labels, element, np.float32(learning_rate(recipe, m, step - 1)))
        window.append(metrics)
        if step % log_every == 0 or step in evals:
            got = jax.device_get(window)
            last = {k: float(np.mean([g[k] for g in got])) for k in ("loss", "top1")}
            rate = len(got) * recipe.batch_size / max(time.perf_counter() - window_start, 1e-9)
            rates.append(rate)
            log.info("step %d/%d (epoch %.2f/%g): train loss %.4f, top-1 %.4f, lr %.4g, %.0f images/s", step, total,
                     step / recipe.steps_per_epoch(m), recipe.epochs, last["loss"], last["top1"],
                     float(learning_rate(recipe, m, step)), rate)
            window = []
            if not math.isfinite(last["loss"]):
                failed, reason = True, f"training loss is {last['loss']} at step {step}"
                log.error("diverged: %s", reason)
                break
            if step in evals:
                t0 = time.perf_counter()
                ev = evaluate_test(eval_step, state, shards, element, recipe, split, eval_limit, threads)
                history.add(epoch=step / recipe.steps_per_epoch(m), step=step, test_top1=ev["top1"],
                            test_top5=ev["top5"], test_loss=ev["loss"], train_loss=last["loss"],
                            train_top1=last["top1"], lr=float(learning_rate(recipe, m, step)), images_per_s=rate)
                log.info("epoch %.2f: test top-1 %.4f, top-5 %.4f, loss %.4f (%d images, %.1f s)",
                         step / recipe.steps_per_epoch(m), ev["top1"], ev["top5"], ev["loss"], ev["count"],
                         time.perf_counter() - t0)
            window_start = time.perf_counter()
        if ckpt is not None and (step in evals or step % checkpoint_every == 0) and step < total:
            ckpt.save(step, state, {"step": step, "history": history.rows, "rates": rates,
                                    "wall_time_s": spent + time.perf_counter() - start_wall})
    final = history.rows[-1] if history.rows and not failed else {}
    result = RunResult(
        top1=final.get("test_top1", math.nan), top5=final.get("test_top5", math.nan),
        loss=final.get("test_loss", math.nan),
        best_top1=max((r["test_top1"] for r in history.rows), default=math.nan),
        train_loss=last["loss"], train_top1=last["top1"], steps=int(step), epochs=step / recipe.steps_per_epoch(m),
        images_per_s=float(np.median(rates)) if rates else math.nan,
        wall_time_s=spent + time.perf_counter() - start_wall, failed=failed, reason=reason, history=history,
        state=state)
    log.info("done after %d steps (%.2f epochs): test top-1 %.4f, top-5 %.4f, loss %.4f; median %.0f images/s%s",
             result.steps, result.epochs, result.top1, result.top5, result.loss, result.images_per_s,
             f"; FAILED: {reason}" if failed else "")
    return result


def run_imagenet(
    shards_dir: str | os.PathLike,
    *,
    run_path: str | os.PathLike,
    metrics_path: str | os.PathLike,
    point_path: str | os.PathLike,
    checkpoint_dir: str | os.PathLike | None,
    model: str,
    transform: str,
    seed: int,
    m: int,
    subset_seed: int = 0,
    recipe: Recipe = Recipe(),
    dataset: str = "imagenet",
    keep_checkpoint: bool = False,
    log: logging.Logger | None = None,
    **knobs,
) -> RunResult:
    """One workflow job: train (resuming if a checkpoint fits), then write run.h5, metrics.csv and point.csv.

    knobs: checkpoint_every, log_every, workers, threads, eval_limit, model_overrides (see
    train_and_evaluate).
    """
    import jax

    from symflow.groups import parse_spec
    from symflow.h5io import package_versions, write_h5
    from symflow.imagenet.results import write_point
    from symflow.results import make_row, write_row

    log = log or _log
    shards = D.Shards(shards_dir)
    result = train_and_evaluate(shards, model=model, transform=transform, seed=seed, m=m, subset_seed=subset_seed,
                                recipe=recipe, checkpoint_dir=checkpoint_dir, log=log, **knobs)
    spec = parse_spec(transform)
    sizes = D.subset_sizes(shards.count("train"))
    subset = sizes.index(int(m)) if int(m) in sizes else None
    write_h5(run_path, result.history.arrays(), {
        "kind": "imagenet_run",
        "model": model,
        "model_overrides": knobs.get("model_overrides") or {},
        "transform": spec.id,
        "seed": int(seed),
        "subset_seed": int(subset_seed),
        "m": int(m),
        "subset": -1 if subset is None else subset,
        "recipe": asdict(recipe),
        "peak_lr": recipe.peak_lr,
        "steps": result.steps,
        "epochs": result.epochs,
        "top1": result.top1,
        "top5": result.top5,
        "loss": result.loss,
        "failed": int(result.failed),
        "reason": result.reason,
        "eval_limit": -1 if knobs.get("eval_limit") is None else int(knobs["eval_limit"]),
        "test_images": shards.count("val") if knobs.get("eval_limit") is None else int(knobs["eval_limit"]),
        "data_dir": str(Path(shards_dir).resolve()),
        "data_content_sha256": shards.digest,
        "data_source": shards.manifest["source"],
        "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        "images_per_s": result.images_per_s,
        "wall_time_s": result.wall_time_s,
        "versions": {**package_versions(), **_versions("grain", "array-record", "orbax-checkpoint")},
        "history": "one entry per evaluation: epoch, step, test top-1/top-5/loss, last train loss/top-1, lr, images/s",
    })
    row = make_row(
        stage=STAGE, dataset=dataset, transform=spec.id, group=spec.group, t="" if spec.t is None else spec.t,
        architecture=model, inference=INFERENCE, m=int(m), seed=int(seed), member=0, ensemble=1,
        accuracy=result.top1, best_test_accuracy=result.best_top1, train_accuracy=result.train_top1,
        failed=result.failed, failure="diverged" if result.failed else "", reason=result.reason, steps=result.steps,
        epochs=round(result.epochs, 3), lr=recipe.peak_lr, wall_time_s=round(result.wall_time_s, 3), path=str(run_path))
    write_row(metrics_path, row)
    write_point(point_path, model=model, transform=spec.id, group=spec.group, seed=int(seed),
                subset_seed=int(subset_seed), subset=subset, m=int(m), image_size=recipe.image_size,
                epochs=round(result.epochs, 3), steps=result.steps, batch_size=recipe.batch_size, top1=result.top1,
                top5=result.top5, error=1.0 - result.top1, loss=result.loss, best_top1=result.best_top1,
                train_loss=result.train_loss, failed=result.failed, reason=result.reason,
                images_per_s=round(result.images_per_s, 1), wall_time_s=round(result.wall_time_s, 3),
                dataset=dataset, path=str(run_path))
    if checkpoint_dir is not None and not keep_checkpoint:
        Checkpoints(checkpoint_dir, "", log).remove()
    return result


def _versions(*packages: str) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for p in packages:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "absent"
    return out
