"""profiles/slurm against a real single-node SLURM (tests/slurm_cluster.py).

Skipped unless SYMFLOW_SLURM_INSTALL=1 (`make test-slurm`; CI's .ci/run sets it): the
cluster installs Debian packages and writes /etc/slurm. Skipped, with the reason, where the
machine cannot run SLURM daemons (not root, no apt-get, install fails, a SLURM of its own
already runs); SYMFLOW_REQUIRE_SLURM=1 turns that into a failure. Every snakemake run has a hard timeout, and whatever it left in
the queue is cancelled.
"""

from __future__ import annotations

import csv
import datetime
import importlib.util
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from slurm_cluster import run_bounded, slurm_cluster  # noqa: F401 (the fixture)

from symflow.h5io import CHECKSUM_ATTR, read_attrs

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
PROFILE = "profiles/slurm"
SNAKEMAKE_TIMEOUT = 240  # seconds, one workflow run
# the plugin waits 40 s before its first status check and after each finished job;
# its docs suggest lowering that for test runs, the rest of the profile is used as is
FAST_STATUS = ["--slurm-init-seconds-before-status-checks", "2"]
# top-level entries of the repository that a run does not need (outputs, envs, caches)
NOT_COPIED = {
    ".git", ".venv", "results", "logs", "benchmarks", "resources", ".snakemake",
    ".pytest_cache", ".hypothesis", ".cache", ".whl", "build",
}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def _needs_plugin():
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm is not installed in this Python")


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    """The repository's sources in a fresh directory: runs write results/ there."""

    def ignore(folder, names):
        skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        if Path(folder) == REPO:
            skip |= NOT_COPIED & set(names)
        return skip

    dest = tmp_path_factory.mktemp("slurm-run") / "symflow"
    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)
    return dest


def snakemake(cluster, args, cwd: Path, timeout: float = SNAKEMAKE_TIMEOUT):
    """Run snakemake under a hard timeout; cancel whatever it left on the cluster."""
    env = dict(os.environ, PYTHONPATH=str(cwd))  # jobs import this copy's symflow
    start = time.monotonic()
    try:
        proc = run_bounded(
            [sys.executable, "-m", "snakemake", *args], timeout, env=env, cwd=cwd
        )
    finally:
        cluster.cancel_all()
    proc.seconds = time.monotonic() - start
    return proc


def explain(proc, cluster) -> str:
    return f"snakemake exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{cluster.logs(15)}"


def submissions(workdir: Path) -> list[tuple[str, str]]:
    """(Snakemake job id, SLURM job id) of every submission of the run (a retried job has
    several), from its snakemake log."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    assert logs, "snakemake wrote no log"
    return re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", logs[-1].read_text())


def submitted_jobs(workdir: Path) -> dict[str, str]:
    """Snakemake job id -> SLURM job id (its last submission), from the run's snakemake log."""
    return dict(submissions(workdir))


def test_cluster_schedules_gpus_through_gres(slurm_cluster):
    """The control: two CPU jobs share the node, two --gpus=1 jobs cannot."""
    c = slurm_cluster
    if c.cpus < 2:
        pytest.skip(f"the control needs two CPUs, this machine has {c.cpus}")
    sbatch = ["sbatch", "--parsable", "--cpus-per-task=1", "--mem=100", "-t", "2"]
    cpu = [c.command(*sbatch, "--wrap", "sleep 2").strip() for _ in range(2)]
    gpu = [c.command(*sbatch, "--gpus=1", "--wrap", "sleep 2").strip() for _ in range(2)]
    deadline = time.monotonic() + 60
    while any(c.job_states().get(j) != "COMPLETED" for j in cpu + gpu):
        assert time.monotonic() < deadline, c.command("squeue", "--states=all")
        time.sleep(0.5)
    times = {}
    for line in c.command("squeue", "--states=all", "--noheader", "--format=%i|%S|%e").split():
        job, start, end = line.split("|")
        times[job] = (start, end)  # ISO timestamps, one-second resolution
    assert (
        times[cpu[0]][0] < times[cpu[1]][1] and times[cpu[1]][0] < times[cpu[0]][1]
    ), f"two 1-CPU jobs did not run side by side on a 2-CPU node: {times}"
    first, second = sorted(gpu, key=lambda j: times[j][0])
    assert times[second][0] >= times[first][1], f"two jobs held the one GPU at once: {times}"
    assert "TresPerJob=gres:gpu:1" in c.job_info(gpu[0])


def test_gpu_jobs_never_overlap(slurm_cluster, repo_copy, tmp_path):
    """Independent gpu=1 jobs through the profile run one at a time on a 1-GPU node."""
    snakefile = repo_copy / "tests" / "slurm_gpu_probe" / "Snakefile"
    proc = snakemake(
        slurm_cluster,
        ["--snakefile", str(snakefile), "--directory", str(tmp_path),
         "--profile", str(repo_copy / PROFILE), *FAST_STATUS, "--config", "jobs=3", "seconds=3"],
        cwd=repo_copy,
    )  # fmt: skip
    assert proc.returncode == 0, explain(proc, slurm_cluster)
    print(f"gpu probe: snakemake took {proc.seconds:.0f} s")

    rows = []
    for out in sorted((tmp_path / "probe").glob("*.txt")):
        job, gpus, start, end = out.read_text().split()
        rows.append((float(start), float(end), job, gpus))
    assert len(rows) == 3, f"expected 3 probe outputs, found {len(rows)}"
    assert len({job for *_, job, _ in rows}) == 3, f"not three distinct SLURM jobs: {rows}"
    assert set(submitted_jobs(tmp_path).values()) == {job for *_, job, _ in rows}
    rows.sort()
    for (_, end, job, _), (start, _, nxt, _) in zip(rows, rows[1:]):
        assert start >= end, f"GPU jobs {job} and {nxt} overlapped: {rows}"
    for *_, job, gpus in rows:
        # the plugin asked for a GPU (sbatch --gpus=1) and SLURM allocated one to the step
        assert "TresPerJob=gres:gpu:1" in slurm_cluster.job_info(job), job
        assert gpus == "1", f"job {job} saw SLURM_GPUS_ON_NODE={gpus}"


def test_tiny_config_to_figS2(slurm_cluster, repo_copy):
    """The tiny config through the profile, every job an sbatch job, to Fig. S2."""
    proc = snakemake(
        slurm_cluster,
        ["results/figS2.pdf", "--profile", PROFILE, *FAST_STATUS,
         "--configfile", "tests/configs/tiny.yaml"],
        cwd=repo_copy,
    )  # fmt: skip
    assert proc.returncode == 0, explain(proc, slurm_cluster)
    print(f"figS2: snakemake took {proc.seconds:.0f} s")

    figure = repo_copy / "results" / "figS2.pdf"
    assert figure.is_file() and figure.stat().st_size > 0
    jobs = submitted_jobs(repo_copy)
    assert len(jobs) >= 2, f"expected several sbatch submissions, the log has {jobs}"
    states = slurm_cluster.job_states()
    assert all(states.get(j) == "COMPLETED" for j in jobs.values()), (jobs, states)
    names = slurm_cluster.command("squeue", "--states=all", "--noheader", "--format=%i|%j")
    name_of = dict(line.split("|", 1) for line in names.split())
    assert all(name_of[j].startswith("symflow_") for j in jobs.values()), name_of


def slurm_jobs(cluster, ids) -> dict[str, dict[str, str]]:
    """SLURM job id -> its rule (the plugin's job comment rule_<name>[_wildcards_...]), state,
    start and end (ISO, one-second resolution), time limit, CPUs and partition."""
    out = cluster.command("squeue", "--states=all", "--noheader", "--format=%i|%k|%T|%S|%e|%l|%C|%P")
    rows = {}
    for line in out.splitlines():
        job, comment, state, start, end, limit, cpus, partition = line.split("|")
        if job in ids:
            rule = re.match(r"rule_(\w+?)(?:_wildcards_|$)", comment).group(1)
            rows[job] = dict(rule=rule, state=state, start=start, end=end, limit=limit, cpus=cpus, partition=partition)
    return rows


def _stamp(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f")


PACKED = """
model: {depth: 8}
data: {n_test: 40}
regression: {kernels: [ntk]}
"""
DATASET = "cifar10-sample.0e454ec3-r8-n200.40.40-split0"


def test_packed_blocks_run_one_after_another_in_one_job(slurm_cluster, repo_copy):
    """A pack of kernel blocks (kernels.pack_minutes) is one sbatch job: one process computes
    its blocks one after another, inside the job's start and end, on the threads the job asked
    for, under a time limit that covers them in series (the plan's runtime for the pack)."""
    from symflow.cli import _load_configs
    from symflow.configuration import validate
    from symflow.jobs import BlockPack, Jobs
    from symflow.costs import resources
    from symflow.plan import job_cost

    (repo_copy / "packed.yaml").write_text(PACKED)
    folder = f"{DATASET}/GAP/L8-w2-b0.01-f3/engine-float32/identity/s0/B40"
    target = f"results/regression/{folder.replace('/B40', '')}/m40/ntk.csv"
    proc = snakemake(
        slurm_cluster,
        [target, "--profile", PROFILE, *FAST_STATUS, "--configfile", "tests/configs/tiny.yaml", "packed.yaml"],
        cwd=repo_copy,
    )  # fmt: skip
    assert proc.returncode == 0, explain(proc, slurm_cluster)
    assert (repo_copy / target).is_file()
    jobs = slurm_jobs(slurm_cluster, set(submitted_jobs(repo_copy).values()))
    # the dataset, the column's three blocks as one pack, the regression
    assert sorted(re.sub(r"_[0-9a-f]{10}$", "", j["rule"]) for j in jobs.values()) == [
        "compute_gram_block_pack", "fit_kernel_regression", "transform_dataset"]
    ((job_id, job),) = [(i, j) for i, j in jobs.items() if j["rule"].startswith("compute_gram_block_pack")]
    assert job["state"] == "COMPLETED" and job["cpus"] == "1", job  # kernels.threads: 1, not the members' sum

    cwd = os.getcwd()
    os.chdir(repo_copy)  # the data source's digest is read where the run read it
    try:
        cfg = validate(_load_configs(["config/config.yaml", "tests/configs/tiny.yaml", "packed.yaml"]))
        (pack,) = [p for p in Jobs(cfg).packs(BlockPack) if p.rule_name == job["rule"]]
    finally:
        os.chdir(cwd)
    limit = resources(job_cost(cfg, pack))["runtime"]
    assert job["limit"] == f"{limit}:00", (job, limit)

    members = []
    for block in pack.blocks:
        lines = (repo_copy / block.log()).read_text().splitlines()
        begin = next(line for line in lines if re.search(r"\(pack member \d+ of 3, process \d+\) \.\.\.$", line))
        end = next(line for line in lines if re.search(r"\) done in [0-9.]+ s$", line))
        pid = re.search(r"process (\d+)\)", begin).group(1)
        members.append((_stamp(begin[:23]), _stamp(end[:23]), pid))
    start, stop = (datetime.datetime.fromisoformat(job[k]) for k in ("start", "end"))
    second = datetime.timedelta(seconds=1)  # squeue's resolution
    print(f"pack job {job_id}: {job['start']} .. {job['end']}, limit {job['limit']}, {job['cpus']} CPU; members "
          + ", ".join(f"{a.time()}..{b.time()} (pid {p})" for a, b, p in members))
    assert len({pid for *_, pid in members}) == 1, members  # one process
    for (_, end, _), (begin, _, _) in zip(members, members[1:]):
        assert begin >= end, members  # one after another
    assert start - second <= members[0][0] and members[-1][1] <= stop + second, (job, members)
    # the request covers the members in series, with the margin of the plan
    assert 60 * limit >= (members[-1][1] - members[0][0]).total_seconds()


# A run that trains for about two minutes on a 2-CPU test node (180,000 steps of a 2-channel GAP,
# 0.55-1 ms a step; a checkpoint every 500), under a partition limit of one minute: SLURM kills it
# at its limit (60-95 s after it starts: slurmctld checks limits every 30 s, then KillWait), and
# the retry resumes from the checkpoint, until an attempt finishes.
TIME_LIMITED = """
model: {depth: 2}
sgd: {max_steps: 180000, max_epochs: null, eval_every: 500, checkpoint_every: 500}
resources: {max_runtime: 1}
"""
RUN = "cifar10-sample.0e454ec3-r8-n200.40.80-split0/GAP-w2-gaussian/L2-w2-b0.01-f3/identity/nn/m200/s0/i0"


def test_a_run_killed_by_its_time_limit_resumes_to_the_same_numbers(slurm_cluster, repo_copy, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    (repo_copy / "limited.yaml").write_text(TIME_LIMITED)
    configs = ["--configfile", "tests/configs/tiny.yaml", "limited.yaml"]
    target = f"results/sgd/{RUN}/metrics.csv"
    # the same run, never stopped: locally, in a folder of its own, while the cluster runs ours
    reference = tmp_path / "reference"
    reference.mkdir()
    (reference / "config").mkdir()
    shutil.copy(repo_copy / "config" / "config.yaml", reference / "config")
    with ThreadPoolExecutor(1) as pool:
        local = pool.submit(
            run_bounded,
            [sys.executable, "-m", "snakemake", "-s", str(repo_copy / "Snakefile"), "-d", str(reference),
             "--cores", "1", target, *configs],
            3 * SNAKEMAKE_TIMEOUT, cwd=repo_copy, env=dict(os.environ, PYTHONPATH=str(repo_copy)),
        )  # fmt: skip
        proc = snakemake(
            slurm_cluster, [target, "--profile", PROFILE, *FAST_STATUS, *configs], cwd=repo_copy,
            timeout=4 * SNAKEMAKE_TIMEOUT,
        )  # fmt: skip
        local = local.result()
    assert local.returncode == 0, local.stdout[-4000:]
    assert proc.returncode == 0, explain(proc, slurm_cluster)
    print(f"time limit: snakemake on SLURM took {proc.seconds:.0f} s")
    jobs = slurm_jobs(slurm_cluster, {slurm for _, slurm in submissions(repo_copy)})
    training = sorted((j for j in jobs.values() if j["rule"] == "train_sgd"), key=lambda j: j["start"])
    print("train_sgd attempts: " + ", ".join(f"{j['state']} {j['start']}..{j['end']} (limit {j['limit']})"
                                             for j in training))  # fmt: skip
    assert all(j["limit"] == "1:00" for j in training), training  # the partition limit caps the request
    states = [j["state"] for j in training]
    assert states[-1] == "COMPLETED" and set(states[:-1]) == {"TIMEOUT"} and len(states) >= 2, training
    log = (repo_copy / "logs" / "sgd" / f"{RUN}.log").read_text()  # the last attempt's
    assert "resumed from checkpoint" in log

    def numbers(root: Path, name: str) -> list[dict]:
        rows = list(csv.DictReader(open(root / f"results/sgd/{RUN}/{name}")))
        return [{k: v for k, v in row.items() if k not in ("wall_time_s", "path")} for row in rows]

    for name in ("metrics.csv", "curve.csv"):
        assert numbers(repo_copy, name) == numbers(reference, name), name
    ours, theirs = (read_attrs(root / f"results/sgd/{RUN}/predictions.h5")[CHECKSUM_ATTR] for root in (repo_copy, reference))
    assert ours == theirs


PARTITIONS = """
partitions:
  main: {max_mem_mb: 4000, max_threads: 2}
  bigmem: {max_mem_mb: 16000, max_threads: 2}
"""


def test_large_memory_jobs_go_to_the_partition_that_fits(slurm_cluster, repo_copy, tmp_path):
    """With the plugin's partition file (profiles/slurm/partitions.yaml), a job routes
    by its resources: one asking more memory than `main` allows goes to `bigmem`."""
    (tmp_path / "partitions.yaml").write_text(PARTITIONS)
    snakefile = repo_copy / "tests" / "slurm_gpu_probe" / "Snakefile"
    proc = snakemake(
        slurm_cluster,
        ["--snakefile", str(snakefile), "--directory", str(tmp_path), "--profile", str(repo_copy / PROFILE),
         *FAST_STATUS, "--slurm-partition-config", str(tmp_path / "partitions.yaml"), "memory"],
        cwd=repo_copy,
    )  # fmt: skip
    assert proc.returncode == 0, explain(proc, slurm_cluster)
    seen = {p.stem: p.read_text().split() for p in (tmp_path / "memory").glob("*.txt")}
    assert seen == {"1000": ["main"], "6000": ["bigmem"]}, seen
