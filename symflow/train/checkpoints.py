"""A run's resumable state in one checksummed file (Checkpoint), the fingerprint that
ties a checkpoint to the settings of the run that wrote it, and the train state to and from
its checkpointed dict (state_dict, restore_state: lone and packed runs alike)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

_log = logging.getLogger("symflow.train")  # the package's one logger, named as before the split

_MAGIC = b"SYMFLOW-CHECKPOINT-1\n"


class Checkpoint:
    """A run's resumable state in one file, written atomically, with a SHA-256 of its payload.

    Layout: a magic line, the payload's hex SHA-256 and a newline, then the payload
    (flax msgpack of a dict). `load` returns None, with a logged message, for a
    missing, corrupt or foreign (other fingerprint) file; the run then starts afresh.
    """

    def __init__(self, path: str | os.PathLike, fingerprint: str, log: logging.Logger | None = None):
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.log = log or _log

    def save(self, tree: dict) -> None:
        from flax import serialization

        from symflow.faults import armed, fault_point
        from symflow.h5io import atomic_path

        payload = serialization.msgpack_serialize({**tree, "fingerprint": self.fingerprint})
        digest = hashlib.sha256(payload).hexdigest().encode()
        blob = _MAGIC + digest + b"\n" + payload
        with atomic_path(self.path, suffix=".ckpt") as tmp:
            with open(tmp, "wb") as fh:
                if armed():  # fault injection (tests): die with half the checkpoint written
                    fh.write(blob[: len(blob) // 2])
                    fh.flush()
                    fault_point("ckpt.write", str(self.path))
                fh.write(blob[fh.tell() :])

    def load(self) -> dict | None:
        from flax import serialization

        self._remove_stale_temporaries()
        if not self.path.exists():
            return None
        try:
            tree = serialization.msgpack_restore(checkpoint_payload(self.path))
        except Exception as exc:  # any unreadable file: start afresh, never crash
            self.log.warning("checkpoint %s ignored: %s; training starts from step 0", self.path, exc)
            return None
        if tree.get("fingerprint") != self.fingerprint:
            self.log.warning("checkpoint %s ignored: it belongs to other run settings; starting from step 0", self.path)
            return None
        return tree

    def remove(self) -> None:
        if self.path.exists():
            self.path.unlink()
        self._remove_stale_temporaries()
        for parent in self.path.parents:  # prune empty folders up to checkpoints/
            try:
                parent.rmdir()
            except OSError:
                break

    def _remove_stale_temporaries(self) -> None:
        if self.path.parent.is_dir():
            for tmp in self.path.parent.glob(f".{self.path.name}.*.tmp.ckpt"):
                tmp.unlink(missing_ok=True)


def checkpoint_payload(path: str | os.PathLike) -> bytes:
    """A checkpoint file's payload, its SHA-256 verified; ValueError naming the file if it is not
    a complete symflow checkpoint (what `symflow verify-cache` checks under checkpoints/)."""
    blob = Path(path).read_bytes()
    if not blob.startswith(_MAGIC):
        raise ValueError(f"{path}: not a symflow checkpoint")
    head = len(_MAGIC)
    digest, payload = blob[head : head + 64], blob[head + 65 :]
    if hashlib.sha256(payload).hexdigest().encode() != digest:
        raise ValueError(f"{path}: checkpoint checksum mismatch (truncated or corrupt)")
    return payload


def state_dict(state) -> dict:
    """A TrainState's arrays and step as the dict a checkpoint stores (on the host)."""
    import jax
    from flax import serialization

    return serialization.to_state_dict(jax.device_get(state))


def restore_state(state, tree: dict):
    """`state` (a fresh TrainState: its apply_fn, optimiser and layout) with the step, parameters
    and optimiser state of `tree` (a checkpoint's state_dict), on the device, step int32."""
    import jax
    import jax.numpy as jnp
    from flax import serialization

    state = serialization.from_state_dict(state, tree)
    state = state.replace(step=jnp.asarray(state.step, jnp.int32))
    return jax.tree_util.tree_map(jnp.asarray, state)


def fingerprint(**identity: Any) -> str:
    """A stable digest of what determines a run's trajectory (for checkpoint matching)."""
    text = json.dumps({k: identity[k] for k in sorted(identity)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
