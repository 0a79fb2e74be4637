"""Study 7: knowledge distillation where theory expects it to help (Hinton et al. 2015).

A teacher (64-512-10 tanh, Adam) is trained on the whole digits training set. Students learn
from a *transfer set* either with the hard labels (cross-entropy) or with the teacher's soft
targets at temperature T (``jaxmlp.distillation_loss`` with alpha = 1: T^2 * CE(softmax(teacher
/ T), softmax(student / T))), in three regimes:

1. **Small transfer set** (data-bound student): a wide student (64-256-10) on a random 4% of
   the training rows (~50 digits). Soft targets carry the teacher's view of every class for
   each example, so they should help most where labels are scarce.
2. **A class left out** (Hinton et al.'s "no 3s"): a 64-64-10 student on every training row
   except the 3s. Trained on hard labels it never predicts a 3; from soft targets it can learn
   what a 3 looks like from the 3-probability the teacher gives to 5s and 8s. We report the
   accuracy on test 3s as trained, and after raising the class-3 output bias by the amount
   that maximises *validation* accuracy (Hinton et al. raised it by 3.5 by hand).
3. **The old set-up** (capacity-bound student): a 64-8-10 student on the whole training set,
   where an earlier run of this study found no gain.

Every arm of a seed shares the student's initialisation, data order and transfer set (paired
seeds); gains are reported as mean ± std over seeds of (soft - hard) test accuracy, whatever
their sign. ``jaxmlp.sweep`` shares one data set among its models, while every arm here has its
own targets, so the student loop is this study's own: ``optax.adam`` +
``jaxmlp.distillation_loss`` + ``jax.value_and_grad`` + ``lax.scan``, ``vmap``-ed over (arm,
seed) in one compiled program per regime.

Run: ``python experiments/distillation.py [--quick] [--out DIR]``
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import jaxmlp  # noqa: E402
from common import finish, mean_std, parse_args, save_fig, write_csv  # noqa: E402

NAME = "distillation"
SOFT_TEMPS = [1.0, 2.0, 4.0, 8.0]
LEFT_OUT = 3


def train_students(splits, teacher_logits, pools, *, hidden: int, temps, steps: int,
                   lr: float = 3e-3, batch: int = 64):
    """One student per (arm, seed) in one compiled program.

    Args:
        pools: per seed, the training-row indices of its transfer set.
        temps: per arm, the distillation temperature; ``None`` is the hard-label arm.

    Returns:
        (params stacked over arm-major (arm, seed), per-model final loss).
    """
    X = jnp.asarray(splits.X_train, jnp.float32)
    Y = jnp.asarray(splits.y_train, jnp.int32)
    TL = jnp.asarray(teacher_logits, jnp.float32)
    sizes = [X.shape[1], hidden, int(splits.n_classes)]
    seeds = len(pools)
    b = min(batch, min(len(p) for p in pools))
    Ts = np.asarray([1.0 if T is None else T for T in temps for _ in range(seeds)], np.float32)
    As = np.asarray([0.0 if T is None else 1.0 for T in temps for _ in range(seeds)], np.float32)
    orders = []
    for s, pool in enumerate(pools):       # epochs of the pool, reshuffled, cut into batches
        rng = np.random.default_rng((s, 7))
        per = len(pool) // b
        need = -(-steps // per)
        idx = np.concatenate([rng.permutation(pool)[:per * b] for _ in range(need)])
        orders.append(idx[:steps * b].reshape(steps, b))
    idx = jnp.asarray(np.stack(orders * len(temps)), jnp.int32)
    keys = jnp.stack([jax.random.PRNGKey(s) for _ in temps for s in range(seeds)])
    params0 = jax.vmap(lambda k: jaxmlp.init_mlp(k, sizes, activation="tanh"))(keys)
    opt = optax.adam(lr)

    def loss_fn(p, rows, T, a):
        s = jaxmlp.forward(p, X[rows], activation="tanh")
        return jaxmlp.distillation_loss(s, TL[rows], Y[rows], temperature=T, alpha=a)

    def one(p, order, T, a):
        def step(carry, rows):
            p, o = carry
            loss, g = jax.value_and_grad(loss_fn)(p, rows, T, a)
            with jax.numpy_dtype_promotion("standard"):   # optax mixes int32 counts and floats
                u, o = opt.update(g, o, p)
            return (optax.apply_updates(p, u), o), loss
        (p, _), losses = jax.lax.scan(step, (p, opt.init(p)), order)
        return p, losses[-max(1, steps // 10):].mean()

    params, last = jax.jit(jax.vmap(one))(params0, idx, jnp.asarray(Ts), jnp.asarray(As))
    return params, np.asarray(last)


def best_bias_shift(logits_val, y_val, cls: int) -> float:
    """The shift of class ``cls``'s logit (an output-bias change) with the best validation
    accuracy, on a grid of 0..10 in steps of 0.25 (the smallest shift among ties)."""
    shifts = np.arange(0.0, 10.01, 0.25)
    acc = [float(np.mean((logits_val + s * np.eye(logits_val.shape[1])[cls]).argmax(1) == y_val))
           for s in shifts]
    return float(shifts[int(np.argmax(acc))])


def evaluate_students(params, splits, arms, seeds, regime):
    """Per model: test accuracy, accuracy on the left-out class (as trained and with the
    validation-chosen bias shift) and on the other classes, test NLL."""
    Xt, yt = jnp.asarray(splits.X_test, jnp.float32), np.asarray(splits.y_test)
    Xv, yv = jnp.asarray(splits.X_val, jnp.float32), np.asarray(splits.y_val)
    rows = []
    for i in range(len(arms) * seeds):
        p = jax.tree.map(lambda a: a[i], params)
        zt = np.asarray(jaxmlp.forward(p, Xt, activation="tanh"))
        row = {"regime": regime, "arm": arms[i // seeds], "seed": i % seeds,
               "test_acc": float(np.mean(zt.argmax(1) == yt)),
               "test_nll": float(jaxmlp.cross_entropy(jnp.asarray(zt), jnp.asarray(yt)))}
        if regime == "no3":
            shift = best_bias_shift(np.asarray(jaxmlp.forward(p, Xv, activation="tanh")), yv,
                                    LEFT_OUT)
            zs = zt + shift * np.eye(zt.shape[1])[LEFT_OUT]
            m = yt == LEFT_OUT
            row.update(acc_left_out=float(np.mean(zt[m].argmax(1) == LEFT_OUT)),
                       acc_others=float(np.mean(zt[~m].argmax(1) == yt[~m])), bias_shift=shift,
                       acc_left_out_shifted=float(np.mean(zs[m].argmax(1) == LEFT_OUT)),
                       test_acc_shifted=float(np.mean(zs.argmax(1) == yt)))
        rows.append(row)
    return rows


def summarise(rows, arms, keys):
    """Per arm: mean ± std of ``keys`` and of the paired gain in test accuracy over hard."""
    hard = {r["seed"]: r for r in rows if r["arm"] == "hard labels"}
    out = []
    for arm in arms:
        sel = [r for r in rows if r["arm"] == arm]
        a = {"regime": sel[0]["regime"], "arm": arm, "seeds": len(sel)}
        for k in keys:
            a[k], a[k + "_std"] = mean_std([r[k] for r in sel])
        a["gain"], a["gain_std"] = mean_std([r["test_acc"] - hard[r["seed"]]["test_acc"]
                                             for r in sel])
        a["wins"] = sum(r["test_acc"] > hard[r["seed"]]["test_acc"] for r in sel)
        out.append(a)
    return out


def main(argv=None) -> dict:
    args = parse_args(NAME, argv, __doc__)
    t0 = time.time()
    q = args.quick
    seeds = 3 if q else 8
    splits = jaxmlp.load_splits(jaxmlp.DataConfig(dataset="digits"))
    t_hidden = 128 if q else 512
    teacher, _ = jaxmlp.fit(splits, model=jaxmlp.ModelConfig(hidden=(t_hidden,), activation="tanh"),
                            train=jaxmlp.TrainConfig(optimizer="adam", lr=1e-3, batch_size=64,
                                                     epochs=15 if q else 40, seed=123))
    t_logits = np.asarray(jaxmlp.forward(teacher, jnp.asarray(splits.X_train), activation="tanh"))
    zt = np.asarray(jaxmlp.forward(teacher, jnp.asarray(splits.X_test), activation="tanh"))
    t_acc = float(np.mean(zt.argmax(1) == np.asarray(splits.y_test)))
    t_left = float(np.mean(zt[np.asarray(splits.y_test) == LEFT_OUT].argmax(1) == LEFT_OUT))
    print(f"teacher 64-{t_hidden}-10: test acc {t_acc:.4f} (3s: {t_left:.4f})")

    n = len(splits.y_train)
    temps = [None] + SOFT_TEMPS
    arms = ["hard labels"] + [f"soft T={T:g}" for T in SOFT_TEMPS]
    frac = 0.04
    regimes = {  # name: (student width, per-seed transfer pools, steps, title)
        "small": (256, [np.random.default_rng((s, 11)).choice(n, int(frac * n), replace=False)
                        for s in range(seeds)], 300 if q else 1500,
                  f"small transfer set ({int(frac * n)} rows), student 64-256-10"),
        "no3": (64, [np.flatnonzero(np.asarray(splits.y_train) != LEFT_OUT)] * seeds,
                300 if q else 1200, "transfer set without the 3s, student 64-64-10"),
        "narrow": (8, [np.arange(n)] * seeds, 300 if q else 1200,
                   "whole training set, student 64-8-10"),
    }
    rows, aggs = [], {}
    for name, (width, pools, steps, _) in regimes.items():
        params, last = train_students(splits, t_logits, pools, hidden=width, temps=temps,
                                      steps=steps)
        r = evaluate_students(params, splits, arms, seeds, name)
        for x, l in zip(r, last):
            x["final_train_loss"] = float(l)
        rows += r
        keys = ["test_acc", "test_nll"] + (["acc_left_out", "acc_left_out_shifted", "acc_others",
                                             "bias_shift", "test_acc_shifted"] if name == "no3" else [])
        aggs[name] = summarise(r, arms, keys)
        for a in aggs[name]:
            extra = (f"  3s {a['acc_left_out']:.3f} (bias-shifted {a['acc_left_out_shifted']:.3f})"
                     if name == "no3" else "")
            print(f"{name:6s} {a['arm']:12s}: acc {a['test_acc']:.4f} ± {a['test_acc_std']:.4f}"
                  f"  gain {a['gain'] * 100:+.2f} ± {a['gain_std'] * 100:.2f} pts "
                  f"({a['wins']}/{a['seeds']}){extra}")
    write_csv(args.out / "students.csv", rows)
    write_csv(args.out / "arms.csv", [a for v in aggs.values() for a in v])
    plot(aggs, regimes, t_acc, args.out / "distillation.png", seeds)

    best = {k: max(v[1:], key=lambda a: a["gain"]) for k, v in aggs.items()}
    no3 = aggs["no3"]
    best3 = max(no3[1:], key=lambda a: a["acc_left_out"])
    claims = {"seeds": seeds, "teacher_acc": t_acc, "teacher_left_out_acc": t_left,
              "arms": arms, "transfer_fraction": frac,
              **{f"{k}_gain": [a["gain"] for a in v] for k, v in aggs.items()},
              **{f"{k}_gain_std": [a["gain_std"] for a in v] for k, v in aggs.items()},
              **{f"{k}_wins": [a["wins"] for a in v] for k, v in aggs.items()},
              **{f"{k}_acc": [a["test_acc"] for a in v] for k, v in aggs.items()},
              "no3_left_out_acc": [a["acc_left_out"] for a in no3],
              "no3_left_out_acc_shifted": [a["acc_left_out_shifted"] for a in no3],
              "no3_others_acc": [a["acc_others"] for a in no3]}
    s, h = best["small"], aggs["small"][0]
    headline = (f"small transfer set ({int(frac * n)} rows): best {s['arm']} "
                f"{s['gain'] * 100:+.1f} ± {s['gain_std'] * 100:.1f} pts over hard labels "
                f"({h['test_acc']:.3f}), {s['wins']}/{seeds} seeds; no 3s in the transfer set: "
                f"hard-label student gets {no3[0]['acc_left_out']:.0%} of test 3s, {best3['arm']} "
                f"{best3['acc_left_out']:.0%} ({best3['acc_left_out_shifted']:.0%} with the "
                f"validation-chosen 3-bias); capacity-bound 64-8-10: best "
                f"{best['narrow']['arm']} {best['narrow']['gain'] * 100:+.1f} ± "
                f"{best['narrow']['gain_std'] * 100:.1f} pts")
    pmp = lambda m, sd: f"{m * 100:+.1f} ± {sd * 100:.1f}"
    cols = ["regime", "student", "test acc", "gain vs hard (pts)", "seeds better"]
    trows = [[regimes[k][3], a["arm"], f"{a['test_acc']:.4f} ± {a['test_acc_std']:.4f}",
              pmp(a["gain"], a["gain_std"]), f"{a['wins']}/{a['seeds']}"]
             for k in ("small", "narrow") for a in aggs[k]]
    no3_rows = [[a["arm"], f"{a['acc_left_out']:.3f} ± {a['acc_left_out_std']:.3f}",
                 f"{a['bias_shift']:.2f}",
                 f"{a['acc_left_out_shifted']:.3f} ± {a['acc_left_out_shifted_std']:.3f}",
                 f"{a['acc_others']:.4f}", f"{a['test_acc_shifted']:.4f}"] for a in no3]
    no3_rows.append([f"teacher 64-{t_hidden}-10 (saw the 3s)", f"{t_left:.3f}", "-", "-", "-",
                     f"{t_acc:.4f}"])
    return finish(NAME, args, headline=headline, claims=claims, columns=cols, rows=trows,
                  more_tables=[{"title": f"no 3s in the transfer set ({seeds} seeds): accuracy "
                                         "on the test 3s",
                                "columns": ["student", "3s as trained", "3-bias shift (val)",
                                            "3s, bias shifted", "other digits",
                                            "all digits, bias shifted"],
                                "rows": no3_rows}],
                  figures=["distillation.png"], t0=t0)


def plot(aggs, regimes, t_acc, path, seeds):
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    for ax, k in zip(axes, ("small", "no3", "narrow")):
        a = aggs[k]
        key = "acc_left_out" if k == "no3" else "test_acc"
        ax.errorbar(SOFT_TEMPS, [x[key] for x in a[1:]], yerr=[x[key + "_std"] for x in a[1:]],
                    marker="o", capsize=3, label="soft targets")
        if k == "no3":
            ax.errorbar(SOFT_TEMPS, [x["acc_left_out_shifted"] for x in a[1:]],
                        yerr=[x["acc_left_out_shifted_std"] for x in a[1:]], marker="s",
                        capsize=3, label="soft, 3-bias chosen on validation")
        ax.axhline(a[0][key], color="C3", label="hard labels")
        ax.axhspan(a[0][key] - a[0][key + "_std"], a[0][key] + a[0][key + "_std"], color="C3",
                   alpha=0.15)
        if k != "no3":
            ax.axhline(t_acc, color="k", ls="--", label="teacher")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("distillation temperature T")
        ax.set_ylabel("accuracy on test 3s" if k == "no3" else "test accuracy")
        ax.set_title(regimes[k][3], fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"knowledge distillation on digits, mean ± std over {seeds} paired seeds",
                 fontsize=10)
    fig.tight_layout()
    save_fig(fig, path)


if __name__ == "__main__":
    main()
