"""How long does a finite network take to fit its training set? (sizing the step and
epoch budgets of the default config, issue 14).

For each (architecture, width, recipe, m, transform): eta0 as the sgd stage computes it
(the run's own init, 2 n / lambda_max of the logit-traced empirical NTK on the first
min(128, m) training examples), then SGD + momentum 0.9 at lr = c eta0 (NN: c = 1, no L2;
NN+: c = 8, L2 1e-7) with symflow.train.train_and_evaluate, capped at --max-steps, and
prints the first evaluated step at which train accuracy reached 95% and 100%, the test
accuracy at the best-validation step and the best test accuracy along training, the
failure kind if any, and seconds per step (wall, one XLA thread).

    PYTHONPATH=$PWD .venv/bin/python bench/convergence.py \\
        results/data/cifar10-sample.0e454ec3-r8-n3500.250.1000-split0/identity/s0.h5 \\
        --run VEC:16:nn:250 GAP:16:nn_plus:250 --max-steps 4000 --eval-every 100

Each --run is ARCH:WIDTH:RECIPE:M. Output: one line per run as it ends, then a
markdown table; --csv appends the rows to a file.
"""

from __future__ import annotations

import argparse
import csv
import os
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--run", nargs="+", required=True, help="ARCH:WIDTH:RECIPE:M")
    ap.add_argument("--max-steps", type=int, default=4000)
    ap.add_argument("--max-epochs", type=float, default=None)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="each run with each seed (tau is the file's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--csv", default=None)
    args = ap.parse_args()

    from symflow.runtime import configure_jax

    configure_jax(args.threads)
    import numpy as np

    from symflow import train as T
    from symflow.architectures import ModelHP

    hp = ModelHP()
    recipes = {"nn": (1.0, 0.0), "nn_plus": (8.0, 1e-7)}
    rows = []
    for spec, seed in [(r, s) for r in args.run for s in args.seeds]:
        arch, width, recipe, m = spec.split(":")
        width, m = int(width), int(m)
        train, val, test, _ = T.load_splits(args.data, m)
        model = T.build_model(arch, hp, width)
        est = T.estimate_eta0(
            model.init_fn, model.apply_fn, np.asarray(train.x[: min(128, m)]), T.eta0_keys("own", seed, 0)
        )
        factor, l2 = recipes[recipe]
        extra = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
        cfg = T.TrainConfig(
            lr_factor=factor, l2=l2, max_steps=args.max_steps, eval_every=args.eval_every, **extra
        )
        params = T.init_params(model.init_fn, T.init_key(seed, 0), tuple(train.x.shape[1:]))
        t0 = time.perf_counter()
        res = T.train_and_evaluate(
            model.apply_fn, params, train, val, test, cfg, lr=factor * est.eta0, key=T.order_key(seed),
            eta0=est.eta0,
        )
        wall = time.perf_counter() - t0
        curve = res.curve
        tr = curve[:, 3]

        def first(th):
            hit = np.nonzero(np.nan_to_num(tr, nan=0.0) >= th)[0]
            return int(curve[hit[0], 0]) if len(hit) else ""

        row = dict(
            arch=arch, width=width, recipe=recipe, m=m, seed=seed, eta0=round(est.eta0, 5), steps=res.steps,
            epochs=round(res.steps / T.batch_layout(m, cfg.batch_size)[1], 1), step95=first(0.95), step100=first(1.0),
            train_acc=round(res.train_accuracy, 4), test_at_val=round(res.test_accuracy, 4),
            best_test=round(res.best_test_accuracy, 4),
            failure=res.failure,
            s_per_step=round(wall / max(res.steps, 1), 4), wall_s=round(wall, 1),
        )
        rows.append(row)
        print(row, flush=True)
        if args.csv:
            new = not os.path.exists(args.csv)
            with open(args.csv, "a", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(row))
                if new:
                    w.writeheader()
                w.writerow(row)
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
