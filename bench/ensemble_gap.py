"""Why does a finite network score below its infinite-width kernel at laptop scale:
budget, or science? (issue 14's acceptance: "the measurement that decides it").

Trains k members (independent initialisations, one batch order) of ARCH_n with a recipe
on the first m training examples of a data-stage file, each to the criterion of the
default config (100% train accuracy, or the budget), and prints:
  * each member: steps, epochs, train accuracy, test accuracy at its best-validation step;
  * the ensemble mean of the first 1, 2, 4, ... members (outputs averaged at those steps);
  * the same members given twice the budget (--double-budget), if asked.
In the linearised (NTK) regime a trained network is f_T(x) = mu(x) + [f_0(x) -
Theta(x, X) Theta^-1 f_0(X)]: the kernel regression mu (what "NTK" reports: the mean
over initialisations) plus a term driven by the random initial function f_0. At small m
that term is as large as the outputs themselves; averaging k networks shrinks it by
sqrt(k), which no training budget does. Compare with the NTK accuracy of the same data
(results/regression/.../ntk.csv of a workflow run).

    PYTHONPATH=$PWD .venv/bin/python bench/ensemble_gap.py \\
        results/data/cifar10-sample.0e454ec3-r8-n3500.250.1000-split0/identity/s0.h5 --arch VEC --width 16 \\
        --recipe nn_plus --m 250 --members 8
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--arch", default="VEC")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--recipe", choices=["nn", "nn_plus"], default="nn_plus")
    ap.add_argument("--m", type=int, default=250)
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-epochs", type=float, default=3000)
    ap.add_argument("--max-steps", type=int, default=10000)
    ap.add_argument("--double-budget", action="store_true", help="also train each member with twice the budget")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    from symflow.runtime import configure_jax

    configure_jax(args.threads)
    import numpy as np

    from symflow import train as T
    from symflow.architectures import ModelHP

    factor, l2 = {"nn": (1.0, 0.0), "nn_plus": (8.0, 1e-7)}[args.recipe]
    train, val, test, _ = T.load_splits(args.data, args.m)
    model = T.build_model(args.arch, ModelHP(), args.width)
    budgets = [(args.max_steps, args.max_epochs)]
    if args.double_budget:
        budgets.append((2 * args.max_steps, 2 * args.max_epochs))
    for max_steps, max_epochs in budgets:
        print(f"# {args.arch}_{args.width} {args.recipe}, m = {args.m}, budget {max_steps} steps / {max_epochs:g} epochs")
        outputs = []
        for member in range(args.members):
            key = T.init_key(args.seed, member)
            est = T.estimate_eta0(model.init_fn, model.apply_fn, np.asarray(train.x[: min(128, args.m)]), [key])
            cfg = T.TrainConfig(lr_factor=factor, l2=l2, max_steps=max_steps, max_epochs=max_epochs)
            params = T.init_params(model.init_fn, key, tuple(train.x.shape[1:]))
            t0 = time.perf_counter()
            r = T.train_and_evaluate(
                model.apply_fn, params, train, val, test, cfg, lr=factor * est.eta0, key=T.order_key(args.seed)
            )
            print(
                f"member {member}: {r.stop} after {r.steps} steps ({r.epochs:.0f} epochs), train {r.train_accuracy:.3f}, "
                f"test {r.test_accuracy:.4f} at step {r.best_step} (best test {r.best_test_accuracy:.4f})"
                f"{' FAILED ' + r.failure if r.failed else ''}; {time.perf_counter() - t0:.0f} s",
                flush=True,
            )
            if not r.failed:
                outputs.append(np.asarray(r.test_outputs, np.float64))
        k = 1
        while k <= len(outputs):
            acc = T.accuracy(np.mean(outputs[:k], axis=0), np.asarray(test.labels))
            print(f"ensemble of {k}: test accuracy {acc:.4f}")
            k *= 2


if __name__ == "__main__":
    main()
