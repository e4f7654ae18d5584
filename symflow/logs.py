"""Logging for workflow jobs: everything a job says goes to its log file."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager
from typing import Iterator

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# the last line of every job's log: its process's CPU time and peak memory (read by
# bench/plan_vs_run.py: CPU time does not grow when other jobs share the cores, wall time does)
USAGE_LINE = "process usage: cpu {cpu:.2f} s (user {user:.2f}, system {system:.2f}), max rss {rss_mb:.0f} MB"


def process_usage() -> dict[str, float]:
    """CPU seconds of this process since it started (user, system, and of waited-for children), peak RSS."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = me.ru_utime + kids.ru_utime, me.ru_stime + kids.ru_stime
    rss_mb = max(me.ru_maxrss, kids.ru_maxrss) / 1024  # kB on Linux
    return {"cpu": user + system, "user": user, "system": system, "rss_mb": rss_mb}


def log_to(path: str | None, name: str = "symflow") -> logging.Logger:
    """Send symflow's log records, warnings and stderr to `path` (append); return a logger."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if path:
        stream = open(path, "a", buffering=1)
        sys.stderr = stream
        handler: logging.Handler = logging.StreamHandler(stream)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.handlers[:] = [handler]
    logging.captureWarnings(True)
    for noisy in ("jax._src", "absl", "matplotlib", "fontTools", "PIL", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    log = logging.getLogger(name)
    if path and not getattr(log_to, "_usage_registered", False):
        import atexit

        atexit.register(lambda: log.info(USAGE_LINE.format(**process_usage())))
        log_to._usage_registered = True
    return log


def file_logger(path: str, name: str) -> logging.Logger:
    """A logger `name` that also writes to its own file `path` (append), besides what
    log_to set up: one job's several runs, each with its log (a packed training job)."""
    log = logging.getLogger(name)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(FORMAT))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return log


@contextmanager
def timed(log: logging.Logger, what: str) -> Iterator[None]:
    start = time.perf_counter()
    log.info("%s ...", what)
    yield
    log.info("%s done in %.2f s", what, time.perf_counter() - start)


class Progress:
    """Log 'done/total (pct) rate, eta' at most every `every` seconds."""

    def __init__(self, log: logging.Logger, what: str, total: int, unit: str = "items", every: float = 10.0):
        self.log, self.what, self.total, self.unit, self.every = log, what, max(int(total), 1), unit, every
        self.start = self.last = time.perf_counter()
        self.done = 0

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            self.log.info(
                "%s: %d/%d %s (%.0f%%), %.1f %s/s, eta %.0f s",
                self.what, self.done, self.total, self.unit, 100 * self.done / self.total, rate, self.unit, eta,
            )
