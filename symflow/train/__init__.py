"""Finite-width networks trained by SGD with momentum (stage 4, "sgd"); see symflow.train.run."""

from symflow.train.run import *  # noqa: F401,F403
from symflow.train.run import _epoch_perm  # noqa: F401  (tests/test_train_loop.py)
