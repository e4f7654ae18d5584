"""The install files agree with each other, and .ci/run runs the README's test command."""

from __future__ import annotations

import re

import yaml

from conftest import REPO


def pins(path):
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and "==" in line:
            name, version = line.split("==")
            out[re.sub(r"\[.*\]", "", name).lower()] = version
    return out


def test_conda_envs_carry_the_stack_pins():
    stack = pins(REPO / "requirements" / "stack.txt")
    for env in ("symflow-cpu", "symflow-cuda"):
        spec = yaml.safe_load((REPO / "envs" / f"{env}.yaml").read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        got = {re.sub(r"\[.*\]", "", p.split("==")[0]).lower(): p.split("==")[1] for p in pip}
        assert got == stack, env
        post = (REPO / "envs" / f"{env}.post-deploy.sh").read_text()
        nodeps = pins(REPO / "requirements" / "no-deps.txt")
        assert f"neural-tangents=={nodeps['neural-tangents']}" in post and "--no-deps" in post
    assert "jax[cuda12]" in (REPO / "envs" / "symflow-cuda.yaml").read_text()


def test_lock_agrees_with_stack():
    stack = pins(REPO / "requirements" / "stack.txt")
    lock = pins(REPO / "requirements" / "lock.txt")
    for name, version in stack.items():
        assert lock.get(name) == version, name
    assert "tensorflow" not in lock and "neural-tangents" not in lock


def test_installed_versions_match_the_pins():
    from importlib import metadata

    for name, version in {**pins(REPO / "requirements" / "stack.txt"), **pins(REPO / "requirements" / "no-deps.txt")}.items():
        assert metadata.version(name) == version, name


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "make test" in readme and "make run" in readme


def test_neural_tangents_imports_without_tensorflow():
    import importlib.util

    from symflow._nt import nt, stax  # noqa: F401

    assert importlib.util.find_spec("tensorflow") is None
    assert callable(stax.serial) and callable(nt.batch)


def test_the_licence_is_apache_2_and_the_package_metadata_names_it():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"  # PEP 639: License-Expression in the wheel's METADATA
    assert project["license-files"] == ["LICENSE"]  # shipped in the wheel's .dist-info/licenses/
    text = (REPO / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
