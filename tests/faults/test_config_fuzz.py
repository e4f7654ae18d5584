"""Property-based: random and mutated configs give a clean one-line ConfigError or a
valid config; never a traceback of another kind."""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CONFIG, REPO, snakemake_cmd
from symflow.configuration import ConfigError, validate

BASE = yaml.safe_load(CONFIG.read_text())
VALID = validate(BASE)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10**6, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


ALL_PATHS = [p for p in paths(VALID) if p]


def mutate(cfg, path, how, value):
    cfg = copy.deepcopy(cfg)
    parent = cfg
    for part in path[:-1]:
        parent = parent[part]
    key = path[-1]
    if how == "set":
        parent[key] = value
    elif how == "delete":
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
    elif how == "add" and isinstance(parent, dict):
        parent[f"{key}_extra"] = value
    elif how == "rename" and isinstance(parent, dict):
        parent[f"{key}x"] = parent.pop(key)
    return cfg


def check(cfg):
    try:
        out = validate(cfg)
    except ConfigError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg and len(msg) < 600
        return None
    assert isinstance(out, dict) and set(out) >= {"data", "model", "experiments"}
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(
    st.lists(
        st.tuples(st.sampled_from(ALL_PATHS), st.sampled_from(["set", "delete", "add", "rename"]), values),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_configs(mutations):
    cfg = VALID
    for path, how, value in mutations:
        try:
            cfg = mutate(cfg, path, how, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the path
    check(cfg)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.dictionaries(st.sampled_from(list(VALID) + ["junk", "Data"]), values, max_size=4))
def test_random_configs(cfg):
    check(cfg)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    n_train=st.integers(-5, 6000),
    n_val=st.integers(-5, 1000),
    n_test=st.integers(-5, 1200),
    resolution=st.sampled_from([0, 1, 2, 3, 4, 8, 16, 32, 64]),
    m=st.integers(-1, 5000),
)
def test_sizes(n_train, n_val, n_test, resolution, m):
    cfg = copy.deepcopy(BASE)
    cfg["data"].update(n_train=n_train, n_val=n_val, n_test=n_test, resolution=resolution)
    cfg.setdefault("experiments", {}).setdefault("fig2", {})["m"] = m
    out = check(cfg)
    if out is not None:
        assert 0 < m <= n_train and n_train + n_val <= 4068 and n_test <= 1017 and resolution in (8, 16, 32)


@pytest.mark.workflow
def test_a_few_valid_mutations_plan_through_snakemake(tmp_path):
    """Valid configs also give a valid run plan (snakemake -n) in a few seconds."""
    variants = [
        {"experiments": {"fig2": {"architectures": ["FCN"], "transforms": ["perm"], "m": 500}}},
        {"data": {"resolution": 16}, "figS2": {"images": 2}},
        {"path_t": [0.0, 0.3], "figS2": {"seed": 4}},
    ]
    for i, variant in enumerate(variants):
        path = tmp_path / f"v{i}.yaml"
        path.write_text(yaml.safe_dump(variant))
        proc = subprocess.run(snakemake_cmd() + ["-n", "-q", "rules", "--configfile", str(path)], cwd=REPO,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
