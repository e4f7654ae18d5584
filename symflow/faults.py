"""Fault injection for the reliability tests (tests/faults/): kill a job at a chosen point.

With the environment variable ``SYMFLOW_FAULT_KILL`` unset (always, outside the tests)
:func:`fault_point` returns at once and nothing else changes. Set, it is a comma-separated
list of ``label:n`` or ``label:n:substring`` items; the n-th call of
``fault_point(label, where)`` in this process whose ``where`` contains ``substring``
sends SIGKILL to the process itself, so the kill lands at an exact place, e.g. halfway
through writing an artifact, deterministically. The points symflow marks:

    h5.dataset      write_h5, after each dataset is written (and flushed) to the temporary file
    atomic.rename   atomic_path, the temporary file complete, before the rename to the final path
    atomic.renamed  atomic_path, just after the rename (the job's other outputs may be missing)
    ckpt.write      Checkpoint.save, halfway through the checkpoint's bytes
    train.eval      the training loop, after each evaluation (and the checkpoint it saves)
    kernel.tile     stream_kernel, after each tile of rows of a Gram block

``where`` is the final path of the file (h5.*, atomic.*, ckpt.write), the checkpoint path
(train.eval) or the block's name such as ``FCN train 0-0`` (kernel.tile).
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "SYMFLOW_FAULT_KILL"
_hits: dict[tuple[str, str], int] = {}


def armed() -> bool:
    """Is any fault point set (e.g. to flush a file before a possible kill)?"""
    return bool(os.environ.get(FAULT_ENV))


def parse(spec: str) -> list[tuple[str, int, str]]:
    """'label:n[:substring],...' -> [(label, n, substring)]; a malformed item raises ValueError."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        parts = item.split(":", 2)
        if len(parts) < 2 or not parts[1].isdigit() or int(parts[1]) < 1:
            raise ValueError(f"{FAULT_ENV}: {item!r} is not label:n[:substring] with n >= 1")
        out.append((parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""))
    return out


def fault_point(label: str, where: str = "") -> None:
    """SIGKILL this process at the n-th matching hit of `label` (see the module docstring)."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for want, n, substring in parse(spec):
        if want != label or substring not in where:
            continue
        key = (label, substring)
        _hits[key] = _hits.get(key, 0) + 1
        if _hits[key] == n:
            os.kill(os.getpid(), signal.SIGKILL)
