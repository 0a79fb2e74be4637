"""Study 2: the perceptron learns AND and OR but not XOR; linear stacks collapse; a hidden
nonlinearity solves XOR.

Questions:
1. Does Rosenblatt's rule (step activation, bias folded in as x0 = 1,
   w <- w + eta (t - y) x) reach 100% on AND and OR, and what is the best accuracy it ever
   reaches on XOR over many epochs (the slides prove 100% is impossible: at most 3 of 4)?
2. Does a stack of linear layers (jaxmlp MLP, identity activation) fail XOR too, and is it one
   linear map? We compute W' = W1 W2 ... and b' = (b1 W2 + b2) ... and check numerically that
   the stack's outputs equal x W' + b'.
3. Do tanh and ReLU MLPs trained with jaxmlp solve XOR (several seeds)?

The perceptron rule is this study's own 10-line loop (the library trains differentiable MLPs
by gradient descent; the step function has no useful gradient). All MLPs are trained by
``jaxmlp.sweep`` (one compiled program per activation, one model per seed).

Run: ``python experiments/perceptron_xor.py [--quick] [--out DIR]``
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import jaxmlp  # noqa: E402
from common import finish, parse_args, save_fig, write_csv  # noqa: E402
from jaxmlp.data import make_logic  # noqa: E402
from jaxmlp.sweeps import sweep  # noqa: E402

NAME = "perceptron_xor"


def perceptron(X: np.ndarray, t: np.ndarray, *, eta: float = 0.1, epochs: int = 100,
               seed: int = 0):
    """Rosenblatt's rule with the bias folded in as x0 = 1.

    y = step(w . [1, x]) with step(f) = 1 if f > 0 else 0; per example
    w <- w + eta (t - y) [1, x]. Returns (w, per-epoch accuracy list, best accuracy ever).
    """
    rng = np.random.default_rng(seed)
    Xb = np.concatenate([np.ones((len(X), 1)), X], axis=1)   # x0 = 1 carries the bias
    w = rng.normal(0.0, 0.1, Xb.shape[1])
    accs, best = [], 0.0
    for _ in range(epochs):
        for i in rng.permutation(len(X)):
            y = float(Xb[i] @ w > 0)
            w = w + eta * (t[i] - y) * Xb[i]
            best = max(best, float(np.mean((Xb @ w > 0) == t)))  # after every single update
        accs.append(float(np.mean((Xb @ w > 0) == t)))
    return w, accs, best


def collapse(params) -> tuple[np.ndarray, np.ndarray]:
    """One linear map equal to a stack of linear (identity-activation) layers:
    x W1 + b1 -> (x W1 + b1) W2 + b2 = x (W1 W2) + (b1 W2 + b2), and so on."""
    W = np.asarray(params[0]["W"], np.float64)
    b = np.asarray(params[0]["b"], np.float64)
    for layer in params[1:]:
        W2, b2 = np.asarray(layer["W"], np.float64), np.asarray(layer["b"], np.float64)
        W, b = W @ W2, b @ W2 + b2
    return W, b


def _xor_arrays(name: str):
    ds = make_logic(name)
    return ds.X.astype(np.float32), ds.y.astype(np.int32)


def main(argv=None) -> dict:
    args = parse_args(NAME, argv, __doc__)
    t0 = time.time()
    q = args.quick
    p_epochs = 50 if q else 1000
    p_seeds = 3 if q else 10
    n_seeds = 3 if q else 8
    epochs = 300 if q else 1000

    # 1. Perceptron rule on AND / OR / XOR.
    perc_rows, perc_w = [], {}
    for gate in ("and", "or", "xor"):
        X, y = _xor_arrays(gate)
        bests, finals, first100 = [], [], []
        for s in range(p_seeds):
            w, accs, best = perceptron(X, y, eta=0.1, epochs=p_epochs, seed=s)
            bests.append(best)
            finals.append(accs[-1])
            first100.append(next((e + 1 for e, a in enumerate(accs) if a == 1.0), None))
            if s == 0:
                perc_w[gate] = w
        perc_rows.append({"gate": gate, "epochs": p_epochs, "seeds": p_seeds,
                          "best_acc_ever": max(bests), "final_acc_min": min(finals),
                          "final_acc_max": max(finals),
                          "seeds_at_100pct": sum(b == 1.0 for b in bests),
                          "epoch_first_100pct": [e for e in first100]})
        print(f"perceptron {gate.upper():3s}: best accuracy ever {max(bests):.0%} over "
              f"{p_epochs} epochs x {p_seeds} seeds; seeds reaching 100%: "
              f"{sum(b == 1.0 for b in bests)}/{p_seeds}")
    write_csv(args.out / "perceptron.csv", perc_rows)

    # 2./3. MLPs on XOR with jaxmlp (full batch: the four points; Adam).
    X, y = _xor_arrays("xor")
    data = (X, y, X, y, X, y)   # train = val = test = the four points
    train = jaxmlp.TrainConfig(optimizer="adam", lr=0.05, batch_size=4, epochs=epochs)
    mlp_rows, mlp_params = [], {}
    configs = [("linear stack 2-4-4-2 (identity)", jaxmlp.ModelConfig(hidden=(4, 4), activation="identity")),
               ("tanh 2-4-2", jaxmlp.ModelConfig(hidden=(4,), activation="tanh")),
               ("relu 2-8-2", jaxmlp.ModelConfig(hidden=(8,), activation="relu"))]
    collapse_err = None
    for label, mc in configs:
        res = sweep(data, model=mc, train=train, seeds=n_seeds)
        accs = res.column("train_accuracy")
        best_i = int(np.argmax(accs - 1e-3 * res.column("train_loss")))
        params = [{k: np.asarray(v) for k, v in layer.items()} for layer in res.params(best_i)]
        mlp_params[label] = (mc.activation, params)
        row = {"model": label, "seeds": n_seeds, "epochs": epochs,
               "acc_mean": float(np.mean(accs)), "acc_min": float(np.min(accs)),
               "acc_max": float(np.max(accs)), "seeds_at_100pct": int(np.sum(accs == 1.0)),
               "final_ce_nats_mean": float(np.mean(res.column("train_loss")))}
        if mc.activation == "identity":
            errs = []
            for i in range(n_seeds):
                p = [{k: np.asarray(v, np.float64) for k, v in layer.items()}
                     for layer in res.params(i)]
                Wc, bc = collapse(p)
                stack_out = np.asarray(jaxmlp.forward(res.params(i), X, activation="identity"),
                                       np.float64)
                errs.append(float(np.max(np.abs(stack_out - (X.astype(np.float64) @ Wc + bc)))))
                if i == best_i:
                    collapsed = (Wc, bc)
            collapse_err = max(errs)
            row["collapse_max_abs_diff"] = collapse_err
            print("linear stack collapses to one map: W' = W1 W2 W3 =\n"
                  f"{np.array2string(collapsed[0], precision=3)}\n"
                  f"b' = (b1 W2 + b2) W3 + b3 = {np.array2string(collapsed[1], precision=3)}\n"
                  f"max |stack(x) - (x W' + b')| over 4 points x {n_seeds} seeds = {collapse_err:.2e}")
        mlp_rows.append(row)
        print(f"{label}: XOR accuracy mean {row['acc_mean']:.0%} (min {row['acc_min']:.0%}, "
              f"max {row['acc_max']:.0%}), seeds at 100%: {row['seeds_at_100pct']}/{n_seeds}")
    write_csv(args.out / "mlp_xor.csv", mlp_rows)

    # Figure: decision regions, one panel per model.
    g = np.linspace(-0.5, 1.5, 121, dtype=np.float32)
    GX, GY = np.meshgrid(g, g)
    grid = np.stack([GX.ravel(), GY.ravel()], axis=1).astype(np.float32)
    panels = [(f"perceptron {k.upper()} (final w)", k) for k in ("and", "or", "xor")] + list(mlp_params)
    fig, axes = plt.subplots(2, 3, figsize=(11, 7))
    for ax, item in zip(axes.ravel(), panels):
        if isinstance(item, tuple):
            title, gate = item
            w = perc_w[gate]
            Xg, yg = _xor_arrays(gate)
            Z = (w[0] + grid @ w[1:] > 0).astype(float)
        else:
            title, gate = item, "xor"
            act, params = mlp_params[item]
            Xg, yg = _xor_arrays("xor")
            logits = np.asarray(jaxmlp.forward(params, grid, activation=act))
            Z = np.exp(logits - logits.max(1, keepdims=True))
            Z = Z[:, 1] / Z.sum(1)
        acc = (np.mean(((w[0] + Xg @ w[1:]) > 0) == yg) if isinstance(item, tuple) else
               np.mean(np.argmax(np.asarray(jaxmlp.forward(params, Xg, activation=act)), 1) == yg))
        ax.contourf(GX, GY, Z.reshape(GX.shape), levels=np.linspace(0, 1, 11), cmap="RdBu_r",
                    alpha=0.6)
        ax.contour(GX, GY, Z.reshape(GX.shape), levels=[0.5], colors="k")
        ax.scatter(Xg[:, 0], Xg[:, 1], c=yg, cmap="RdBu_r", edgecolors="k", s=80, vmin=0, vmax=1)
        ax.set_title(f"{title}\naccuracy {acc:.0%}", fontsize=10)
        ax.set_xticks([0, 1])
        ax.set_yticks([0, 1])
    fig.suptitle("decision regions (red = class 1); black line = boundary; the linear stack's "
                 "outputs are near 0.5 everywhere (flat CE optimum)", fontsize=10)
    fig.tight_layout()
    save_fig(fig, args.out / "decision_boundaries.png")

    by_gate = {r["gate"]: r for r in perc_rows}
    by_model = {r["model"]: r for r in mlp_rows}
    lin, tanh_, relu_ = (by_model[c[0]] for c in configs)
    claims = {
        "perceptron_best_acc": {k: v["best_acc_ever"] for k, v in by_gate.items()},
        "perceptron_epochs": p_epochs, "perceptron_seeds": p_seeds,
        "linear_stack_acc_max": lin["acc_max"], "collapse_max_abs_diff": collapse_err,
        "tanh_seeds_at_100pct": tanh_["seeds_at_100pct"], "relu_seeds_at_100pct": relu_["seeds_at_100pct"],
        "tanh_acc_max": tanh_["acc_max"], "relu_acc_max": relu_["acc_max"], "mlp_seeds": n_seeds,
    }
    headline = (f"perceptron: AND {by_gate['and']['best_acc_ever']:.0%}, OR "
                f"{by_gate['or']['best_acc_ever']:.0%}, XOR best ever "
                f"{by_gate['xor']['best_acc_ever']:.0%} in {p_epochs} epochs x {p_seeds} seeds; "
                f"linear stack XOR max {lin['acc_max']:.0%} (= one linear map, |diff| "
                f"{collapse_err:.1e}); tanh solves XOR in {tanh_['seeds_at_100pct']}/{n_seeds} "
                f"seeds, ReLU in {relu_['seeds_at_100pct']}/{n_seeds}")
    rows = [[f"perceptron {r['gate'].upper()}", f"{r['epochs']} epochs x {r['seeds']} seeds",
             f"{r['best_acc_ever']:.0%}", f"{r['seeds_at_100pct']}/{r['seeds']}", "-"]
            for r in perc_rows]
    rows += [[r["model"], f"{r['epochs']} epochs Adam x {r['seeds']} seeds",
              f"{r['acc_max']:.0%}", f"{r['seeds_at_100pct']}/{r['seeds']}",
              f"{r['collapse_max_abs_diff']:.1e}" if "collapse_max_abs_diff" in r else "-"]
             for r in mlp_rows]
    return finish(NAME, args, headline=headline, claims=claims,
                  columns=["model", "training", "best accuracy", "seeds at 100%",
                           "max abs(stack - collapsed map)"],
                  rows=rows, figures=["decision_boundaries.png"], t0=t0)


if __name__ == "__main__":
    main()
