"""symflow.jobs: a job kind is declared once, as a record (issue 30). Every rule of the workflow
has a record and every record a rule; each record names its stage, so `symflow plan` counts
every job; the rules' output, log and benchmark patterns are the records' own paths."""

from __future__ import annotations

import dataclasses
import os
import subprocess

import pytest

from conftest import REPO, TINY, copy_config, rule_of, snakemake_cmd
from symflow import jobs as J
from symflow import plan
from symflow.cli import _load_configs
from symflow.configuration import validate

# configs whose workflow has every rule: ImageNet's, and packs of each kind (config/gpu.yaml
# packs runs and eta0s, the default packs kernel blocks)
ALL_RULES = [REPO / "config" / "gpu.yaml", REPO / "config" / "imagenet.yaml", REPO / "tests" / "configs" / "imagenet_tiny.yaml"]


def _model(*paths) -> J.Jobs:
    return J.Jobs(validate(_load_configs([str(REPO / "config" / "config.yaml"), *map(str, paths)])))


def test_every_rule_of_the_workflow_has_a_record_and_every_record_a_rule(tmp_path):
    """A rule without a record would be left out of `symflow plan` (and of its resources'
    costs); a record without a rule would be a job nothing makes."""
    copy_config(tmp_path)
    cmd = snakemake_cmd() + ["-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--list-rules"]
    cmd += ["--configfile", *map(str, ALL_RULES)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SNAKEMAKE_PROFILE", None)
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rules = {rule_of(line.strip()) for line in proc.stdout.splitlines() if line.strip()}
    records = {kind.rule for kind in J.KINDS}
    assert rules - records == set(), "rules without a record in symflow.jobs: symflow plan cannot count them"
    assert records - rules == set(), "records without a rule: no rule makes their jobs"


def test_the_plan_takes_its_stages_and_gpu_rules_from_the_records():
    assert [k for k in plan.STAGES] == list(J.STAGE_NAMES)
    listed = [rule for names in plan.STAGES.values() for rule in names]
    assert sorted(listed) == sorted(kind.rule for kind in J.KINDS)  # each once
    assert set(plan.GPU_RULES) == {kind.rule for kind in J.KINDS if kind.device == "gpu"}
    model = _model(*ALL_RULES)
    assert set(model.walk()) <= set(listed)


def test_a_kind_without_a_stage_is_refused():
    with pytest.raises(TypeError, match="stage"):

        @dataclasses.dataclass(frozen=True)
        class Nowhere(J.Job):  # noqa: F841 (refused at its definition)
            rule = "make_nowhere"


def test_the_plan_refuses_a_rule_it_does_not_know(monkeypatch):
    cfg = validate(_load_configs([str(REPO / "config" / "config.yaml"), str(TINY)]))
    walked = J.Jobs(cfg).walk()
    monkeypatch.setattr(J.Jobs, "walk", lambda self, *a, **k: {**walked, "make_nowhere": {J.All()}})
    with pytest.raises(ValueError, match="make_nowhere"):
        plan.plan(cfg)


@pytest.mark.parametrize("configs", [[TINY], ALL_RULES], ids=["tiny", "gpu-imagenet"])
def test_the_rules_patterns_are_the_records_paths(configs):
    """Each rule's output, log and benchmark patterns (Record.patterns(), ...) give every job's
    own paths once its wildcards are filled in."""
    for rule, jobs in _model(*configs).walk().items():
        for job in jobs:
            kind = type(job)
            if issubclass(kind, J._Packed) or kind in (J.Download, J.Extract):
                continue  # a pack's rule is its own job; the archive's folder is not a wildcard
            fields = {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}
            assert {k: p.format(**fields) for k, p in kind.patterns().items()} == job.outputs(), rule
            assert kind.log_pattern().format(**fields) == job.log(), rule
            assert kind.benchmark_pattern().format(**fields) == job.benchmark(), rule



def test_a_records_folder_is_relative():
    """folder() means one thing: the job's folder without its top folder (results/kernels/,
    results/ensembles/, benchmarks/sgd/, ...), which the record's paths put in front."""
    model = _model(*ALL_RULES)
    seen = set()
    for packed in (True, False):
        for rule, jobs in model.walk(packed=packed).items():
            for job in jobs:
                if hasattr(job, "folder"):
                    seen.add(type(job).__name__)
                    folder = job.folder()
                    assert not folder.startswith(("results/", "logs/", "benchmarks/", "checkpoints/")), (rule, folder)
                    assert any(folder in path for path in [*job.outputs().values(), job.benchmark()]), (rule, folder)
    assert {"Block", "BlockPack", "Run", "Ensemble", "SDist"} <= seen, seen
