"""Where does SGD + momentum 0.9 stop working, in units of eta0? (App. B.1's claim:
with c = 8 "we are about a factor of 2-4 smaller than the maximal feasible learning rate").

For each architecture: estimate eta0 as the sgd stage does (2 n / lambda_max of the
logit-traced empirical NTK of the run's own init, or the Monte Carlo mean over inits
with --mode mc), then train for --steps steps at
lr = c * eta0 for each c, on the first --m training examples of a data-stage file, and
print the final mini-batch loss, train accuracy and whether the run trains, diverged
(NaN) or made no progress (never better than at initialisation: collapsed to constant
outputs, dead ReLUs, or bouncing).
Also prints lambda_max / n of the traced NTK on n examples and on one batch of 40:
the linearised GD + momentum limit is 2 (1 + 0.9) K |B| / lambda_max(batch kernel),
i.e. 1.9 K (lambda_max(n)/n) / (lambda_max(B)/B) * eta0.

    PYTHONPATH=$PWD python bench/lr_stability.py results/data/<dataset>/identity/s0.h5 \
        --arch VEC GAP --c 1 4 8 16 --steps 300
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--arch", nargs="+", default=["FCN", "VEC", "GAP"])
    ap.add_argument("--width", type=int, nargs="+", default=None, help="one per arch (default: the config's)")
    ap.add_argument("--c", type=float, nargs="+", default=[1, 2, 4, 8, 16, 32])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--m", type=int, default=250)
    ap.add_argument("--n", type=int, default=128, help="examples of the eta0 estimate")
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--mode", choices=["own", "mc"], default="own", help="eta0 of the run's own init, or MC mean")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    from symflow.runtime import configure_jax

    configure_jax(args.threads)
    import jax
    import numpy as np

    from symflow import train as T
    from symflow.architectures import ModelHP

    widths = dict(zip(args.arch, args.width)) if args.width else {}
    default = {"FCN": 256, "LCN": 8, "VEC": 32, "GAP": 32, "LAP4": 32, "LAP8": 32}
    train, val, test, _ = T.load_splits(args.data, args.m)
    hp = ModelHP()
    for arch in args.arch:
        width = widths.get(arch, default.get(arch, 32))
        model = T.build_model(arch, hp, width)
        mc = T.estimate_eta0(model.init_fn, model.apply_fn, train.x[: args.n], T.eta0_keys("mc", 0, 0, args.samples))
        own = T.estimate_eta0(model.init_fn, model.apply_fn, train.x[: args.n], T.eta0_keys("own", 0, 0))
        est = own if args.mode == "own" else mc
        params = T.init_params(model.init_fn, T.init_key(0, 0), train.x.shape[1:])
        ntk_fn = T.empirical_ntk_fn(model.apply_fn)
        own_b = np.linalg.eigvalsh(np.asarray(ntk_fn(jax.numpy.asarray(train.x[:40]), params)))[-1] / 40
        print(
            json.dumps(
                {
                    "arch": arch,
                    "width": width,
                    "mode": args.mode,
                    "eta0": est.eta0,
                    "eta0_mc": mc.eta0,
                    "eta0_own": own.eta0,
                    "lambda_max/n per init (mc)": [v / mc.n for v in mc.lambda_max_samples],
                    "own init lambda_max/n": own.lambda_max / own.n,
                    "own init lambda_max/B (B=40)": float(own_b),
                    "linearised limit of this run in units of eta0": float(1.9 * 10 * (est.lambda_max / est.n) / own_b),
                }
            ),
            flush=True,
        )
        for c in args.c:
            cfg = T.TrainConfig(max_steps=args.steps, eval_every=args.steps, lr_factor=c)
            t = time.perf_counter()
            r = T.train_and_evaluate(model.apply_fn, params, train, val, test, cfg, lr=c * est.eta0, key=T.order_key(0))
            loss = r.curve[-1, 2]
            out_std = float(np.std(r.test_outputs, axis=0).mean()) if r.best_step else float("nan")
            if r.stop == "nonfinite":
                state = "diverged"
            elif r.best_step == 0 or r.curve[-1, 3] <= 0.15:
                state = "no progress"  # collapsed (dead ReLUs) or bouncing: never better than the init
            else:
                state = "trains"
            print(
                json.dumps(
                    {
                        "arch": arch,
                        "c": c,
                        "lr": c * est.eta0,
                        "final_batch_loss": float(loss),
                        "train_accuracy": r.curve[-1, 3],
                        "test_accuracy_best": r.test_accuracy,
                        "state": state,
                        "seconds": round(time.perf_counter() - t, 1),
                        "output_std": out_std,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
