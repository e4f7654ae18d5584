"""The symflow command."""

from __future__ import annotations

import re

import numpy as np
import pytest

from symflow.cli import main
from symflow.h5io import write_h5


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("identity", "o3_shared", "o3_pixel", "perm", "o3d", "so3_path", "FCN", "LCN", "VEC", "GAP", "LAP4"):
        assert name in out


def test_check(tmp_path, capsys, repo):
    assert main(["check", str(repo / "config" / "config.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {resolution: 7}\n")
    assert main(["check", str(repo / "config" / "config.yaml"), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("config error: data.resolution")


# a project's own config/config.yaml (as a user edits it): 200 training images, every m within them,
# and the NN recipe spelled out
PROJECT = """
data: {n_train: 200}
sgd: {recipes: {nn: {lr_factor: 1.0, l2: 0.0}}}
experiments:
  fig2: {m: 100}
  fig3: {m: 100}
  fig4: {m: [50, 100, 200]}
  figS1: {m: 100}
  figS5: {m: 100}
  figS6: {m: [50, 100]}
"""


def test_check_merges_over_config_yaml_as_snakemake_does(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(PROJECT)
    # valid over config/config.yaml only: the NN recipe's l2 comes from it
    (tmp_path / "faster.yaml").write_text("sgd: {recipes: {nn: {lr_factor: 2.0}}}\n")
    # valid on its own only: 250 exceeds config/config.yaml's n_train, not the schema's 3,500
    (tmp_path / "longer.yaml").write_text("experiments: {fig4: {m: [125, 250]}}\n")
    assert main(["check", "faster.yaml"]) == 0
    assert "ok: config/config.yaml + faster.yaml" in capsys.readouterr().out
    assert main(["check", "longer.yaml"]) == 2
    assert capsys.readouterr().err.strip() == "config error: experiments.fig4.m: 250 exceeds data.n_train = 200"
    # --standalone: the file alone, over the schema's defaults
    assert main(["check", "--standalone", "faster.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error: sgd.recipes.nn") and "'l2' is a required property" in err
    assert main(["check", "--standalone", "longer.yaml"]) == 0
    assert "ok: longer.yaml (standalone)" in capsys.readouterr().out
    assert main(["check", "--standalone"]) == 2  # names no file
    # the same semantics as `symflow plan --configfile` (and --standalone there)
    for name in ("faster.yaml", "longer.yaml"):
        for flag in ([], ["--standalone"]):
            assert main(["check", *flag, name]) == main(["plan", *flag, "--stages", "--configfile", name])
    capsys.readouterr()
    # config/config.yaml itself is not read twice
    assert main(["check", "config/config.yaml"]) == 0
    assert capsys.readouterr().out.startswith("ok: config/config.yaml (dataset")


def test_check_and_plan_outside_a_checkout_start_from_the_schema_defaults(tmp_path, capsys, monkeypatch, repo):
    import yaml

    from symflow.cli import _configs

    monkeypatch.chdir(tmp_path)  # no config/config.yaml here
    assert main(["check"]) == 0
    assert capsys.readouterr().out.startswith("ok: the embedded default")
    (tmp_path / "mine.yaml").write_text("data: {n_train: 1000}\n")
    merged, name = _configs(["mine.yaml"], over_default=True)
    assert name.endswith("+ mine.yaml") and merged == {"data": {"n_train": 1000}}
    monkeypatch.chdir(repo)
    over_repo, _ = _configs([str(tmp_path / "mine.yaml")], over_default=True)
    assert over_repo["data"]["n_train"] == 1000
    assert over_repo["sgd"] == yaml.safe_load((repo / "config" / "config.yaml").read_text())["sgd"]


def test_verify_cache_finds_and_removes_bad_files(tmp_path, capsys):
    good, bad = tmp_path / "r" / "good.h5", tmp_path / "r" / "sub" / "bad.h5"
    write_h5(good, {"a": np.arange(1000.0)}, {})
    write_h5(bad, {"a": np.arange(1000.0)}, {})
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))
    (tmp_path / "r" / ".x.h5.abc.tmp").write_text("partial")
    assert main(["verify-cache", str(tmp_path / "r")]) == 1
    out = capsys.readouterr().out
    assert "bad.h5" in out and "good.h5" not in out.split("checked")[0] and "stale" in out
    assert main(["verify-cache", "--remove", str(tmp_path / "r")]) == 0
    assert good.exists() and not bad.exists() and not (tmp_path / "r" / ".x.h5.abc.tmp").exists()


def test_list_shows_claims_and_plugins(capsys):
    assert main(["list", "--plugin", "examples.channel_symmetry"]) == 0
    out = capsys.readouterr().out
    assert "channel_perm" in out and "GAP1x1" in out
    blocks = out.split("architectures")[1]
    gap1x1 = blocks.split("GAP1x1")[1].splitlines()
    assert "infinite width: o3_shared, channel_perm" in gap1x1[1] and "finite width:   o3_shared" in gap1x1[2]
    lcn = blocks.split("  LCN ")[1].splitlines()
    assert "o3_pixel" in lcn[1] and "same kernel as: VEC" in out
    kernels = _kernels_lines(out)  # the engine computes the paper's six, not GAP1x1 (no engine recursion)
    assert all(kernels[a].startswith("symflow's engine") for a in ("FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8"))
    assert kernels["GAP1x1"] == "neural-tangents only (symflow's engine cannot compute it)"


def _kernels_lines(out: str) -> dict[str, str]:
    """architecture -> its `kernels:` line in `symflow list`."""
    out = out.split("architectures (")[1]
    names = [line.split()[0] for line in out.splitlines()[1:] if line.startswith("  ") and line[2] != " "]
    return {name: out.split(f"\n  {name} ")[1].split("kernels:")[1].splitlines()[0].strip() for name in names}


def test_list_says_which_architectures_the_engine_computes(capsys, monkeypatch):
    """Plug-ins registered for this test only, with and without an engine recursion."""
    from symflow.architectures import ARCHITECTURES, Architecture, build_gap

    for name, recursion in (("GAPNONE", None), ("GAPENG", "spatial")):
        arch = Architecture(name, "GAP's network, as a plug-in", build_gap, engine_recursion=recursion)
        monkeypatch.setitem(ARCHITECTURES._entries, name, arch)
    assert main(["list"]) == 0
    kernels = _kernels_lines(capsys.readouterr().out)
    assert kernels["GAPNONE"] == "neural-tangents only (symflow's engine cannot compute it)"
    assert kernels["GAPENG"].startswith("symflow's engine (spatial recursion)")


@pytest.mark.parametrize("command", ["list", "check", "verify-cache", "audit"])
def test_subcommand_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: symflow {command}" in capsys.readouterr().out


def test_audit_one_pair_on_real_images(capsys):
    """The plug-in's GAP1x1 on its channel_perm: claimed and measured invariant (the sample's real images)."""
    args = ["--n", "4", "--resolution", "4", "--depth", "2", "--backend", "nt", "--plugin", "examples.channel_symmetry"]
    assert main(["audit", "GAP1x1", "channel_perm", *args]) == 0
    out = capsys.readouterr().out
    assert "GAP1x1 on channel_perm (seed 0): 4 CIFAR-10 sample images at 4x4" in out
    assert "claim:    invariant" in out and "verdict:  agrees" in out
    nngp, ntk = (float(v) for v in re.search(r"NNGP (\S+)\s+NTK (\S+)", out).groups())
    assert nngp < 1e-6 and ntk < 1e-6
    # not claimed, and measured: not invariant (exit status 0: the audit agrees with the theorem)
    assert main(["audit", "GAP", "o3_pixel", *args[:-2], "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "claim:    not claimed invariant" in out and "verdict:  agrees" in out
    assert float(re.search(r"NTK (\S+)", out).group(1)) > 1e-3


def test_audit_refuted_claim_and_bad_names(capsys, monkeypatch):
    from symflow.architectures import ARCHITECTURES, Architecture, build_gap

    # GAP's network, wrongly claimed invariant to O(3)^d; registered for this test only
    false = Architecture("GAPCLI", "GAP, false claim", build_gap, invariant_infinite=("o3_pixel",))
    monkeypatch.setitem(ARCHITECTURES._entries, "GAPCLI", false)
    assert main(["audit", "GAPCLI", "o3_pixel", "--n", "3", "--resolution", "4", "--depth", "2"]) == 1
    assert "verdict:  refutes" in capsys.readouterr().out
    assert main(["audit", "GAPP", "o3_pixel"]) == 2
    err = capsys.readouterr().err
    assert "unknown architecture 'GAPP' (did you mean 'GAP'?)" in err and len(err.strip().splitlines()) == 1
    assert main(["audit", "GAP", "so3_path"]) == 2  # a path needs its t
    assert "give its t" in capsys.readouterr().err
    assert main(["audit", "LAP8", "o3_shared", "--resolution", "4"]) == 2
    assert "divisible by 8" in capsys.readouterr().err


def test_audit_leaves_the_process_in_float32():
    """`symflow audit` computes in float64 but must not switch a longer-lived process (e.g. the
    test session, whose float32 models then fail in conv) to x64."""
    import os

    import jax

    assert main(["audit", "FCN", "o3_pixel", "--n", "2", "--depth", "2", "--resolution", "4"]) == 0
    assert not jax.config.jax_enable_x64 and os.environ.get("JAX_ENABLE_X64") is None
