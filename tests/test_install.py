"""The install files agree with each other, .ci/run runs the README's test command, and a
plain `pip install` works outside a checkout."""

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
        assert pip[-1] == "${SYMFLOW_PACKAGE}", env  # symflow itself (common.smk sets the variable)
        got = {re.sub(r"\[.*\]", "", p.split("==")[0]).lower(): p.split("==")[1] for p in pip[:-1]}
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
    # CI keeps the SLURM test, which `make test` alone skips (it installs packages, writes /etc/slurm)
    assert "SYMFLOW_SLURM_INSTALL=1 make test" in ci
    assert "SYMFLOW_SLURM_INSTALL" in readme


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


# -- pip install outside a checkout --------------------------------------------------------------


def test_pip_install_then_check_list_plan_outside_a_checkout(tmp_path):
    """`pip install .` into a fresh venv, then the commands from a folder with no config.yaml:
    the schema, claims, paper values and the CIFAR-10 sample come from the installed package.
    Offline: the venv sees this interpreter's site-packages (the pinned stack) through a .pth
    file, and the build uses its setuptools (no build isolation, no index)."""
    import subprocess

    from conftest import clean_env, pip_install, stack_venv, tracked_copy

    clone = tracked_copy(tmp_path / "clone")
    venv = tmp_path / "venv"
    python = stack_venv(venv)  # the stack, not symflow
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    env = clean_env()
    pip_install(python, clone, env)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args):
        proc = subprocess.run(list(args), cwd=elsewhere, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, f"{args}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        return proc.stdout

    where = run(python, "-c", "\n".join([
        "import symflow, importlib.metadata as md",
        "from symflow.data import SAMPLE_DIR, load_cifar10",
        "print(symflow.__file__)",
        "print(load_cifar10(SAMPLE_DIR).x_test.shape)",
        "m = md.metadata('symflow')",
        "print(m['License-Expression'], m.get_all('License-File'))",
    ]))  # fmt: skip
    lines = where.splitlines()
    assert lines[0].startswith(site), lines  # the installed package, not the checkout
    assert lines[1] == "(1017, 32, 32, 3)"  # the sample is package data, checksums verified
    assert lines[2] == "Apache-2.0 ['LICENSE']"
    symflow = str(venv / "bin" / "symflow")
    assert "architectures" in run(symflow, "list")
    assert "ok: the embedded default" in run(symflow, "check")
    plan = run(symflow, "plan", "--stages")
    assert "plan of the default target for the embedded default" in plan and "total" in plan
    (elsewhere / "mine.yaml").write_text("data: {n_train: 800}\nexperiments: {fig4: {m: [125, 250]}}\n")
    assert "n800.250.2500h1500" in run(symflow, "plan", "--configfile", "mine.yaml")


def test_the_conda_envs_pip_line_installs_this_checkout(tmp_path):
    """What conda does with an env file's `pip:` list: it writes the lines to a requirements
    file and runs `pip install -r` on it, and pip expands `${SYMFLOW_PACKAGE}` there (pip's
    requirement-file variables). With the variable set as common.smk sets it (the checkout
    holding the rules), the symflow line resolves to this checkout's package and version.
    Conda itself is not here (no channels offline): this checks the part symflow adds."""
    import json
    import subprocess
    import sys
    import tomllib

    from conftest import clean_env, tracked_copy

    clone = tracked_copy(tmp_path / "clone with space")  # a folder name with a space, as users have
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for env_name in ("symflow-cpu", "symflow-cuda"):
        spec = yaml.safe_load((REPO / "envs" / f"{env_name}.yaml").read_text())
        pip_lines = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        requirements = tmp_path / f"condaenv.{env_name}.requirements.txt"
        requirements.write_text(pip_lines[-1] + "\n")  # the symflow line; the pins are checked above
        report = tmp_path / f"{env_name}.json"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-build-isolation",
             "--no-index", "--ignore-installed", "--quiet", "--report", str(report), "-r", str(requirements)],
            capture_output=True, text=True, env={**clean_env(), "SYMFLOW_PACKAGE": str(clone)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        (item,) = json.loads(report.read_text())["install"]
        assert item["metadata"]["name"] == "symflow" and item["metadata"]["version"] == version
        assert item["download_info"]["url"] == clone.as_uri()
