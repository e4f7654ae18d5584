"""The checkpoint fingerprint is pinned: a change of its inputs or of how they are written
makes every checkpoint on disk foreign, so an interrupted run restarts from step 0 instead
of resuming. Change the pinned value only together with `checkpoint_format` (and say so)."""

from __future__ import annotations

import numpy as np

from symflow.architectures import ModelHP
from symflow.train import TrainConfig
from symflow.runs import TrainingRun
from symflow.train.run import RunSetup

PINNED = "2103c63c"  # checkpoint_format 2, first 8 hex digits (symflow 0.1.0, 2026-12-01)


def identity(**change):
    fields = dict(
        dataset="cifar10-sample.0e454ec3-r8-n3500.250.1000-split0", transform="identity", arch="VEC",
        hp=ModelHP(), width=32, init="gaussian", recipe="nn_plus", m=250, seed=0, member=0,
        cfg=TrainConfig(batch_size=40, momentum=0.9, l2=0.0, eval_every=100),
    )  # fmt: skip
    fields.update(change)
    cfg = fields.pop("cfg")
    return RunSetup(TrainingRun(**fields), cfg)


def test_the_fingerprint_of_a_known_run_is_pinned():
    got = identity().fingerprint(lr=0.5, data_checksum="0" * 64, dtype=np.float32)
    assert got[:8] == PINNED, got


def test_what_does_not_determine_the_trajectory_leaves_it_alone():
    base = identity().fingerprint(lr=0.5, data_checksum="0" * 64, dtype=np.float32)
    # budget, cadence of checkpoints, selection and the success threshold: resume across them
    for cfg in (TrainConfig(max_steps=10), TrainConfig(checkpoint_every=7), TrainConfig(selection="test"),
                TrainConfig(max_epochs=3.0), TrainConfig(success_train_accuracy=0.5)):  # fmt: skip
        assert identity(cfg=cfg).fingerprint(lr=0.5, data_checksum="0" * 64, dtype=np.float32) == base
    # the dataset and transform are in the run's path, not its fingerprint (the data checksum is)
    assert identity(transform="o3d", recipe="nn").fingerprint(lr=0.5, data_checksum="0" * 64, dtype=np.float32) == base
    for other in (identity(seed=1), identity(width=16), identity(member=1), identity(init="uniform")):
        assert other.fingerprint(lr=0.5, data_checksum="0" * 64, dtype=np.float32) != base
    assert identity().fingerprint(lr=0.25, data_checksum="0" * 64, dtype=np.float32) != base
    assert identity().fingerprint(lr=0.5, data_checksum="1" * 64, dtype=np.float32) != base
