"""Finite-width networks trained by SGD with momentum (stage 4, "sgd"), as App. B.1 of
Xiao & Pennington (ICML 2022) says.

The model is the architecture registry's stax definition at width n
(``ARCHITECTURES.get(arch).stax(hp, n)``): the *same* init_fn and apply_fn whose
kernel_fn gives the infinite-width kernels, so NTK parameterisation, sigma_w^2,
sigma_b^2 and the Gaussian init are those of the kernel by construction. flax's
``TrainState`` holds the stax parameters, optax the optimiser:

    loss  L = 1/(2 K |B|) sum_{i in B} |f(x_i) - y_i|^2 + l2/2 |theta|^2,  K = 10, |B| = 40
    opt   optax.chain(add_decayed_weights(l2), sgd(lr, momentum=0.9))
          (the decayed weights are exactly the gradient of l2/2 |theta|^2; optax's
          momentum is the heavy ball v <- 0.9 v + g, theta <- theta - lr v, the same
          as jax.example_libraries.optimizers.momentum the paper's code used)
    lr    lr_factor * eta0, eta0 = 2 n / lambda_max(Theta) (neural-tangents'
          max_learning_rate with momentum 0 and y_train_size None), Theta the
          empirical NTK of the finite network at initialisation on n training
          examples, traced (averaged) over the K logits and averaged over a few
          initialisations (Monte Carlo).

Training runs in chunks of ``eval_every`` jitted steps dispatched asynchronously: the
mini-batch indices are computed on device from a per-epoch permutation keyed by
(seed, epoch), the data stay on the device, and nothing is read back until the chunk
ends, so there is no host round trip per step; a run resumed from a checkpoint draws
exactly the batches of an uninterrupted one. (Not one ``lax.fori_loop`` per chunk:
XLA:CPU runs convolutions inside loop bodies about 10x slower, jax#12868.) After each chunk
the train/val/test accuracies and MSEs are evaluated. Two snapshots are tracked with
their outputs: the evaluation of best validation accuracy (reported by default, as
kernels choose their ridge on validation) and the one of best test accuracy (the
paper's protocol, ``selection="test"``; always kept as best_test_accuracy). Training
stops at 100% train accuracy, at the budget (``max_steps`` and ``max_epochs``,
whichever comes first), or at a failure no step undoes: a non-finite or exploding
loss (*diverged*), or outputs constant over the training set (*collapsed*). A run
whose best train accuracy stays below ``success_train_accuracy`` (paper 95%) is
*failed*, with its kind (collapsed, diverged, budget) and reason; its outputs are
still written so the workflow goes on.

Randomness is explicit: the init key is derived from (seed, member), the batch
order from seed alone (members of an ensemble differ only in their init, as in
S16 of the paper); there is no global seed. On CPU every number is deterministic.

The package, one module a concern (each imports only those above it):

    model        the network at width n, its initialisation, the keys derived from a seed
    steps        loss, optimiser, train state, batch order and step budget, chunks of steps
    evaluation   outputs, accuracy, MSE, S-Dist, output spread, the reported evaluation
    eta0         eta0 and the empirical NTK
    checkpoints  a run's resumable state in one checksummed file, and its fingerprint
    loop         TrainConfig, train_and_evaluate and its RunResult
    packed       several runs of one network trained as one vmapped program (train_packed)
    run          the workflow's entry points, which write files, and RunSetup (a run's record with its TrainConfig)

Every name below is importable from ``symflow.train`` as it was from the single module.
"""

from symflow.train.checkpoints import Checkpoint, checkpoint_payload, fingerprint
from symflow.train.eta0 import (
    LR_ESTIMATES,
    Eta0,
    empirical_ntk,
    empirical_ntk_fn,
    estimate_eta0,
    eta0_keys,
    max_learning_rate,
    ntk_block_size,
    read_eta0,
)
from symflow.train.evaluation import (
    SELECTIONS,
    Split,
    accuracy,
    mse,
    output_spread,
    predict,
    s_dist,
    select_evaluation,
)
from symflow.train.loop import (
    COLLAPSE_SPREAD_RATIO,
    CURVE_COLUMNS,
    DIVERGE_MSE_RATIO,
    RECIPES,
    RunResult,
    TrainConfig,
    train_and_evaluate,
)
from symflow.train.model import (
    FIRST_LAYER_INITS,
    Model,
    build_model,
    first_layer_index,
    init_key,
    init_params,
    order_key,
)
from symflow.train.packed import PackedRun, train_packed
from symflow.train.run import (
    RunSetup,
    load_splits,
    run_estimate_eta0,
    run_sgd,
    run_sgd_packed,
    eta0_kwargs,
    write_curve,
)
from symflow.train.steps import (
    batch_layout,
    create_train_state,
    epoch_perm,
    make_optimizer,
    mse_loss,
    step_budget,
    train_step,
    train_steps,
)

__all__ = [
    "CURVE_COLUMNS",
    "COLLAPSE_SPREAD_RATIO",
    "DIVERGE_MSE_RATIO",
    "FIRST_LAYER_INITS",
    "LR_ESTIMATES",
    "RECIPES",
    "SELECTIONS",
    "Checkpoint",
    "Eta0",
    "Model",
    "PackedRun",
    "RunSetup",
    "RunResult",
    "Split",
    "TrainConfig",
    "accuracy",
    "batch_layout",
    "build_model",
    "checkpoint_payload",
    "create_train_state",
    "empirical_ntk",
    "empirical_ntk_fn",
    "epoch_perm",
    "estimate_eta0",
    "eta0_keys",
    "fingerprint",
    "first_layer_index",
    "init_key",
    "init_params",
    "load_splits",
    "make_optimizer",
    "max_learning_rate",
    "mse",
    "mse_loss",
    "ntk_block_size",
    "order_key",
    "output_spread",
    "predict",
    "read_eta0",
    "run_estimate_eta0",
    "run_sgd",
    "run_sgd_packed",
    "eta0_kwargs",
    "s_dist",
    "select_evaluation",
    "step_budget",
    "train_and_evaluate",
    "train_packed",
    "train_step",
    "train_steps",
    "write_curve",
]
