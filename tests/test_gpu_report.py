"""bench/gpu_report.py: issue 18's verdicts and the settings to make, from bench/gpu_checks.sh's
files. On the H200's 2026-11-30 CSVs it must give back the rates symflow/costs.py holds (set
from those files by hand); on synthetic rows its choices follow its rules; and on what
gpu_checks.sh and the benchmarks write on this CPU it reads every file it is meant to."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("gpu_report", REPO / "bench" / "gpu_report.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_report"] = mod  # its dataclass looks its module up
    spec.loader.exec_module(mod)
    return mod


R = _load()


def test_the_h200_csvs_give_back_the_plans_h200_rates():
    """The 2026-11-30 H200 run (bench/results/gpu): the peak, the bandwidth and the two kernel
    efficiencies in RATES were derived from it by hand; the report derives the same."""
    from symflow.costs import RATES

    folder = REPO / "bench" / "results" / "gpu"
    krows = R.kernel_rows(folder)
    schedules = R.choose_schedules(krows)
    assert schedules["dense"]["schedule"] == "scan" and schedules["spatial"]["schedule"] == "scan"  # the only one measured
    rates = R.proposed_rates(krows, [], schedules, "")
    for name in ("h200_peak_gflops", "h200_bandwidth_gbs", "h200_kernel_efficiency",
                 "h200_kernel_efficiency_small_state"):  # fmt: skip
        assert rates[name][0] == pytest.approx(RATES[name].value, rel=0.02), name
    text, found = R.report(folder)
    verdicts = {c.what: c.ok for c in found}
    # what bench/README.md says of that run: FCN and VEC slower than nt, GAP at 32 x 32 at 4,987 pairs/s
    assert verdicts["engine/nt, FCN at 8 x 8"] is False and verdicts["engine/nt, VEC at 32 x 32"] is False
    assert verdicts["engine/nt, GAP at 32 x 32"] is True and verdicts["engine/nt, LCN at 16 x 16"] is None
    assert verdicts["GAP at 32 x 32, pairs/s (best schedule)"] is False
    assert "4,987 (scan)" in text and "NVIDIA H200" in text and "Not measured on a GPU" not in text
    assert R.main([str(folder), "--strict"]) == 1


def _k(arch, res, schedule, ratio, diff=1e-6, engine=1000.0):
    return dict(arch=arch, resolution=res, schedule=schedule, engine=engine, nt=engine / ratio, ratio=ratio,
                fraction=0.1, nt_fraction=0.1, diff=diff, pairs=64, flops=1e6, bytes=1e5, peak_gflops=1e5,
                dram_gbs=2e3)  # fmt: skip


def test_a_schedule_is_chosen_per_family_among_complete_and_accurate_ones():
    rows = [
        *(_k(a, r, "scan", 0.5) for a in ("FCN", "VEC") for r in (8, 32)),
        *(_k(a, r, "plain", 1.5) for a in ("FCN", "VEC") for r in (8, 32)),
        _k("GAP", 8, "scan", 8.0), _k("GAP", 32, "scan", 2.0),
        _k("GAP", 8, "plain", 9.0), _k("GAP", 32, "plain", 3.0, diff=5e-3),  # fast but wrong: excluded
        _k("GAP", 8, "fused", 30.0),  # fastest, but not measured at 32: excluded
    ]  # fmt: skip
    schedules = R.choose_schedules(rows)
    assert schedules["dense"]["schedule"] == "plain" and schedules["dense"]["geomean"] == pytest.approx(1.5)
    assert schedules["spatial"]["schedule"] == "scan" and schedules["spatial"]["geomean"] == pytest.approx(4.0)
    assert "from nt" in schedules["spatial"]["excluded"]["plain"]
    assert "1 of 2 cases" in schedules["spatial"]["excluded"]["fused"]
    found = {c.what: c for c in R.checks(rows, [], schedules, plan_hours=4.5)}
    assert found["engine/nt, VEC at 32 x 32"].ok is True and "(plain)" in found["engine/nt, VEC at 32 x 32"].measured
    assert found["engine/nt, GAP at 32 x 32"].ok is True and found["engine/nt, LAP4 at 8 x 8"].ok is None
    assert found["GAP at 32 x 32, pairs/s (best schedule)"].ok is False  # 1,000 pairs/s
    assert found["symflow plan, config/gpu.yaml at the proposed rates"].ok is False


def _p(width, res, mode, rate, ratio, pack=8, steps=200, cold_s=5.0):
    return dict(arch="VEC", width=width, resolution=res, pack=pack, steps=steps, backend="gpu", mode=mode, rate=rate,
                ratio=ratio, cold_s=cold_s)  # fmt: skip


def test_packing_verdicts_and_the_rates_from_training():
    rows = [
        _p(16, 8, "single", 500.0, 1.0, cold_s=3.4), _p(16, 8, "packed-device", 6000.0, 12.0),
        _p(32, 8, "single", 400.0, 1.0, cold_s=3.5), _p(32, 8, "packed-python", 2000.0, 5.0),
        _p(128, 32, "single", 100.0, 1.0, cold_s=5.0), _p(128, 32, "packed-device", 80.0, 0.8),
    ]  # fmt: skip
    found = {c.what: c.ok for c in R.checks([], rows, {}, None)}
    assert found["packed/single, VEC_16 at 8 x 8"] is True and found["packed/single, VEC_32 at 8 x 8"] is False
    assert not any("VEC_128" in what for what in found)  # not a small network
    assert R.pack_advice(rows)[0] == 8  # median best 5.0
    assert R.pack_advice([r for r in rows if r["width"] == 128])[0] == 1
    log = "start-up: 4.0 s wall\nstart-up: 3.0 s wall\nstart-up: 3.5 s wall\n"
    rates = R.proposed_rates([], rows, {}, log)
    assert rates["gpu_step_floor_s"][0] == pytest.approx(1 / 500.0)  # VEC_16 at 8 x 8 alone
    # median start-up 3.5 s + median compilation (cold call minus its steps at the warm rate)
    compiles = sorted([3.4 - 200 / 500, 3.5 - 200 / 400, 5.0 - 200 / 100])
    assert rates["h200_job_start_s"][0] == pytest.approx(3.5 + compiles[1])


def test_the_plans_pack_model_for_a_benchmark_case(monkeypatch):
    """A step floor far above a small network's compute: the model gives a pack of R its
    runs at the cost of one (packed/single = R); no floor: R runs cost R times one (1.0).
    The report sets each packed row's model and compares the workflow's loop against it."""
    monkeypatch.chdir(REPO)
    rows = [
        _p(16, 8, "single", 500.0, 1.0),
        _p(16, 8, "packed-device", 3000.0, 6.0),
        _p(16, 8, "packed-python", 900.0, 1.8),
    ]
    for row in rows:
        row.update(eval_every=100, m=256, n_eval=256)
    R.model_pack_ratios(rows, ["config/gpu.yaml"], {"gpu_step_floor_s": (1.0, "")})
    assert "model" not in rows[0] and rows[1]["model"] == pytest.approx(8.0, rel=1e-3)
    R.model_pack_ratios(rows, ["config/gpu.yaml"], {"gpu_step_floor_s": (0.0, "")})
    assert rows[1]["model"] == pytest.approx(1.0)
    R.model_pack_ratios(rows, ["config/gpu.yaml"], {"gpu_step_floor_s": (1.0, "")})
    lines = R.pack_model_lines(rows, on_gpu=True)
    assert "uses `device` on this backend; it is the faster in 1 of 1 cases" in lines[0]
    assert "median over 1 cases, 0.75 (packs take about 1.3x the time the plan gives them)" in lines[1]
    assert "not in: VEC_16 at 8" in R.pack_model_lines(rows, on_gpu=False)[0]


def test_sharing_advice():
    line = "sharing: jobs_per_gpu=4, one alone 12.0 s, 4 at once 20.0 s, throughput 2.40 x (VEC_16 at 32 x 32)"
    assert "**4**" in R.sharing_line(line) and "--resources gpu=4" in R.sharing_line(line)
    assert "**1**" in R.sharing_line(line.replace("throughput 2.40", "throughput 1.10"))
    assert R.sharing_line("nothing") is None


def test_replan_prices_the_gpu_config_at_the_proposed_rates(monkeypatch):
    """--replan sets symflow.costs' GPU constants for one plan and puts them back: 36 s more
    start-up a GPU job adds 36 s for each of the config's GPU jobs."""
    from symflow import costs
    from symflow.cli import _configs
    from symflow.configuration import validate
    from symflow.plan import plan

    monkeypatch.chdir(REPO)
    before = costs.GPU_JOB_START_S
    base = R.replan(["config/gpu.yaml"], {})
    slower = R.replan(["config/gpu.yaml"], {"h200_job_start_s": (before + 36.0, "")})
    assert costs.GPU_JOB_START_S == before
    gpu_jobs = sum(r.jobs for r in plan(validate(_configs(["config/gpu.yaml"], True)[0])).rules if r.gpu)
    assert slower - base == pytest.approx(gpu_jobs * 36.0 / 3600, rel=1e-6)
    assert base <= R.MAX_GPU_HOURS


@pytest.mark.slow
def test_the_report_reads_what_gpu_checks_and_the_benchmarks_write(tmp_path):
    """On this CPU: the two benchmarks' CSVs at tiny sizes, then gpu_checks.sh itself with only
    its start-up and device-pinning sections selected (the others say they are skipped) and its report at the end:
    the report finds the start-up times, the sections' outcomes, both kinds of CSV, and the
    settings it derives from them."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "JAX_PLATFORMS": "cpu", "OUT": str(tmp_path), "GPU_CHECKS_ONLY": "start-up|pinning", "GPU_CHECKS_WHEELS": "0"}  # fmt: skip
    bench = [sys.executable, "bench/kernel_bench.py", "--repeats", "1", "--min-seconds", "0", "--budget-seconds", "1"]
    for args in (["--archs", "VEC", "--resolutions", "8", "--n", "16", "--batch", "8", "--schedule", "scan", "plain",
                  "--csv", str(tmp_path / "kernel_vec_r8.csv")],
                 ["--archs", "GAP", "--resolutions", "8", "--n", "8", "--batch", "4", "--schedule", "scan",
                  "--csv", str(tmp_path / "kernel_spatial_r8.csv")]):  # fmt: skip
        subprocess.run([*bench, *args], cwd=REPO, env=env, check=True, capture_output=True, timeout=600)
    subprocess.run([sys.executable, "bench/packed_training.py", "--resolutions", "8", "--widths", "16", "--pack", "2",
                    "--steps", "10", "--eval-every", "5", "--m", "64", "--n-eval", "64", "--repeats", "1",
                    "--loops", "python", "--csv", str(tmp_path / "packed_training_r8.csv")],
                   cwd=REPO, env=env, check=True, capture_output=True, timeout=600)  # fmt: skip
    # bench/gpu_sharing.py's line, into the log gpu_checks.sh then appends to (its section is not selected)
    shared = subprocess.run([sys.executable, "bench/gpu_sharing.py", "--jobs", "2", "--resolution", "8", "--width", "4",
                             "--steps", "10", "--eval-every", "5", "--m", "40"],
                            cwd=REPO, env=env, check=True, capture_output=True, text=True, timeout=600)  # fmt: skip
    (tmp_path / "gpu_checks.log").write_text(shared.stdout)
    done = subprocess.run(
        ["bash", "bench/gpu_checks.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:]
    log = (tmp_path / "gpu_checks.log").read_text()
    assert "== packed training, 8 x 8: skipped (not in GPU_CHECKS_ONLY)" in log
    report = (tmp_path / "gpu_report.md").read_text()
    starts = R.start_up_seconds(log)
    assert len(starts) == 3 and all(0 < s < 120 for s in starts)
    assert "-- report: exit 0" in log
    assert "- a GPU job's start-up" in report and "exit 0 after" in report
    for what in ("engine/nt, VEC at 8 x 8", "engine/nt, GAP at 8 x 8", "packed/single, VEC_16 at 8 x 8"):
        line = next(x for x in report.splitlines() if x.startswith(f"| {what} |"))
        assert "not measured" not in line, line
    assert "engine/nt, FCN at 8 x 8 | - | >= 1 | not measured" in report
    # no GPU here: gpus=1 falls back to the CPU, which the report calls a failure
    assert "gpus=0 on the CPU, gpus=1 on the GPU | gpus=0: cpu; gpus=1: cpu | cpu; gpu | NOT met |" in report
    assert "`RATES['h200_job_start_s']`" in report and "`RATES['gpu_step_floor_s']`" in report
    assert "`symflow.engine._SCHEDULE_ACCELERATOR['dense']`" in report
    assert re.search(r"`resources.jobs_per_gpu`.*: \*\*[12]\*\* \(2 small training jobs at once", report)
    assert "**Not measured on a GPU** (JAX devices [CpuDevice(id=0)])" in report
    hours = re.search(r"at these rates: ([0-9.]+) H200-hours", report)
    assert hours and math.isfinite(float(hours.group(1)))
