"""profiles/slurm against a real single-node SLURM (tests/slurm_cluster.py).

Skipped unless SYMFLOW_SLURM_INSTALL=1 (`make test-slurm`; CI's .ci/run sets it): the
cluster installs Debian packages and writes /etc/slurm. Skipped, with the reason, where the
machine cannot run SLURM daemons (not root, no apt-get, install fails, a SLURM of its own
already runs); SYMFLOW_REQUIRE_SLURM=1 turns that into a failure. Every snakemake run has a hard timeout, and whatever it left in
the queue is cancelled.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
from slurm_cluster import run_bounded, slurm_cluster  # noqa: F401 (the fixture)

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


def snakemake(cluster, args, cwd: Path):
    """Run snakemake under a hard timeout; cancel whatever it left on the cluster."""
    env = dict(os.environ, PYTHONPATH=str(cwd))  # jobs import this copy's symflow
    start = time.monotonic()
    try:
        proc = run_bounded(
            [sys.executable, "-m", "snakemake", *args], SNAKEMAKE_TIMEOUT, env=env, cwd=cwd
        )
    finally:
        cluster.cancel_all()
    proc.seconds = time.monotonic() - start
    return proc


def explain(proc, cluster) -> str:
    return f"snakemake exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{cluster.logs(15)}"


def submitted_jobs(workdir: Path) -> dict[str, str]:
    """Snakemake job id -> SLURM job id, from the run's snakemake log."""
    logs = sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log"))
    assert logs, "snakemake wrote no log"
    text = logs[-1].read_text()
    return dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", text))


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


GROUPED = """
model: {depth: 2}
data: {n_test: 40}
regression: {kernels: [ntk]}
"""


def test_cheap_kernel_blocks_go_as_one_group_job(slurm_cluster, repo_copy):
    """Blocks of the group gram_blocks go to SLURM together (group-components), packed
    to the profile's `cores` (here the test node's), and the regression reads them."""
    (repo_copy / "grouped.yaml").write_text(GROUPED)
    target = (
        "results/regression/cifar10-sample.0e454ec3-r8-n200.40.40-split0/FCN/L2-w2-b0.01-f3/engine-float32/"
        "identity/s0/m40/ntk.csv"
    )
    proc = snakemake(
        slurm_cluster,
        [target, "--profile", PROFILE, *FAST_STATUS, "--cores", str(slurm_cluster.cpus),
         "--configfile", "tests/configs/tiny.yaml", "grouped.yaml"],
        cwd=repo_copy,
    )  # fmt: skip
    assert proc.returncode == 0, explain(proc, slurm_cluster)
    assert (repo_copy / target).is_file()
    blocks = sorted((repo_copy / "results" / "kernels").rglob("*.h5"))
    assert len(blocks) == 3, blocks  # train 0-0, val 0-0, test 0-0
    text = sorted((repo_copy / ".snakemake" / "log").glob("*.snakemake.log"))[-1].read_text()
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", text)
    # the dataset, the three blocks as one group job, the regression
    assert len(submitted) == 3, f"expected 3 sbatch submissions, the log has {submitted}"
    assert "gram_blocks" in text
