"""Study 4: softmax temperature in training, and knowledge distillation.

(a) Question: what does training with cross-entropy at softmax temperature T,
q = softmax(z / T), do to a digits classifier evaluated at T = 1? For T in
{0.25, 0.5, 1, 2, 4, 8} (``jaxmlp.sweep`` with ``grid={"temperature": [...]}``, several seeds,
one compiled program) we measure test accuracy, test NLL at T = 1, expected calibration error
(15 equal-width confidence bins, at T = 1), mean predictive entropy in bits and the mean logit
norm ||z||, each as mean ± std over seeds. The network can absorb T into its output layer
(z -> T z leaves the training loss unchanged), so the expectation is: high training T ->
larger logits -> over-confident at T = 1; low T -> small logits -> under-confident.

(b) Question: does a narrow student (64-8-10) trained on a wide teacher's (64-512-10)
soft targets at temperature T (Hinton et al. 2015: T^2 * CE(softmax(teacher / T),
softmax(student / T)), ``jaxmlp.distillation_loss`` with alpha = 1) beat the same student
trained on hard labels, for T in {1, 2, 4, 8}? Same init and data order per seed for every
arm (paired comparison).

``jaxmlp.fit`` and ``jaxmlp.sweep`` train on soft targets (a float (n, K) probability array
with ``loss="ce"``), but a sweep shares one data set among its models, while every arm here
has its own targets (softmax(teacher / T)) and the T^2-weighted loss of
``jaxmlp.distillation_loss``. To train all (arm, seed) students in one compiled program the
student loop is this experiment's own: ``optax.adam`` + ``jaxmlp.distillation_loss`` +
``jax.value_and_grad`` + ``lax.scan`` over mini-batches, ``vmap`` over (arm, seed), data order
drawn up front with numpy.

Run: ``python experiments/temperature.py [--quick] [--out DIR]``
"""
from __future__ import annotations

import math
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
from common import finish, mean_std, parse_args, pm, save_fig, write_csv  # noqa: E402
from jaxmlp.sweeps import sweep  # noqa: E402

NAME = "temperature"
TEMPS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
DISTILL_TEMPS = [1.0, 2.0, 4.0, 8.0]


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error: sum_b (n_b / n) |accuracy_b - confidence_b| over
    equal-width confidence bins (Guo et al. 2017)."""
    conf = probs.max(1)
    hit = (probs.argmax(1) == labels).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(hit[m].mean() - conf[m].mean())
    return float(total)


def eval_at_T1(params, X, y, activation: str) -> dict:
    """Test metrics of ``params`` evaluated at temperature 1, via the library's functions."""
    logits = jaxmlp.forward(params, jnp.asarray(X, jnp.float32), activation=activation)
    yj = jnp.asarray(y, jnp.int32)
    probs = np.asarray(jaxmlp.softmax(logits), np.float64)
    return {"acc": float(jaxmlp.accuracy(logits, yj)),
            "nll": float(jaxmlp.cross_entropy(logits, yj)),
            "ece": ece(probs, np.asarray(y)),
            "entropy_bits": float(jnp.mean(jaxmlp.entropy_from_logits(logits))) / math.log(2.0),
            "logit_norm": float(jnp.mean(jnp.linalg.norm(logits, axis=-1)))}


# ------------------------------------------------------------------ (b) distillation loop
def distill_students(splits, teacher_logits, *, hidden: int, temps, alphas, seeds: int,
                     epochs: int, lr: float, batch: int = 64):
    """Train one student per (temperature, alpha) arm and seed in one compiled program.

    The experiment's own loop (per-arm soft targets in one program, see module doc).
    Returns stacked student params with leading axis (n_arms * seeds) and per-epoch losses.
    """
    X = jnp.asarray(splits.X_train, jnp.float32)
    Y = jnp.asarray(splits.y_train, jnp.int32)
    TL = jnp.asarray(teacher_logits, jnp.float32)
    n, d = X.shape
    K = int(splits.n_classes)
    nb = n // batch                                     # drop the ragged last batch
    sizes = [d, hidden, K]
    arms = [(T, a) for T, a in zip(temps, alphas)]
    Ts = np.asarray([T for T, _ in arms for _ in range(seeds)], np.float32)
    As = np.asarray([a for _, a in arms for _ in range(seeds)], np.float32)
    seed_of = np.asarray([s for _ in arms for s in range(seeds)])
    # Same init and data order for every arm of a seed (paired comparison).
    keys = jnp.stack([jax.random.PRNGKey(int(s)) for s in seed_of])
    params0 = jax.vmap(lambda k: jaxmlp.init_mlp(k, sizes, activation="tanh"))(keys)
    idx = np.stack([np.stack([np.random.default_rng((int(s), e)).permutation(n)[:nb * batch]
                              for e in range(epochs)]) for s in seed_of])
    idx = jnp.asarray(idx.reshape(len(seed_of), epochs * nb, batch), jnp.int32)
    opt = optax.adam(lr)

    def loss_fn(p, xb, tlb, yb, T, a):
        s = jaxmlp.forward(p, xb, activation="tanh")
        return jaxmlp.distillation_loss(s, tlb, yb, temperature=T, alpha=a)

    def one(p, order, T, a):
        def step(carry, bi):
            p, o = carry
            loss, g = jax.value_and_grad(loss_fn)(p, X[bi], TL[bi], Y[bi], T, a)
            with jax.numpy_dtype_promotion("standard"):   # optax mixes int32 counts and floats
                u, o = opt.update(g, o, p)
            return (optax.apply_updates(p, u), o), loss
        (p, _), losses = jax.lax.scan(step, (p, opt.init(p)), order)
        return p, losses.reshape(epochs, nb).mean(1)

    run = jax.jit(jax.vmap(one))
    params, losses = run(params0, idx, jnp.asarray(Ts), jnp.asarray(As))
    return params, np.asarray(losses), Ts, As, seed_of


def main(argv=None) -> dict:
    args = parse_args(NAME, argv, __doc__)
    t0 = time.time()
    q = args.quick
    seeds = 2 if q else 5
    splits = jaxmlp.load_splits(jaxmlp.DataConfig(dataset="digits"))

    # ---------------- (a) temperature in the training loss
    width = 32 if q else 64
    train = jaxmlp.TrainConfig(optimizer="adam", lr=3e-3, batch_size=64, epochs=8 if q else 40)
    model = jaxmlp.ModelConfig(hidden=(width,), activation="tanh")
    res = sweep(splits, model=model, train=train, grid={"temperature": TEMPS}, seeds=seeds)
    rows = []
    for i, r in enumerate(res.rows):
        m = eval_at_T1(res.params(i), splits.X_test, splits.y_test, "tanh")
        rows.append({"T": r["temperature"], "seed": r["seed"], "test_acc": m["acc"],
                     "test_nll_T1": m["nll"], "ece_T1": m["ece"],
                     "entropy_bits": m["entropy_bits"], "logit_norm": m["logit_norm"],
                     "train_loss_at_T": r["train_loss"], "diverged": r["diverged"]})
    write_csv(args.out / "train_temperature_runs.csv", rows)
    metrics = ["test_acc", "test_nll_T1", "ece_T1", "entropy_bits", "logit_norm"]
    agg = []
    for T in TEMPS:
        sel = [r for r in rows if r["T"] == T]
        a = {"T": T}
        for k in metrics:
            a[k], a[k + "_std"] = mean_std([r[k] for r in sel])
        agg.append(a)
        print(f"T={T:5.2f}: acc {pm(a['test_acc'], a['test_acc_std'])}  NLL@1 "
              f"{pm(a['test_nll_T1'], a['test_nll_T1_std'])}  ECE {pm(a['ece_T1'], a['ece_T1_std'])}"
              f"  H {a['entropy_bits']:.3f} bits  |z| {a['logit_norm']:.2f}")
    write_csv(args.out / "train_temperature.csv", agg)

    fig, axes = plt.subplots(1, 5, figsize=(17, 3.4))
    labels = {"test_acc": "test accuracy", "test_nll_T1": "test NLL at T=1 (nats)",
              "ece_T1": "ECE at T=1 (15 bins)", "entropy_bits": "mean entropy (bits)",
              "logit_norm": "mean logit norm ||z||"}
    for ax, k in zip(axes, metrics):
        ax.errorbar(TEMPS, [a[k] for a in agg], yerr=[a[k + "_std"] for a in agg], marker="o",
                    capsize=3)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training temperature T")
        ax.set_title(labels[k], fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(f"digits, 64-{width}-10 tanh, Adam, {train.epochs} epochs; mean ± std over "
                 f"{seeds} seeds; all evaluated at T = 1", fontsize=10)
    fig.tight_layout()
    save_fig(fig, args.out / "train_temperature.png")

    # ---------------- (b) distillation
    t_hidden = 128 if q else 512
    s_hidden = 8
    t_epochs = 10 if q else 40
    s_epochs = 12 if q else 60
    if q:   # quick: reuse a T = 1 model of the sweep as the teacher (saves a compile)
        t_hidden = width
        teacher = res.params([r["temperature"] for r in res.rows].index(1.0))
    else:
        teacher, _ = jaxmlp.fit(splits, model=jaxmlp.ModelConfig(hidden=(t_hidden,), activation="tanh"),
                                train=jaxmlp.TrainConfig(optimizer="adam", lr=1e-3, batch_size=64,
                                                         epochs=t_epochs, seed=123))
    t_logits = np.asarray(jaxmlp.forward(teacher, jnp.asarray(splits.X_train), activation="tanh"))
    tm = eval_at_T1(teacher, splits.X_test, splits.y_test, "tanh")
    print(f"teacher 64-{t_hidden}-10: test acc {tm['acc']:.4f}, NLL {tm['nll']:.4f}")
    temps = [1.0] + DISTILL_TEMPS           # arm 0: hard labels (alpha = 0)
    alphas = [0.0] + [1.0] * len(DISTILL_TEMPS)
    sp, losses, Ts, As, seed_of = distill_students(splits, t_logits, hidden=s_hidden, temps=temps,
                                                   alphas=alphas, seeds=seeds, epochs=s_epochs,
                                                   lr=3e-3)
    drows = []
    for i in range(len(Ts)):
        p = jax.tree.map(lambda a: a[i], sp)
        m = eval_at_T1(p, splits.X_test, splits.y_test, "tanh")
        drows.append({"arm": "hard labels" if As[i] == 0 else f"soft T={Ts[i]:g}",
                      "T": float(Ts[i]), "alpha": float(As[i]), "seed": int(seed_of[i]),
                      "test_acc": m["acc"], "test_nll_T1": m["nll"], "ece_T1": m["ece"],
                      "final_train_loss": float(losses[i, -1])})
    write_csv(args.out / "distillation_runs.csv", drows)
    hard = {r["seed"]: r for r in drows if r["alpha"] == 0}
    dagg = []
    for arm in ["hard labels"] + [f"soft T={T:g}" for T in DISTILL_TEMPS]:
        sel = [r for r in drows if r["arm"] == arm]
        acc, acc_s = mean_std([r["test_acc"] for r in sel])
        nll, nll_s = mean_std([r["test_nll_T1"] for r in sel])
        gain, gain_s = mean_std([r["test_acc"] - hard[r["seed"]]["test_acc"] for r in sel])
        wins = sum(r["test_acc"] > hard[r["seed"]]["test_acc"] for r in sel)
        dagg.append({"arm": arm, "test_acc": acc, "test_acc_std": acc_s, "test_nll_T1": nll,
                     "test_nll_T1_std": nll_s, "acc_gain_vs_hard": gain,
                     "acc_gain_vs_hard_std": gain_s, "seeds_better_than_hard": wins,
                     "seeds": len(sel)})
        print(f"student {arm:12s}: acc {pm(acc, acc_s)}  gain vs hard {gain * 100:+.2f} ± "
              f"{gain_s * 100:.2f} pts ({wins}/{len(sel)} seeds better)  NLL {pm(nll, nll_s)}")
    write_csv(args.out / "distillation.csv", dagg)

    soft = dagg[1:]
    best = max(soft, key=lambda a: a["acc_gain_vs_hard"])
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    h0 = dagg[0]
    for a_, key, lab in ((ax, "test_acc", "test accuracy"), (ax2, "test_nll_T1", "test NLL at T=1")):
        a_.errorbar(DISTILL_TEMPS, [a[key] for a in soft], yerr=[a[key + "_std"] for a in soft],
                    marker="o", capsize=3, label=f"student 64-{s_hidden}-10 on soft targets")
        a_.axhline(h0[key], color="C1", label="student on hard labels (mean)")
        a_.axhspan(h0[key] - h0[key + "_std"], h0[key] + h0[key + "_std"], color="C1", alpha=0.2)
        a_.axhline(tm["acc" if key == "test_acc" else "nll"], color="k", ls="--",
                   label=f"teacher 64-{t_hidden}-10")
        a_.set_xscale("log", base=2)
        a_.set_xlabel("distillation temperature T")
        a_.set_ylabel(lab)
        a_.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(f"knowledge distillation on digits, {seeds} seeds (mean ± std)", fontsize=10)
    fig.tight_layout()
    save_fig(fig, args.out / "distillation.png")

    a1 = {a["T"]: a for a in agg}
    claims = {
        "temps": TEMPS, "seeds": seeds,
        "test_acc": [a["test_acc"] for a in agg], "test_nll_T1": [a["test_nll_T1"] for a in agg],
        "ece_T1": [a["ece_T1"] for a in agg], "entropy_bits": [a["entropy_bits"] for a in agg],
        "logit_norm": [a["logit_norm"] for a in agg],
        "teacher_acc": tm["acc"], "hard_student_acc": h0["test_acc"],
        "distill": {a["arm"]: {"acc": a["test_acc"], "gain": a["acc_gain_vs_hard"],
                               "gain_std": a["acc_gain_vs_hard_std"],
                               "wins": a["seeds_better_than_hard"]} for a in dagg},
        "best_distill_arm": best["arm"], "best_distill_gain": best["acc_gain_vs_hard"],
        "best_distill_gain_std": best["acc_gain_vs_hard_std"],
    }
    headline = (f"training T {TEMPS[0]:g} -> {TEMPS[-1]:g}: logit norm {a1[TEMPS[0]]['logit_norm']:.1f}"
                f" -> {a1[TEMPS[-1]]['logit_norm']:.1f}, entropy {a1[TEMPS[0]]['entropy_bits']:.2f}"
                f" -> {a1[TEMPS[-1]]['entropy_bits']:.2f} bits, ECE {a1[TEMPS[0]]['ece_T1']:.3f} -> "
                f"{a1[TEMPS[-1]]['ece_T1']:.3f}, NLL@1 {a1[TEMPS[0]]['test_nll_T1']:.3f} -> "
                f"{a1[TEMPS[-1]]['test_nll_T1']:.3f}; distillation: best {best['arm']} "
                f"{best['acc_gain_vs_hard'] * 100:+.2f} ± {best['acc_gain_vs_hard_std'] * 100:.2f} "
                f"pts vs hard labels ({h0['test_acc']:.4f}), teacher {tm['acc']:.4f}")
    cols = ["train T", "test acc", "test NLL (T=1)", "ECE (T=1)", "entropy (bits)", "logit norm"]
    trows = [[f"{a['T']:g}"] + [pm(a[k], a[k + "_std"], ".3f" if k != "test_acc" else ".4f")
                                for k in metrics] for a in agg]
    drows_t = [[a["arm"], pm(a["test_acc"], a["test_acc_std"]),
                f"{a['acc_gain_vs_hard'] * 100:+.2f} ± {a['acc_gain_vs_hard_std'] * 100:.2f}",
                f"{a['seeds_better_than_hard']}/{a['seeds']}",
                pm(a["test_nll_T1"], a["test_nll_T1_std"], ".3f")] for a in dagg]
    drows_t.append([f"teacher 64-{t_hidden}-10", f"{tm['acc']:.4f}", "-", "-", f"{tm['nll']:.3f}"])
    return finish(NAME, args, headline=headline, claims=claims, columns=cols, rows=trows,
                  more_tables=[{"title": f"(b) distillation, student 64-{s_hidden}-10, "
                                         f"{seeds} seeds, {s_epochs} epochs",
                                "columns": ["student", "test acc", "gain vs hard (pts)",
                                            "seeds better", "test NLL (T=1)"],
                                "rows": drows_t}],
                  figures=["train_temperature.png", "distillation.png"], t0=t0)


if __name__ == "__main__":
    main()
