"""A real single-node SLURM cluster on the test machine, as a session-scoped fixture.

`slurm_cluster` brings up munged, slurmctld and slurmd (Debian's slurm 22.05 packages,
installed with apt-get when missing), waits until the node is idle, yields a
`SlurmCluster`, and at the end cancels what is left, stops the three daemons by their
PIDs, restores /etc/slurm and removes its scratch directory.

Why each piece is as it is:
- The config must be /etc/slurm/slurm.conf: the SLURM executor plugin's in-job `srun`
  (jobstep plugin) drops every SLURM_* variable, SLURM_CONF included. An existing
  slurm.conf / gres.conf is moved aside and put back afterwards (also after a killed
  run: our file carries a marker line, and a leftover backup is then the original).
- No slurmdbd: `sacct` fails, so the profile makes the plugin poll `squeue`, and the
  cluster keeps finished jobs visible to squeue for MinJobAge = 1 h (the plugin uses
  squeue only when MinJobAge >= 3 x its first status-check delay).
- No cgroups (proctrack/linuxproc, task/none), no accounting: it runs in containers.
- A `gpu` GRES without a GPU: `--gpus`/`--gres` requests are scheduled against it
  exactly as on a real GPU cluster. Slurm's gres/gpu plugin drops a GPU that has no
  File= ("Removing file-less GPU ... from final GRES list", slurm 22.05), so gres.conf
  names an empty regular file per GPU in the scratch directory: no device, never opened.
- Private munged (own key and socket, AuthInfo=socket=...), free TCP ports, state
  and logs in a scratch directory: nothing else on the machine is touched.

It changes the machine (packages, /etc/slurm), so the fixture does so only when asked:
SYMFLOW_SLURM_INSTALL=1 (`make test-slurm`, and CI's .ci/run, set it); otherwise it
skips, saying how to ask. Whenever the machine cannot do this (not Linux/root, no apt-get,
install fails, a SLURM of its own is already running, a daemon does not come up), the
fixture skips with the reason; set SYMFLOW_REQUIRE_SLURM=1 to make that a failure.
Every subprocess runs under a hard timeout. Also usable by hand:
`python tests/slurm_cluster.py` brings a cluster up, prints how to use it, and waits
for Enter.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

APT_PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
NEEDED_PROGRAMS = (
    "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel",
    "srun", "munged", "munge", "unmunge",
)  # fmt: skip
SLURM_ETC = Path("/etc/slurm")
CONF_FILES = ("slurm.conf", "gres.conf")
MARKER = "# written by symflow tests/slurm_cluster.py"
BACKUP_SUFFIX = ".symflow-backup"
LOCK_FILE = Path(tempfile.gettempdir()) / "symflow-slurm-test.lock"
# the variable that allows the fixture to change the machine
INSTALL_VARIABLE = "SYMFLOW_SLURM_INSTALL"
NOT_ASKED = (
    f"not asked to change this machine: set {INSTALL_VARIABLE}=1 (or run `make test-slurm`) to let "
    f"it, as root, apt-get install {' '.join(APT_PACKAGES)} where missing and write "
    f"{SLURM_ETC}/slurm.conf and gres.conf (the originals are put back afterwards)"
)
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

APT_UPDATE_TIMEOUT = 240  # seconds
APT_INSTALL_TIMEOUT = 300
LOCK_TIMEOUT = 300  # another session on this machine holds the cluster
DAEMON_TIMEOUT = 60  # munged, slurmctld and slurmd up and the node idle
COMMAND_TIMEOUT = 30  # any one SLURM client command


class ClusterUnavailable(Exception):
    """This machine cannot run the test cluster; the message says why."""


@dataclass
class SlurmCluster:
    """A running single-node cluster (its daemons stop when the fixture ends)."""

    node: str
    partition: str
    cpus: int
    mem_mb: int
    gpus: int
    scratch: Path
    daemons: dict = field(default_factory=dict)  # name -> subprocess.Popen

    def command(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> str:
        """Run a SLURM client command, return stdout; raise on failure or timeout."""
        proc = run_bounded(list(args), timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stdout}")
        return proc.stdout

    def job_states(self) -> dict[str, str]:
        """Every job slurmctld still knows (finished ones for MinJobAge): id -> state."""
        out = self.command("squeue", "--states=all", "--noheader", "--format=%i|%T")
        return dict(line.split("|", 1) for line in out.split())

    def job_info(self, job_id: str) -> str:
        return self.command("scontrol", "show", "job", "-d", str(job_id))

    def cancel_all(self) -> None:
        """Cancel every job on this private cluster and wait until none runs."""
        run_bounded(["scancel", "--user", "root"], COMMAND_TIMEOUT)
        deadline = time.monotonic() + COMMAND_TIMEOUT
        while time.monotonic() < deadline:
            proc = run_bounded(["squeue", "--noheader", "--format=%i"], COMMAND_TIMEOUT)
            if proc.returncode != 0 or not proc.stdout.strip():
                return
            time.sleep(0.5)

    def logs(self, lines: int = 30) -> str:
        """The tail of each daemon's log, for error messages."""
        parts = []
        for log in sorted(self.scratch.glob("*.log")):
            text = log.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(parts)


# ---------------------------------------------------------------- subprocesses


def run_bounded(cmd, timeout, env=None, cwd=None, input=None) -> subprocess.CompletedProcess:
    """Run cmd (list) in its own process group with a hard timeout.

    stdout and stderr are merged. On timeout the whole group is killed and the result
    has returncode -9 and the output so far plus a note; it never hangs or raises.
    """
    full_env = dict(os.environ if env is None else env)
    full_env["PATH"] = full_env.get("PATH", "") + ":" + SBIN_PATH
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    except OSError as e:
        return subprocess.CompletedProcess(cmd, 127, f"{cmd[0]}: {e}", None)
    try:
        out, _ = proc.communicate(input=input, timeout=timeout)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, None)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:  # a process that left the group may still hold the pipe: do not wait on it
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out = "[output lost]"
        return subprocess.CompletedProcess(
            cmd, -9, (out or "") + f"\n[killed after the {timeout} s timeout]", None
        )


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM a daemon we started (by its PID), SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def _which(program: str) -> str | None:
    return shutil.which(program, path=os.environ.get("PATH", "") + ":" + SBIN_PATH)


# ---------------------------------------------------------------- preconditions


def ensure_packages() -> None:
    """Install Debian's slurm and munge packages if any program is missing."""
    missing = [p for p in NEEDED_PROGRAMS if _which(p) is None]
    if not missing:
        return
    if _which("apt-get") is None:
        raise ClusterUnavailable(f"SLURM programs missing ({', '.join(missing)}) and no apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock = ["-o", "DPkg::Lock::Timeout=120"]
    update = run_bounded(["apt-get", *lock, "update", "-qq"], APT_UPDATE_TIMEOUT, env=env)
    if update.returncode != 0:
        raise ClusterUnavailable("apt-get update failed: " + update.stdout[-800:])
    install = run_bounded(
        ["apt-get", *lock, "install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES],
        APT_INSTALL_TIMEOUT,
        env=env,
    )
    still = [p for p in NEEDED_PROGRAMS if _which(p) is None]
    if install.returncode != 0 or still:
        raise ClusterUnavailable(
            f"apt-get install {' '.join(APT_PACKAGES)} failed ({install.returncode}; "
            f"missing: {', '.join(still) or 'none'}): " + install.stdout[-800:]
        )


def running_slurm_daemons() -> list[str]:
    """'name(pid)' of every slurmctld/slurmd/slurmdbd process on this machine."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:
            continue
        pid = int(comm.parent.name)
        if name in ("slurmctld", "slurmd", "slurmdbd"):
            found.append(f"{name}({pid})")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterUnavailable("cannot read MemTotal from /proc/meminfo")


# ---------------------------------------------------------------- /etc/slurm


def _install_conf(files: dict[str, str]) -> None:
    """Write /etc/slurm/<name> for each file, moving an original aside first."""
    SLURM_ETC.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path, backup = SLURM_ETC / name, SLURM_ETC / (name + BACKUP_SUFFIX)
        if path.exists() and MARKER not in path.read_text(errors="replace"):
            if backup.exists():  # never overwrite either of the machine's files
                raise ClusterUnavailable(f"both {path} and {backup} exist; keep one")
            path.rename(backup)  # the machine's own file, put back by restore_conf
        path.write_text(text)


def restore_conf() -> None:
    """Remove our /etc/slurm files and put any original back (idempotent)."""
    for name in CONF_FILES:
        path, backup = SLURM_ETC / name, SLURM_ETC / (name + BACKUP_SUFFIX)
        if path.exists() and MARKER in path.read_text(errors="replace"):
            path.unlink()
        if backup.exists() and not path.exists():
            backup.rename(path)


def slurm_conf(node, partition, cpus, mem_mb, gpus, scratch, ctld_port, slurmd_port) -> str:
    return f"""{MARKER}; restored when the test session ends
ClusterName=symflowtest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={scratch}/munge/munge.socket
StateSaveLocation={scratch}/state
SlurmdSpoolDir={scratch}/spool
SlurmctldPidFile={scratch}/slurmctld.pid
SlurmdPidFile={scratch}/slurmd.pid
SlurmctldLogFile={scratch}/slurmctld.log
SlurmdLogFile={scratch}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups, no accounting daemon: runs in a container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
# finished jobs stay visible to squeue (the profile's status command) for an hour
MinJobAge=3600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
KillWait=5
# trust the numbers below rather than what slurmd detects (containers)
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName={node} NodeAddr=127.0.0.1 NodeHostname={node} CPUs={cpus} RealMemory={mem_mb} Gres=gpu:{gpus} State=UNKNOWN
""" + "".join(
        f"PartitionName={name} Nodes={node} Default={'YES' if i == 0 else 'NO'} "
        "MaxTime=INFINITE State=UP\n"
        for i, name in enumerate(partition.split(","))
    )


def gres_conf(node, gpus, scratch) -> str:
    # slurm's gres/gpu plugin drops a GPU without File= ("Removing file-less GPU"), so
    # each one names an empty regular file: no device, never opened, no CUDA
    files = ",".join(f"{scratch}/gpu{i}" for i in range(gpus))
    return f"""{MARKER}
AutoDetect=off
NodeName={node} Name=gpu File={files}
"""


# ---------------------------------------------------------------- bring up


def _wait_for(predicate, timeout, what, cluster=None, daemons=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in daemons:
            if proc.poll() is not None:
                raise ClusterUnavailable(
                    f"{name} exited with {proc.returncode} while waiting for {what}"
                    + ("\n" + cluster.logs() if cluster else "")
                )
        if predicate():
            return
        time.sleep(0.3)
    raise ClusterUnavailable(
        f"timed out after {timeout} s waiting for {what}"
        + ("\n" + cluster.logs() if cluster else "")
    )


@contextlib.contextmanager
def _machine_lock():
    """One test cluster per machine at a time (other sessions may run `make test`)."""
    with open(LOCK_FILE, "w") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ClusterUnavailable(
                        f"another test session held {LOCK_FILE} for {LOCK_TIMEOUT} s"
                    ) from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def single_node_cluster(partition: str = "main", gpus: int = 1):
    """Context manager: a running cluster for the duration of the block.

    partition: a name, or several separated by commas (all on the one node, the first
    the default), as a profile's slurm_partition may list them.

    Raises ClusterUnavailable (before yielding) when this machine cannot run one.
    """
    if not sys.platform.startswith("linux"):
        raise ClusterUnavailable("needs Linux")
    if os.geteuid() != 0:
        raise ClusterUnavailable("needs root (it installs packages and runs SLURM daemons)")
    if not re.fullmatch(r"[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*", partition):
        raise ClusterUnavailable(f"unusable partition name {partition!r}")
    with _machine_lock():
        others = running_slurm_daemons()
        if others:
            raise ClusterUnavailable(
                "this machine already runs SLURM daemons (" + ", ".join(others) + "); "
                "the test brings up its own cluster and does not touch an existing one"
            )
        ensure_packages()
        restore_conf()  # a run killed before its clean-up left our files behind

        node = socket.gethostname().split(".")[0]
        cpus = os.cpu_count() or 1
        mem_mb = max(1000, int(_mem_total_mb() * 0.75))
        scratch = Path(tempfile.mkdtemp(prefix="symflow-slurm-"))
        scratch.chmod(0o755)
        for sub in ("munge", "state", "spool"):
            (scratch / sub).mkdir(mode=0o755)
        cluster = SlurmCluster(node, partition, cpus, mem_mb, gpus, scratch)
        stopped = False

        def teardown():
            nonlocal stopped
            if stopped:
                return
            stopped = True
            if "slurmctld" in cluster.daemons and cluster.daemons["slurmctld"].poll() is None:
                cluster.cancel_all()
            for name in ("slurmd", "slurmctld", "munged"):
                if name in cluster.daemons:
                    _stop(cluster.daemons[name])
            restore_conf()
            if os.environ.get("SYMFLOW_KEEP_SLURM_SCRATCH"):
                print(f"slurm_cluster: kept {scratch}", file=sys.stderr)
            else:
                shutil.rmtree(scratch, ignore_errors=True)

        atexit.register(teardown)  # also when the session is interrupted
        try:
            _bring_up(cluster)
            yield cluster
        finally:
            teardown()
            atexit.unregister(teardown)


def _daemon(cluster: SlurmCluster, name: str, cmd: list[str]) -> subprocess.Popen:
    out = open(cluster.scratch / f"{name}.out.log", "w")
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C in the terminal does not reach it first
        env=dict(os.environ, PATH=os.environ.get("PATH", "") + ":" + SBIN_PATH),
    )
    out.close()
    cluster.daemons[name] = proc
    return proc


def _bring_up(cluster: SlurmCluster) -> None:
    s = cluster.scratch
    sock = s / "munge" / "munge.socket"
    key = s / "munge" / "munge.key"
    for i in range(cluster.gpus):
        (s / f"gpu{i}").touch()
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    munged = _daemon(
        cluster,
        "munged",
        [_which("munged"), "--foreground", f"--socket={sock}", f"--key-file={key}",
         f"--pid-file={s}/munged.pid", f"--log-file={s}/munged.log",
         f"--seed-file={s}/munged.seed"],
    )  # fmt: skip

    def munge_works():
        enc = run_bounded(["munge", "-n", "-S", str(sock)], 5)
        return (
            enc.returncode == 0
            and run_bounded(["unmunge", "-S", str(sock)], 5, input=enc.stdout).returncode == 0
        )

    _wait_for(munge_works, DAEMON_TIMEOUT, "munged", cluster, [("munged", munged)])

    conf = slurm_conf(
        cluster.node, cluster.partition, cluster.cpus, cluster.mem_mb, cluster.gpus,
        s, _free_port(), _free_port(),
    )  # fmt: skip
    _install_conf({"slurm.conf": conf, "gres.conf": gres_conf(cluster.node, cluster.gpus, s)})
    conf_path = str(SLURM_ETC / "slurm.conf")
    ctld = _daemon(cluster, "slurmctld", [_which("slurmctld"), "-D", "-c", "-f", conf_path])

    def controller_up():
        proc = run_bounded(["scontrol", "ping"], 10)
        return proc.returncode == 0 and "is UP" in proc.stdout

    # slurmd registers once at start; if slurmctld is not listening yet, the node stays
    # down until slurmctld's next ping (minutes), so start slurmd only after this
    _wait_for(controller_up, DAEMON_TIMEOUT, "slurmctld", cluster, [("slurmctld", ctld)])
    slurmd = _daemon(
        cluster, "slurmd", [_which("slurmd"), "-D", "-f", conf_path, "-N", cluster.node]
    )

    def node_idle():
        proc = run_bounded(
            ["sinfo", "--noheader", "--Node", "--format=%T", "-n", cluster.node], 10
        )
        # one line per partition the node is in
        return proc.returncode == 0 and set(proc.stdout.split()) == {"idle"}

    _wait_for(
        node_idle, DAEMON_TIMEOUT, f"node {cluster.node} to be idle", cluster,
        [("munged", munged), ("slurmctld", ctld), ("slurmd", slurmd)],
    )  # fmt: skip


# ---------------------------------------------------------------- pytest


def _skip_or_fail(reason: str):
    if os.environ.get("SYMFLOW_REQUIRE_SLURM"):
        pytest.fail(f"SLURM test cluster unavailable: {reason}")
    pytest.skip(f"SLURM test cluster unavailable: {reason}")


def profile_partition(profile: Path) -> str:
    """The slurm_partition a profile's default-resources names ('' if none)."""
    import yaml

    data = yaml.safe_load(profile.read_text()) or {}
    resources = data.get("default-resources") or {}
    if isinstance(resources, list):  # the ["name=value", ...] form
        resources = dict(item.split("=", 1) for item in resources)
    return str(resources.get("slurm_partition", "") or "").strip("'\"")


PROFILE = Path(__file__).resolve().parent.parent / "profiles" / "slurm"
EXTRA_PARTITION = "bigmem"


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running single-node SLURM with the partition(s) the slurm profile names (the first,
    the default), and EXTRA_PARTITION for the routing test (profiles/slurm/partitions.yaml's
    large-memory partition), all on the one node."""
    partition = profile_partition(PROFILE / "config.yaml") or "main"
    if EXTRA_PARTITION not in partition.split(","):
        partition += f",{EXTRA_PARTITION}"
    if os.environ.get(INSTALL_VARIABLE) != "1":
        _skip_or_fail(NOT_ASKED)
    try:
        manager = single_node_cluster(partition=partition, gpus=1)
        cluster = manager.__enter__()
    except ClusterUnavailable as e:
        _skip_or_fail(str(e))
    try:
        yield cluster
    finally:
        manager.__exit__(None, None, None)


if __name__ == "__main__":
    with single_node_cluster(partition=sys.argv[1] if len(sys.argv) > 1 else "main") as c:
        print(f"node {c.node} idle, partition {c.partition}, scratch {c.scratch}")
        print("try: sinfo; sbatch --gpus=1 --wrap 'sleep 5'; squeue --states=all")
        input("Enter stops the cluster and restores /etc/slurm ... ")
