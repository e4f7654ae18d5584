"""The ImageNet training runs that a set of settings asks for, enumerated once, with their cost.

`settings` is the plain mapping under ``imagenet:`` of a config (config/imagenet.yaml; this
module reads no file). A run is (model, transform, m, seed) (:class:`RunKey`); Fig. 5's curves
and Fig. S3 ask for every subset m_i, Fig. 5's depths and Fig. S4 for the full training set; a
run asked for by several figures is one run. The workflow's job records
(symflow.jobs.ImageNetRun: the run's paths under :func:`settings_tag`) are built from these.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from symflow.imagenet.data import TRAIN_IMAGES, subset_sizes

@dataclass(frozen=True, order=True)
class RunKey:
    """What tells one run from another under the same settings (the rest: :func:`recipe_settings`)."""

    model: str
    transform: str
    m: int
    seed: int


def recipe_settings(settings: Mapping[str, Any]) -> dict:
    """The settings that determine every run's result besides (model, transform, m, seed)."""
    from symflow.imagenet.train import Recipe

    names = {f.name for f in fields(Recipe)}
    recipe = Recipe(**{k: v for k, v in dict(settings.get("recipe", {})).items() if k in names},
                    image_size=int(settings.get("image_size", 224)))
    return {"recipe": asdict(recipe), "subset_seed": int(settings.get("subsets", {}).get("seed", 0))}


def settings_tag(settings: Mapping[str, Any]) -> str:
    """A short digest of recipe_settings: runs with other recipes land in other folders."""
    text = json.dumps(recipe_settings(settings), sort_keys=True)
    return "r" + hashlib.sha256(text.encode()).hexdigest()[:10]


def train_images(settings: Mapping[str, Any]) -> int:
    """m of the full training set: settings' train_images (default ILSVRC2012's 1,281,167); the
    conversion checks that the source has exactly this many, so paths are known before it runs."""
    return int(settings.get("train_images", TRAIN_IMAGES))


def runs(settings: Mapping[str, Any]) -> list[RunKey]:
    """Every run the figures of `settings` need, each once, sorted."""
    total = train_images(settings)
    sizes = subset_sizes(total, int(settings.get("subsets", {}).get("count", 12)))
    fig5 = settings.get("fig5", {})
    want: set[RunKey] = set()

    def add(section: Mapping[str, Any] | None, ms: list[int]) -> None:
        section = section or {}
        for model in section.get("models", []):
            for transform in section.get("transforms", []):
                for seed in section.get("seeds", [0]):
                    want.update(RunKey(model, transform, int(m), int(seed)) for m in ms)

    add(fig5.get("curves"), sizes)
    add(settings.get("figS3"), sizes)
    add(fig5.get("depths"), [total])
    add(settings.get("figS4"), [total])
    return sorted(want)


def run_costs(settings: Mapping[str, Any]):
    """One row per run with its GPU-hours and wall hours (symflow.imagenet.cost): a DataFrame."""
    import pandas as pd

    from symflow.imagenet.cost import job_cost

    recipe = recipe_settings(settings)["recipe"]
    resources = settings.get("resources", {})
    rows = []
    for run in runs(settings):
        cost = job_cost(run.model, run.m, epochs=recipe["epochs"], gpus=int(resources.get("gpus_per_job", 8)),
                        eval_every_epochs=recipe["eval_every_epochs"], per_gpu_rate=resources.get("per_gpu_rate"),
                        image_size=recipe["image_size"])
        rows.append({**asdict(run), "gpu_hours": cost.gpu_hours, "wall_hours": cost.wall_hours,
                     "images_per_s": cost.images_per_s})
    return pd.DataFrame(rows, columns=["model", "transform", "m", "seed", "gpu_hours", "wall_hours", "images_per_s"])
