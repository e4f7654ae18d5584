"""Issue 18's verdicts and the settings to make, from what bench/gpu_checks.sh wrote.

    python bench/gpu_report.py [FOLDER] [--markdown FILE] [--replan config/gpu.yaml] [--strict]

FOLDER (default bench/results/gpu) holds gpu_checks.sh's log and CSVs: kernel_*.csv
(bench/kernel_bench.py), packed_training_*.csv (bench/packed_training.py), gpu_checks.log.
The report says, for each acceptance criterion of issue 18, the measured figure, the bar and
whether it is met; and the values to set where they live:

* ``symflow.engine._SCHEDULE_ACCELERATOR``: per family (dense: FCN, VEC, LCN; spatial: GAP,
  LAPk), the schedule with the highest geometric mean of engine/nt over the family's measured
  (architecture, resolution) cases, among the schedules measured on all of them and within
  ``TOLERANCE`` of nt;
* ``RATES`` in symflow/costs.py: ``h200_kernel_efficiency`` (GAP at 32 x 32, the chosen
  spatial schedule's fraction of its roofline), ``h200_kernel_efficiency_small_state`` (the
  lowest fraction of the dense family at 32 x 32: an upper bound on their time, as before),
  ``gpu_step_floor_s`` (one step of the smallest network alone: launches, not compute),
  ``h200_job_start_s`` (the start-up section's median, plus one run's compilation measured by
  the packed-training section);
* ``sgd.pack`` in config/gpu.yaml: 1 where the best packed mode loses to single runs at the
  median of the measured cases.

With --replan CONFIG it prices CONFIG with symflow.plan's model at the proposed rates (the
acceptance asks <= 4 H200-hours for config/gpu.yaml). Sections that did not run leave their
lines "not measured". Nothing here needs a GPU: it reads files.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # symflow, for the plan and the current settings

DENSE = ("FCN", "VEC", "LCN")
SPATIAL_PREFIXES = ("GAP", "LAP")
RESOLUTIONS = (8, 16, 32)
ARCHS = ("FCN", "LCN", "VEC", "GAP", "LAP4", "LAP8")
# issue 18's bars
MIN_ENGINE_OVER_NT = 1.0
MIN_GAP32_PAIRS_PER_S = 15_000.0
MIN_PACKED_OVER_SINGLE = 10.0
SMALL_WIDTH = 32  # "the small networks": VEC at widths up to this
MAX_GPU_HOURS = 4.0
# a schedule whose values differ from nt's by more than this (relative, float32) is not chosen
TOLERANCE = 1e-3


def family(arch: str) -> str:
    return "spatial" if arch.startswith(SPATIAL_PREFIXES) else "dense"


def _float(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def read_rows(folder: Path, pattern: str) -> list[dict]:
    rows = []
    for path in sorted(folder.glob(pattern)):
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                row["_file"] = path.name
                rows.append(row)
    return rows


def kernel_rows(folder: Path) -> list[dict]:
    """kernel_bench rows with numbers parsed; rows of CSVs older than --schedule count as "scan"
    (a CSV written before the rename names the column "layers")."""
    out = []
    for r in read_rows(folder, "kernel_*.csv"):
        out.append(
            dict(
                arch=r["arch"],
                resolution=int(r["resolution"]),
                schedule=r.get("schedule") or r.get("layers") or "scan",
                engine=_float(r.get("engine_pairs_per_s")),
                nt=_float(r.get("nt_pairs_per_s")),
                ratio=_float(r.get("ratio")),
                fraction=_float(r.get("engine_fraction_of_limit")),
                nt_fraction=_float(r.get("nt_fraction_of_limit")),
                diff=_float(r.get("max_rel_diff")),
                pairs=int(_float(r.get("pairs")) or 0),
                flops=_float(r.get("flops_per_pair")),
                bytes=_float(r.get("bytes_per_pair")),
                peak_gflops=_float(r.get("peak_gflops")),
                dram_gbs=_float(r.get("dram_bandwidth_gbs")),
            )
        )
    return out


def machine(krows: list[dict]) -> tuple[float, float] | None:
    """(peak GFLOP/s, DRAM GB/s): the best of the limits kernel_bench measured in its runs (each
    run measures them once; a busy moment only lowers a measurement)."""
    peaks = [r["peak_gflops"] for r in krows if math.isfinite(r["peak_gflops"])]
    bands = [r["dram_gbs"] for r in krows if math.isfinite(r["dram_gbs"])]
    return (max(peaks), max(bands)) if peaks and bands else None


def plan_fraction(row: dict, limits: tuple[float, float]) -> float:
    """The engine's rate as a fraction of the roofline symflow.plan prices with: flops at the
    peak, bytes at DRAM bandwidth (kernel_bench's own column takes the bandwidth at the tile's
    size instead, which for small tiles is a cache's or a launch-bound copy's)."""
    peak, band = limits
    return row["engine"] * max(row["flops"] / (peak * 1e9), row["bytes"] / (band * 1e9))


def packed_rows(folder: Path) -> list[dict]:
    out = []
    for r in read_rows(folder, "packed_training_*.csv"):
        out.append(
            dict(
                arch=r["arch"],
                width=int(r["width"]),
                resolution=int(r["resolution"]),
                pack=int(r["pack"]),
                steps=int(r["steps"]),
                backend=r.get("backend", ""),
                mode=r["mode"],
                rate=_float(r["run_steps_per_s"]),
                ratio=_float(r["ratio"]),
                cold_s=_float(r["cold_s"]),
                eval_every=int(_float(r.get("eval_every")) or 100),
                m=int(_float(r.get("m")) or 256),
                n_eval=int(_float(r.get("n_eval")) or 256),
            )
        )
    return out


def _geomean(xs) -> float:
    xs = [x for x in xs if x > 0 and math.isfinite(x)]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else math.nan


def choose_schedules(rows: list[dict]) -> dict[str, dict]:
    """Per family: {'schedule', 'geomean', 'candidates': {schedule: geomean}, 'excluded': {schedule: why}}."""
    out = {}
    for fam in ("dense", "spatial"):
        mine = [r for r in rows if family(r["arch"]) == fam and math.isfinite(r["ratio"])]
        cases = {(r["arch"], r["resolution"]) for r in mine}
        if not cases:
            continue
        by_schedule: dict[str, dict] = {}
        for r in mine:
            by_schedule.setdefault(r["schedule"], {})[(r["arch"], r["resolution"])] = r
        candidates, excluded = {}, {}
        for schedule, got in sorted(by_schedule.items()):
            if set(got) != cases:
                excluded[schedule] = f"measured on {len(got)} of {len(cases)} cases"
            elif any(r["diff"] > TOLERANCE for r in got.values()):
                worst = max(got.values(), key=lambda r: r["diff"])
                excluded[schedule] = f"{worst['arch']} at {worst['resolution']}: {worst['diff']:.1e} from nt"
            else:
                candidates[schedule] = _geomean(r["ratio"] for r in got.values())
        best = max(candidates, key=candidates.get) if candidates else None
        out[fam] = dict(schedule=best, geomean=candidates.get(best, math.nan), candidates=candidates, excluded=excluded)
    return out


def start_up_seconds(log: str) -> list[float]:
    return [float(x) for x in re.findall(r"start-up: ([0-9.]+) s wall", log)]


def sections(log: str) -> list[tuple[str, str]]:
    """(section, outcome) for each section of gpu_checks.log: 'exit N after S s' or 'skipped ...'."""
    out = []
    for m in re.finditer(r"^-- (.+?): (exit \d+ after \d+ s)$|^== (.+?): (skipped .*)$", log, re.M):
        out.append((m.group(1) or m.group(3), m.group(2) or m.group(4)))
    return out


def pytest_summaries(log: str) -> list[str]:
    return re.findall(r"^=*\s*(\d+ (?:passed|failed)[^\n]*?)\s*=*$", log, re.M)


def on_a_cpu(log: str, prows: list[dict]) -> str | None:
    """Why these files were measured on a CPU, or None: the log's JAX devices, the training backend."""
    jax_line = re.search(r"^jax \S+ flax \S+ (\[.*\])$", log, re.M)
    if jax_line and "Cpu" in jax_line.group(1):
        return f"JAX devices {jax_line.group(1)}"
    cpu = sorted({p["backend"] for p in prows if p["backend"] == "cpu"})
    return "training backend cpu" if cpu else None


@dataclass
class Check:
    what: str
    measured: str
    bar: str
    ok: bool | None  # None: not measured

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "not measured"}[self.ok]


def checks(krows: list[dict], prows: list[dict], schedules: dict, plan_hours: float | None, log: str = "") -> list[Check]:
    out = []
    chosen = {fam: d["schedule"] for fam, d in schedules.items()}
    for arch in ARCHS:
        for res in RESOLUTIONS:
            got = [r for r in krows if r["arch"] == arch and r["resolution"] == res]
            lay = chosen.get(family(arch))
            row = next((r for r in got if r["schedule"] == lay), None)
            what = f"engine/nt, {arch} at {res} x {res}"
            if row is None or not math.isfinite(row["ratio"]):
                out.append(Check(what, "-", f">= {MIN_ENGINE_OVER_NT:g}", None))
            else:
                out.append(Check(what, f"{row['ratio']:.2f} ({lay})", f">= {MIN_ENGINE_OVER_NT:g}",
                                 row["ratio"] >= MIN_ENGINE_OVER_NT))  # fmt: skip
    gap = [r for r in krows if r["arch"] == "GAP" and r["resolution"] == 32 and math.isfinite(r["engine"])]
    if gap:
        best = max(gap, key=lambda r: r["engine"])
        out.append(Check("GAP at 32 x 32, pairs/s (best schedule)", f"{best['engine']:,.0f} ({best['schedule']})",
                         f">= {MIN_GAP32_PAIRS_PER_S:,.0f}", best["engine"] >= MIN_GAP32_PAIRS_PER_S))  # fmt: skip
    else:
        out.append(Check("GAP at 32 x 32, pairs/s (best schedule)", "-", f">= {MIN_GAP32_PAIRS_PER_S:,.0f}", None))
    small = {(p["width"], p["resolution"]) for p in prows if p["width"] <= SMALL_WIDTH}
    for width, res in sorted(small, key=lambda x: (x[1], x[0])):
        best = best_packed(prows, width, res)
        what = f"packed/single, VEC_{width} at {res} x {res}"
        if best is None:
            out.append(Check(what, "-", f">= {MIN_PACKED_OVER_SINGLE:g}", None))
        else:
            out.append(Check(what, f"{best['ratio']:.2f} ({best['mode']}, {best['pack']} runs)",
                             f">= {MIN_PACKED_OVER_SINGLE:g}", best["ratio"] >= MIN_PACKED_OVER_SINGLE))  # fmt: skip
    if not small:
        out.append(Check(f"packed/single, VEC up to width {SMALL_WIDTH}", "-", f">= {MIN_PACKED_OVER_SINGLE:g}", None))
    pins = dict(re.findall(r"^pinning: gpus=(\d) -> (.+)$", log, re.M))
    what = "configure_jax: a job with gpus=0 on the CPU, gpus=1 on the GPU"
    if set(pins) == {"0", "1"}:
        ok = pins["0"] == "cpu" and pins["1"].startswith("gpu")
        out.append(Check(what, f"gpus=0: {pins['0']}; gpus=1: {pins['1']}", "cpu; gpu", ok))
    else:
        out.append(Check(what, "-", "cpu; gpu", None))
    if plan_hours is None:
        out.append(
            Check("symflow plan, config/gpu.yaml at the proposed rates", "-", f"<= {MAX_GPU_HOURS:g} H200-h", None)
        )
    else:
        out.append(Check("symflow plan, config/gpu.yaml at the proposed rates", f"{plan_hours:.2f} H200-h",
                         f"<= {MAX_GPU_HOURS:g} H200-h", plan_hours <= MAX_GPU_HOURS))  # fmt: skip
    return out


def best_packed(prows: list[dict], width: int, res: int) -> dict | None:
    """The fastest packed mode's row of one (width, resolution) case."""
    got = [p for p in prows if p["width"] == width and p["resolution"] == res and p["mode"] != "single"]
    got = [p for p in got if math.isfinite(p["ratio"])]
    return max(got, key=lambda p: p["ratio"]) if got else None


def proposed_rates(krows: list[dict], prows: list[dict], schedules: dict, log: str) -> dict[str, tuple[float, str]]:
    """{RATES name: (value, how it was derived)} for what was measured."""
    out: dict[str, tuple[float, str]] = {}
    limits = machine(krows)
    if limits:
        out["h200_peak_gflops"] = (limits[0], "a 2048^3 float32 matmul, the best of bench/kernel_bench.py's runs")
        out["h200_bandwidth_gbs"] = (limits[1], "a copy of a 268 MB array, the best of bench/kernel_bench.py's runs")
        spatial = schedules.get("spatial", {}).get("schedule")
        gap = [r for r in krows if r["arch"] == "GAP" and r["resolution"] == 32 and r["schedule"] == spatial]
        if gap and math.isfinite(plan_fraction(gap[0], limits)):
            out["h200_kernel_efficiency"] = (
                plan_fraction(gap[0], limits),
                f"GAP at 32 x 32 ({spatial}): {gap[0]['engine']:,.0f} pairs/s",
            )
        dense = schedules.get("dense", {}).get("schedule")
        d32 = [r for r in krows if family(r["arch"]) == "dense" and r["resolution"] == 32 and r["schedule"] == dense]
        d32 = [r for r in d32 if math.isfinite(plan_fraction(r, limits))]
        if d32:
            low = min(d32, key=lambda r: plan_fraction(r, limits))
            out["h200_kernel_efficiency_small_state"] = (
                plan_fraction(low, limits), f"{low['arch']} at 32 x 32 ({dense}): {low['engine']:,.0f} pairs/s, the "
                "lowest fraction of " + ", ".join(sorted(r["arch"] for r in d32)))  # fmt: skip
    singles = [p for p in prows if p["mode"] == "single" and math.isfinite(p["rate"]) and p["rate"] > 0]
    if singles:
        smallest = min(singles, key=lambda p: (p["width"] * p["resolution"] ** 2, p["width"]))
        out["gpu_step_floor_s"] = (
            1.0 / smallest["rate"], f"one step of {smallest['arch']}_{smallest['width']} at {smallest['resolution']} x "
            f"{smallest['resolution']} alone, evaluations included: {smallest['rate']:,.0f} steps/s")  # fmt: skip
    starts = start_up_seconds(log)
    compiles = [p["cold_s"] - p["steps"] / p["rate"] for p in singles if math.isfinite(p["cold_s"])]
    if starts:
        start = statistics.median(starts)
        compile_s = statistics.median(compiles) if compiles else 0.0
        how = f"median start-up {start:.1f} s over {len(starts)} processes"
        how += (
            f" + one run's compilation {compile_s:.1f} s (median over {len(compiles)})"
            if compiles
            else " (compilation not measured)"
        )
        out["h200_job_start_s"] = (start + compile_s, how)
    return out


def pack_advice(prows: list[dict]) -> tuple[int | None, str]:
    """(sgd.pack for config/gpu.yaml, why): 1 where packing loses at the median case."""
    cases = sorted({(p["width"], p["resolution"]) for p in prows})
    best = [b for b in (best_packed(prows, w, r) for w, r in cases) if b is not None]
    if not best:
        return None, "not measured"
    med = statistics.median(b["ratio"] for b in best)
    if med < 1.0:
        return 1, f"packing loses: median best packed/single {med:.2f} over {len(best)} cases"
    return max(b["pack"] for b in best), f"packing wins: median best packed/single {med:.2f} over {len(best)} cases"


# RATES entries the report proposes -> the symflow.costs constants that hold them
PLAN_CONSTANTS = {
    "h200_peak_gflops": "GPU_PEAK_GFLOPS",
    "h200_bandwidth_gbs": "GPU_BANDWIDTH_GBS",
    "h200_kernel_efficiency": "GPU_KERNEL_EFFICIENCY",
    "h200_kernel_efficiency_small_state": "GPU_KERNEL_EFFICIENCY_SMALL_STATE",
    "gpu_step_floor_s": "GPU_STEP_FLOOR_S",
    "h200_job_start_s": "GPU_JOB_START_S",
}


@contextlib.contextmanager
def costs_at(rates: dict[str, tuple[float, str]]):
    """symflow.costs with its GPU constants set to `rates` for the duration, then put back."""
    from symflow import costs as P

    saved = {const: getattr(P, const) for const in PLAN_CONSTANTS.values()}
    try:
        for rate, (value, _) in rates.items():
            if rate in PLAN_CONSTANTS:
                setattr(P, PLAN_CONSTANTS[rate], value)
        yield P
    finally:
        for const, value in saved.items():
            setattr(P, const, value)


def _config(config_paths: list[str]) -> dict:
    from symflow.cli import _configs
    from symflow.configuration import validate

    return validate(_configs(config_paths, over_default=True)[0])


def sharing_line(log: str) -> str | None:
    """resources.jobs_per_gpu from bench/gpu_sharing.py's line: N where N jobs at once give at
    least 1.25x the throughput of one at a time, else 1."""
    m = re.search(r"^sharing: jobs_per_gpu=(\d+), one alone ([\d.]+) s, \d+ at once ([\d.]+) s, throughput ([\d.]+) x",
                  log, re.M)  # fmt: skip
    if not m:
        return None
    n, alone, together, gain = int(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4))
    advice = n if gain >= 1.25 else 1
    return (f"- `resources.jobs_per_gpu` for a one-GPU machine: **{advice}** ({n} small training jobs at once took "
            f"{together:.1f} s against {alone:.1f} s for one: {gain:.2f}x the throughput; with {advice} > 1, run "
            f"snakemake with --resources gpu={advice})" if advice > 1 else
            f"- `resources.jobs_per_gpu`: **1** ({n} small training jobs at once: {gain:.2f}x the throughput of one "
            "at a time, too little to share the device)")  # fmt: skip


def pack_model_lines(prows: list[dict], on_gpu: bool) -> list[str]:
    """What the packed-training rows say of the workflow's loop choice and of the plan's pack model."""
    mode = "packed-device" if on_gpu else "packed-python"  # symflow.train.packed's default loop there
    cases = sorted({(p["width"], p["resolution"]) for p in prows})
    wins = [best_packed(prows, w, r) for w, r in cases]
    wins = [b for b in wins if b is not None]
    if not wins:
        return []
    other = [b for b in wins if b["mode"] != mode]
    names = ", ".join(f"{b['arch']}_{b['width']} at {b['resolution']}" for b in other)
    loop = mode.removeprefix("packed-")
    out = [f"- packed loop: the workflow uses `{loop}` on this backend; it is the faster in "
           f"{len(wins) - len(other)} of {len(wins)} cases"
           + (f" (not in: {names}; see symflow.train.packed's loop choice)" if other else "")]  # fmt: skip
    used = [p for p in prows if p["mode"] == mode and "model" in p and p["model"] > 0 and math.isfinite(p["ratio"])]
    if used:
        ratio = statistics.median(p["ratio"] / p["model"] for p in used)
        out.append(
            f"- the plan's pack model against `{mode}`: measured/model packed/single, median over {len(used)} cases, "
            f"{ratio:.2f}" + (f" (packs take about {1 / ratio:.1f}x the time the plan gives them)" if ratio < 1 else "")
        )
    return out


def replan(config_paths: list[str], rates: dict[str, tuple[float, str]]) -> float:
    """GPU-hours of the configs (merged over config/config.yaml) with symflow.costs' constants set to `rates`."""
    from symflow.plan import plan

    with costs_at(rates):
        result = plan(_config(config_paths))
    return sum(r.hours for r in result.rules if r.gpu)


def model_pack_ratios(prows: list[dict], config_paths: list[str], rates: dict[str, tuple[float, str]]) -> None:
    """Sets row['model'] of each packed row: the packed/single ratio symflow.plan's GPU model
    gives the benchmark's case (its network, resolution, steps, evaluations and pack size)
    at `rates`: a run alone costs max(step, floor) a step and its evaluations; a pack its
    runs' compute, but no less than the floor a step (symflow.costs.pack_cost)."""
    import copy

    with costs_at(rates) as P:
        base = _config(config_paths)
        for row in prows:
            if row["mode"] == "single":
                continue
            cfg = copy.deepcopy(base)
            cfg["data"].update(resolution=row["resolution"], n_val=row["n_eval"], n_test=row["n_eval"])
            cfg["sgd"].update(eval_every=row["eval_every"], batch_size=40)  # bench/packed_training.py's batch
            work = P._sgd_work(cfg, row["arch"], row["width"], row["m"])
            single = work.seconds(row["steps"], P.GPU_STEP_FLOOR_S)
            packed = max(row["pack"] * work.seconds(row["steps"]), row["steps"] * P.GPU_STEP_FLOOR_S)
            row["model"] = row["pack"] * single / packed


def current_rates() -> dict[str, float]:
    try:
        from symflow.costs import RATES
    except Exception:  # noqa: BLE001 - the report still reads its files
        return {}
    return {k: v.value for k, v in RATES.items()}


def current_schedules() -> dict[str, str]:
    try:
        from symflow import engine
    except Exception:  # noqa: BLE001
        return {}
    return dict(engine._SCHEDULE_ACCELERATOR)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def report(folder: Path, replan_configs: list[str] | None = None) -> tuple[str, list[Check]]:
    log_path = folder / "gpu_checks.log"
    log = log_path.read_text(errors="replace") if log_path.is_file() else ""
    krows, prows = kernel_rows(folder), packed_rows(folder)
    schedules = choose_schedules(krows)
    rates = proposed_rates(krows, prows, schedules, log)
    plan_hours = replan(replan_configs, rates) if replan_configs else None
    if replan_configs and prows:
        model_pack_ratios(prows, replan_configs, rates)
    found = checks(krows, prows, schedules, plan_hours, log)
    lines = [f"# GPU report from {folder}", ""]
    devices = re.findall(r"^GPU \d+: .*$", log, re.M)
    if devices:
        lines += [f"Device: {devices[0]}", ""]
    on_cpu = on_a_cpu(log, prows)
    if on_cpu:
        lines += [f"**Not measured on a GPU** ({on_cpu}): these figures are not an H200's; do not copy the "
                  "settings below into the code.", ""]  # fmt: skip
    lines += ["## Acceptance (issue 18)", ""]
    lines += _table(["check", "measured", "bar", "verdict"], [[c.what, c.measured, c.bar, c.verdict] for c in found])
    lines += ["", "## Settings to make", ""]
    cur_schedules = current_schedules()
    for fam, d in schedules.items():
        cands = ", ".join(f"{k} {v:.2f}" for k, v in d["candidates"].items()) or "none"
        excl = "; ".join(f"{k}: {v}" for k, v in d["excluded"].items())
        lines.append(
            f"- `symflow.engine._SCHEDULE_ACCELERATOR['{fam}']`: **{d['schedule']}** (now {cur_schedules.get(fam, '?')}); "
            f"geometric mean of engine/nt by schedule: {cands}" + (f"; not chosen: {excl}" if excl else "")
        )
    if not schedules:
        lines.append("- schedules: not measured")
    cur = current_rates()
    for name, (value, how) in rates.items():
        now = cur.get(name)
        lines.append(f"- `RATES['{name}']`: **{value:.4g}** (now {now:.4g}); {how}" if now is not None
                     else f"- `RATES['{name}']`: **{value:.4g}**; {how}")  # fmt: skip
    pack, why = pack_advice(prows)
    lines.append(f"- `sgd.pack` in config/gpu.yaml: **{pack if pack is not None else '?'}** ({why})")
    lines += pack_model_lines(prows, on_cpu is None)
    sharing = sharing_line(log)
    if sharing:
        lines.append(sharing)
    if plan_hours is not None:
        lines.append(f"- `symflow plan` of {' + '.join(replan_configs)} at these rates: {plan_hours:.2f} H200-hours")
    if krows:
        lines += ["", "## Kernels: engine against neural-tangents", ""]
        rows = [[r["arch"], str(r["resolution"]), r["schedule"], f"{r['pairs']:,}", f"{r['engine']:,.0f}",
                 f"{r['nt']:,.0f}", f"{r['ratio']:.2f}", f"{100 * r['fraction']:.1f}", f"{r['diff']:.1e}"]
                for r in sorted(krows, key=lambda r: (ARCHS.index(r["arch"]) if r["arch"] in ARCHS else 99,
                                                      r["resolution"], r["schedule"]))]  # fmt: skip
        lines += _table(["arch", "R", "schedule", "pairs a call", "engine pairs/s", "nt pairs/s", "engine/nt",
                         "engine % of limit", "max rel. diff"], rows)  # fmt: skip
    if prows:
        lines += ["", "## Packed training: run-steps/s against single runs", ""]
        rows = [[f"{p['arch']}_{p['width']}", str(p["resolution"]), p["mode"], str(p["pack"]), f"{p['rate']:,.1f}",
                 f"{p['ratio']:.2f}", f"{p['model']:.2f}" if "model" in p else "-"]
                for p in sorted(prows, key=lambda p: (p["resolution"], p["width"], p["mode"]))]  # fmt: skip
        lines += _table(["network", "R", "mode", "runs", "run-steps/s (warm)", "packed/single", "plan's model"], rows)
    starts = start_up_seconds(log)
    secs = sections(log)
    if starts or secs:
        lines += ["", "## Log", ""]
        if starts:
            lines.append(f"- GPU job start-up: {', '.join(f'{s:.1f}' for s in starts)} s")
        for name, outcome in secs:
            lines.append(f"- {name}: {outcome}")
        for summary in pytest_summaries(log):
            lines.append(f"- pytest: {summary}")
    return "\n".join(lines) + "\n", found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", type=Path, default=REPO / "bench" / "results" / "gpu")
    ap.add_argument("--markdown", type=Path, default=None, help="also write the report here")
    ap.add_argument("--replan", nargs="+", default=None, metavar="CONFIG",
                    help="price these configs (merged over config/config.yaml) at the proposed rates")  # fmt: skip
    ap.add_argument("--strict", action="store_true", help="exit 1 unless every check is met")
    args = ap.parse_args(argv)
    if not args.folder.is_dir():
        print(f"no such folder: {args.folder}", file=sys.stderr)
        return 2
    text, found = report(args.folder, args.replan)
    print(text, end="")
    if args.markdown:
        args.markdown.write_text(text)
    return 1 if args.strict and not all(c.ok for c in found) else 0


if __name__ == "__main__":
    sys.exit(main())
