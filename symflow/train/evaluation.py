"""Evaluating a network: outputs in chunks, accuracy, MSE, S-Dist and output spread on the
splits of a dataset, and the rule that selects the evaluation a run reports."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from symflow.results import SELECTIONS, accuracy, mse  # noqa: F401 (re-exported by symflow.train)


@dataclass
class Split:
    """One split of a dataset: inputs, one-hot targets, integer labels."""

    x: Any
    y: Any
    labels: np.ndarray


def predict(
    apply_fn: Callable, params, x, batch_size: int = 500, jitted: Callable | None = None, pad: bool = False
) -> np.ndarray:
    """Network outputs on x in chunks of one size (the last one padded), so one compilation.

    The chunk is min(batch_size, len(x)), or exactly batch_size with pad=True (then
    several inputs of different lengths share the compiled function).
    """
    import jax
    import jax.numpy as jnp

    f = jitted or jax.jit(apply_fn)
    n = x.shape[0]
    b = int(batch_size) if pad else min(int(batch_size), n)
    out = []
    for start in range(0, n, b):
        xb = x[start : start + b]
        k = xb.shape[0]
        if k < b:
            xb = jnp.concatenate([xb, jnp.zeros((b - k,) + xb.shape[1:], xb.dtype)])
        out.append(np.asarray(f(params, xb))[:k])
    return np.concatenate(out)


def s_dist(a: np.ndarray, b: np.ndarray) -> float:
    """S-Dist (App. E, S15/S16): E_x |a(x) - b(x)|^2, squared norm over outputs, mean over x."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"S-Dist of outputs with shapes {a.shape} and {b.shape}")
    return float(np.mean(np.sum((a - b) ** 2, axis=-1)))


class _Evaluator:
    def __init__(self, apply_fn: Callable, train: Split, val: Split, test: Split, batch_size: int):
        import jax

        self.f = jax.jit(apply_fn)
        self.apply_fn = apply_fn
        self.splits = {"train": train, "val": val, "test": test}
        self.y = {k: np.asarray(s.y, np.float64) for k, s in self.splits.items()}
        # one chunk size for every split: one compilation of the forward pass
        self.batch_size = max(1, min(int(batch_size), max(s.x.shape[0] for s in self.splits.values())))

    def __call__(self, params) -> dict[str, Any]:
        return self.metrics(
            {
                name: predict(self.apply_fn, params, s.x, self.batch_size, self.f, pad=True)
                for name, s in self.splits.items()
                if s.x.shape[0] > 0
            }
        )

    def metrics(self, outputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """The evaluation from the network's outputs on each non-empty split (a packed job
        computes the outputs of all its runs at once, symflow.train.packed)."""
        out: dict[str, Any] = {}
        for name, s in self.splits.items():
            if s.x.shape[0] == 0:
                out[f"{name}_accuracy"], out[f"{name}_mse"], out[f"{name}_outputs"] = math.nan, math.nan, s.y
                continue
            o = outputs[name]
            out[f"{name}_outputs"] = o
            out[f"{name}_accuracy"] = accuracy(o, s.labels)
            out[f"{name}_mse"] = mse(o, self.y[name])
        out["finite"] = all(np.isfinite(out[f"{n}_outputs"]).all() for n in self.splits)
        out["train_spread"] = output_spread(out["train_outputs"]) if out["finite"] else math.nan
        return out


def output_spread(outputs: np.ndarray) -> float:
    """How much a network's outputs vary over examples: std over examples, mean over logits."""
    o = np.asarray(outputs, np.float64)
    if o.shape[0] < 2:
        return math.inf
    return float(np.mean(np.std(o, axis=0)))


def select_evaluation(rows: Sequence[Mapping[str, float]], selection: str = "val") -> int:
    """Index of the evaluation a run reports, among finite evaluations `rows` (dicts with
    val_accuracy, val_mse, test_accuracy): selection "val" takes the highest validation
    accuracy, ties broken by the lower validation MSE, then the earlier evaluation;
    "test" the highest test accuracy (the earliest on ties). The same rule as the
    incremental tracking in :func:`train_and_evaluate`."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
    best = None
    for i, r in enumerate(rows):
        if best is None or _better(r, rows[best], selection):
            best = i
    if best is None:
        raise ValueError("no evaluation to select from")
    return best


def _better(new: Mapping[str, float], old: Mapping[str, float] | None, selection: str) -> bool:
    if old is None:
        return True
    if selection == "test":
        return new["test_accuracy"] > old["test_accuracy"]
    if new["val_accuracy"] != old["val_accuracy"]:
        return new["val_accuracy"] > old["val_accuracy"]
    return new["val_mse"] < old["val_mse"]
