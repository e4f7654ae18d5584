"""The symflow command."""

from __future__ import annotations

import numpy as np

from symflow.cli import main
from symflow.h5io import write_h5


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("identity", "o3_shared", "o3_pixel", "perm", "o3d", "so3_path", "FCN", "LCN", "VEC", "GAP", "LAP4"):
        assert name in out


def test_check(tmp_path, capsys, repo):
    assert main(["check", str(repo / "config.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {resolution: 7}\n")
    assert main(["check", str(repo / "config.yaml"), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("config error: data.resolution")


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
