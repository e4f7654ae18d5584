"""A config edit reruns exactly the jobs whose results it changes (issue 16).

After the smallest whole default target ran to the end, each knob of the config schema is
changed alone and `snakemake -n` says what it would run. The job model predicts it
(symflow.jobs.reruns: new paths, other settings, other inputs, and what lies downstream);
the two must name the same jobs, and every speed knob must plan nothing. The table
"What a config edit reruns" of docs/configuration.md (RERUN_PAGE) is generated here: set
SYMFLOW_WRITE_README=1 to rewrite it after a change, otherwise the test fails when the page
disagrees.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import CONFIG, REPO, REPORT, SAMPLE, TINY, planned, snakemake_cmd
from symflow.cli import _load_configs
from symflow.configuration import load_schema, validate
from symflow.jobs import SPEED_KNOBS, Jobs, reruns

# knob -> the value it is changed to (valid over tiny.yaml + report.yaml)
CHANGES: dict[str, object] = {
    "plugins": ["examples.channel_symmetry"],
    "data.source": "official",
    "data.sample_dir": "data/sample-copy",  # the same images in another folder
    "data.official_dir": "elsewhere/cifar-10",
    "data.folder": "data/my-images",  # the folder source's location: the source is `sample` here
    "data.n_train": 240,
    "data.n_val": 20,
    "data.n_test": 40,
    "data.test_holdout": 20,
    "data.resolution": 4,
    "data.split_seed": 1,
    "model.depth": 4,
    "model.weight_variance": 1.5,
    "model.bias_variance": 0.02,
    "model.filter_size": 5,
    "path_t": [0.0, 0.5],
    "figS2.images": 2,
    "figS2.seed": 1,
    "figS2.resolution": 4,
    "figS2.transforms": [identity := "identity", "o3_pixel"],
    "kernels.backend": "nt",
    "kernels.dtype": "float64",
    "kernels.block_size": {"default": 20, "GAP": 40, "LAP4": 40, "LAP8": 40},
    "kernels.threads": 2,
    "kernels.batch_size": 10,
    "kernels.reuse_invariant": False,
    "kernels.audit_size": 8,
    "kernels.audit_tolerance": 1e-5,
    "regression.threads": 1,
    "regression.kernels": ["ntk"],
    "regression.ridge_grid": [0.0, 0.001],
    "sgd.widths": {"VEC": 16},
    "sgd.batch_size": 20,
    "sgd.momentum": 0.8,
    "sgd.recipes": {"nn": {"lr_factor": 0.5, "l2": 0.0}},
    "sgd.max_steps": 30,
    "sgd.max_epochs": 500,
    "sgd.selection": "test",
    "sgd.eval_every": 5,
    "sgd.checkpoint_every": 5,
    "sgd.success_train_accuracy": 0.9,
    "sgd.lr_estimate_size": 16,
    "sgd.lr_estimate": "mc",
    "sgd.lr_estimate_samples": 3,
    "sgd.keep_checkpoints": True,
    "sgd.threads": 2,
    "sgd.pack": 2,
    "resources.gpu": 1,
    "resources.gpu_partition": "gpu",
    "resources.jobs_per_gpu": 4,
    "kernels.pack_minutes": 0,
    "resources.max_runtime": 30,  # a partition's time limit: runtime requests, retries  # every block its own job: a speed knob (the run packed them)
    "resources.compilation_cache": ".cache/other",
    "experiments.fig2.architectures": ["VEC", "FCN"],
    "experiments.fig2.transforms": ["identity", "o3_pixel"],
    "experiments.fig2.m": 80,
    "experiments.fig2.seeds": [0, 1],
    "experiments.fig2.recipes": ["nn"],
    "experiments.fig2.recipe_architectures": {"nn": ["FCN"]},
    "experiments.fig2.network_transforms": {"VEC": ["o3_pixel"]},  # report.yaml's Fig. 2 is VEC on identity alone
    "experiments.fig3.widths": [4, 8],
    "experiments.fig3.transforms": ["o3_shared"],
    "experiments.fig3.recipes": ["nn"],
    "experiments.fig3.m": 80,
    "experiments.fig3.seeds": [1],
    "experiments.fig4.m": [20, 40, 80],
    "experiments.fig4.recipe": "nn",
    "experiments.fig4.seeds": [1],
    "experiments.fig4.flip": True,
    "experiments.fig4.fit_points": 3,
    "experiments.figS1.widths": [8],
    "experiments.figS1.t": [0.0, 0.5],
    "experiments.figS1.ensemble": 2,
    "experiments.figS1.recipe": "nn",
    "experiments.figS1.m": 80,
    "experiments.figS1.seeds": [1],
    "experiments.figS5.architectures": ["FCN"],
    "experiments.figS5.transforms": ["o3_pixel"],
    "experiments.figS5.recipes": ["nn_plus"],
    "experiments.figS5.m": 80,
    "experiments.figS5.seeds": [1],
    "experiments.figS6.architectures": ["FCN"],
    "experiments.figS6.transforms": ["o3_pixel"],
    "experiments.figS6.m": [20, 80],
    "experiments.figS6.seeds": [1],
    "imagenet": {"train_images": 1281167},  # on, at the paper's settings (the schema's defaults)
}
# a second case of data.sample_dir: a folder whose SHA256SUMS differ (a new source)
OTHER_SOURCE = "data/sample-other"
BEGIN, END = "<!-- reruns:begin -->", "<!-- reruns:end -->"
RERUN_PAGE = REPO / "docs" / "configuration.md"  # the page that holds the generated table


def schema_knobs() -> list[str]:
    """Every leaf of the schema a user sets (a mapping of free keys, such as sgd.widths, is one knob)."""

    def walk(node: dict, prefix: str) -> list[str]:
        out = []
        for key, sub in node.get("properties", {}).items():
            name = f"{prefix}{key}"
            if sub.get("type") == "object" and sub.get("properties") and name not in ("sgd.recipes",
                                                                                       "experiments.fig2.recipe_architectures"):
                out += walk(sub, name + ".")
            else:
                out.append(name)
        return out

    return walk(load_schema(), "")


def override(knob: str, value) -> dict:
    out: dict = {}
    node = out
    *parents, last = knob.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[last] = value
    return out


def is_speed(knob: str) -> bool:
    section, _, key = knob.partition(".")
    return (section, None) in SPEED_KNOBS or (section, key) in SPEED_KNOBS


def test_every_schema_knob_is_covered():
    assert sorted(schema_knobs()) == sorted(CHANGES)


def dry_run(workdir: Path, extra: Path) -> dict[str, set[str]]:
    cmd = snakemake_cmd() + ["-n", "--cores", "2", "--configfile", str(TINY), str(REPORT), str(extra)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SNAKEMAKE_PROFILE", None)
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {rule: set(paths) for rule, paths in planned(proc.stdout + proc.stderr).items()}


def describe(jobs: dict[str, set], total: int) -> str:
    """'N: rule n, ...' (jobs per rule, most first) or 'nothing'."""
    n = sum(len(v) for v in jobs.values())
    if not n:
        return "nothing"
    parts = ", ".join(f"{rule} {len(v)}" for rule, v in sorted(jobs.items(), key=lambda kv: (-len(kv[1]), kv[0])))
    return f"{n}: {parts}"


def prepare_sources(workdir: Path) -> None:
    """The two other source folders the data.sample_dir cases point at: a copy of the shipped
    sample, and one whose SHA256SUMS lists the same batches in another order (a new digest)."""
    copy, other = workdir / CHANGES["data.sample_dir"], workdir / OTHER_SOURCE
    for folder in (copy, other):
        if not folder.exists():
            shutil.copytree(SAMPLE, folder)
    sums = (other / "SHA256SUMS").read_text().splitlines()
    (other / "SHA256SUMS").write_text("\n".join(reversed(sums)) + "\n")


def predictions(workdir: Path):
    """(knob, value, the jobs the model says a complete run reruns, their total) for every case,
    with `workdir` as the working directory (where the source folders are)."""
    base = [str(CONFIG), str(TINY), str(REPORT)]
    before = Jobs(validate(_load_configs(base)))
    total = sum(len(v) for r, v in before.walk().items() if r != "all")
    # the plug-ins last: they register their architectures and groups in this process for good
    cases = [(k, v) for k, v in CHANGES.items() if k != "plugins"]
    cases += [("data.sample_dir", OTHER_SOURCE), ("plugins", CHANGES["plugins"])]
    for knob, value in cases:
        extra = _write(workdir, override(knob, value))
        after = Jobs(validate(_load_configs(base + [str(extra)])))
        yield knob, value, extra, reruns(before, after), total


def readme_table(rows: list[str], total: int) -> str:
    head = f"| knob | changed to | jobs `snakemake -n` plans again (the complete run had {total}) |"
    return "\n".join([BEGIN, head, "|---|---|---|", *rows, END])


def write_readme(table: str) -> None:
    readme = RERUN_PAGE
    text = readme.read_text()
    current = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), text, re.S)
    readme.write_text(text.replace(current.group(0), table) if current else text + "\n" + table + "\n")


@pytest.mark.slow
@pytest.mark.workflow
def test_a_config_edit_reruns_exactly_what_it_changes(complete_run, monkeypatch):
    workdir = complete_run
    monkeypatch.chdir(workdir)  # the model reads the source folders' digests as snakemake does
    prepare_sources(workdir)
    assert dry_run(workdir, _write(workdir, {})) == {}, "the complete run is not complete"

    rows, wrong, total = [], [], 0
    for knob, value, extra, jobs, total in predictions(workdir):
        predicted = {r: {p for j in js for p in j.outputs().values()} for r, js in jobs.items()}
        seen = dry_run(workdir, extra)
        if seen != predicted:
            diff = {r: (sorted(seen.get(r, set()) - predicted.get(r, set()))[:2],
                        sorted(predicted.get(r, set()) - seen.get(r, set()))[:2])
                    for r in set(seen) | set(predicted) if seen.get(r) != predicted.get(r)}
            wrong.append(f"{knob}: snakemake vs model differ (snakemake-only, model-only): {diff}")
        if is_speed(knob) and value != OTHER_SOURCE and seen:
            wrong.append(f"{knob} is a speed knob but plans {sorted(seen)}")
        rows.append(f"| `{knob}` | `{_short(value)}` | {describe(jobs, total)} |")
    assert not wrong, "\n".join(wrong)

    table = readme_table(rows, total)
    if os.environ.get("SYMFLOW_WRITE_README"):
        write_readme(table)
        return
    current = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), RERUN_PAGE.read_text(), re.S)
    assert current and current.group(0) == table, (
        "docs/configuration.md's rerun table is out of date; regenerate it with "
        "python tests/test_reruns.py (the model's predictions, which this test checks against snakemake)\n" + table
    )


def _write(workdir: Path, content: dict) -> Path:
    path = workdir / "knob.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def _short(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=200).strip().removesuffix("...").strip()


if __name__ == "__main__":  # rewrite docs/configuration.md's table from the model (the test checks it with snakemake)
    import sys
    import tempfile

    sys.path.insert(0, str(REPO))  # the plug-in example (examples/)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        prepare_sources(Path(tmp))
        cases = list(predictions(Path(tmp)))
        rows = [f"| `{knob}` | `{_short(value)}` | {describe(jobs, total)} |" for knob, value, _, jobs, total in cases]
        write_readme(readme_table(rows, cases[0][-1]))
    print(f"{RERUN_PAGE.relative_to(REPO)}: rerun table written")
