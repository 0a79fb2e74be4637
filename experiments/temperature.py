"""Study 4: softmax temperature in training, and post-hoc temperature scaling.

(a) Question: what does training with cross-entropy at softmax temperature T,
q = softmax(z / T), do to a digits classifier evaluated at T = 1? For T in
{0.25, 0.5, 1, 2, 4, 8} (``jaxmlp.sweep`` with ``grid={"temperature": [...]}``, several seeds,
one compiled program) we measure test accuracy, test NLL at T = 1, expected calibration error
(15 equal-width confidence bins, at T = 1), mean predictive entropy in bits and the mean logit
norm ||z||, each as mean ± std over seeds. The network can absorb T into its output layer
(z -> T z leaves the training loss unchanged), so the expectation is: high training T ->
larger logits -> over-confident at T = 1; low T -> small logits -> under-confident.

(b) Question: does post-hoc temperature scaling (Guo et al. 2017) fix the calibration of the
trained models without touching their accuracy? After training, one scalar T* per model is
fitted on the *validation* set by NLL (``jaxmlp.fit_temperature``: bisection on the slope of
``jaxmlp.cross_entropy`` in log T), and the test set is scored at T = 1 and at T*: accuracy
(argmax(z / T*) = argmax(z), so unchanged), ECE (15 bins, ``jaxmlp.expected_calibration_error``)
and NLL, for the models trained at T in {0.25, 1, 4} at two widths (64 and 512 in the full
run), with reliability diagrams before and after. Guo et al. report ECE 16.5% -> 1.3% for a
ResNet-110 on CIFAR-100; a small MLP on digits is much better calibrated to begin with.

Knowledge distillation, which used to live here, is ``experiments/distillation.py``.

Run: ``python experiments/temperature.py [--quick] [--out DIR]``
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import jaxmlp  # noqa: E402
from common import finish, mean_std, parse_args, pm, save_fig, write_csv  # noqa: E402
from jaxmlp.sweeps import sweep  # noqa: E402

NAME = "temperature"
TEMPS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
POSTHOC_TEMPS = [0.25, 1.0, 4.0]


def eval_at_T1(params, X, y, activation: str) -> dict:
    """Test metrics of ``params`` evaluated at temperature 1, via the library's functions."""
    logits = jaxmlp.forward(params, jnp.asarray(X, jnp.float32), activation=activation)
    yj = jnp.asarray(y, jnp.int32)
    probs = np.asarray(jaxmlp.softmax(logits), np.float64)
    return {"acc": float(jaxmlp.accuracy(logits, yj)),
            "nll": float(jaxmlp.cross_entropy(logits, yj)),
            "ece": jaxmlp.expected_calibration_error(probs, np.asarray(y)),
            "entropy_bits": float(jnp.mean(jaxmlp.entropy_from_logits(logits))) / math.log(2.0),
            "logit_norm": float(jnp.mean(jnp.linalg.norm(logits, axis=-1)))}


def posthoc_study(splits, quick: bool, seeds: int) -> dict:
    """Train at ``POSTHOC_TEMPS`` x two widths, fit T* on validation NLL, score test before/after."""
    widths = [32, 128] if quick else [64, 512]
    train = jaxmlp.TrainConfig(optimizer="adam", lr=3e-3, batch_size=64, epochs=8 if quick else 40)
    model = jaxmlp.ModelConfig(hidden=(widths[-1],), activation="tanh")
    res = sweep(splits, model=model, train=train, seeds=seeds,
                grid={"temperature": POSTHOC_TEMPS, "width": widths})
    Xv, yv = jnp.asarray(splits.X_val, jnp.float32), np.asarray(splits.y_val)
    Xt, yt = jnp.asarray(splits.X_test, jnp.float32), np.asarray(splits.y_test)
    rows, pooled = [], {}
    for i, r in enumerate(res.rows):
        p = res.params(i)
        t_star = jaxmlp.fit_temperature(jaxmlp.forward(p, Xv, activation="tanh"), yv)
        zt = jaxmlp.forward(p, Xt, activation="tanh")
        row = {"train_T": r["temperature"], "width": r["width"], "seed": r["seed"],
               "fitted_T": t_star}
        for tag, T in (("before", 1.0), ("after", t_star)):
            probs = np.asarray(jaxmlp.softmax(zt, temperature=T), np.float64)
            row[f"acc_{tag}"] = float(np.mean(probs.argmax(1) == yt))
            row[f"ece_{tag}"] = jaxmlp.expected_calibration_error(probs, yt)
            row[f"nll_{tag}"] = float(jaxmlp.cross_entropy(zt, jnp.asarray(yt), temperature=T))
            pooled.setdefault((r["temperature"], r["width"], tag), []).append(probs)
        rows.append(row)
    agg = []
    for T in POSTHOC_TEMPS:
        for w in widths:
            sel = [x for x in rows if x["train_T"] == T and x["width"] == w]
            a = {"train_T": T, "width": w}
            for k in ("fitted_T", "acc_before", "acc_after", "ece_before", "ece_after",
                      "nll_before", "nll_after"):
                a[k], a[k + "_std"] = mean_std([x[k] for x in sel])
            agg.append(a)
            print(f"train T={T:g} width {w}: T* {a['fitted_T']:.2f}  ECE {a['ece_before']:.3f} -> "
                  f"{a['ece_after']:.3f}  NLL {a['nll_before']:.3f} -> {a['nll_after']:.3f}  "
                  f"acc {a['acc_before']:.4f} -> {a['acc_after']:.4f}")
    # the reliability diagrams pool every seed's test predictions (359 digits alone leave most
    # bins with a handful of examples)
    bins = {k: jaxmlp.reliability_bins(np.concatenate(v), np.tile(yt, len(v)))
            for k, v in pooled.items()}
    ece = {k: jaxmlp.expected_calibration_error(np.concatenate(v), np.tile(yt, len(v)))
           for k, v in pooled.items()}
    return {"rows": rows, "agg": agg, "bins": bins, "pooled_ece": ece, "widths": widths,
            "epochs": train.epochs, "seeds": seeds}


def plot_reliability(post: dict, path) -> None:
    """Reliability diagrams (widest model, every seed pooled) before and after scaling, per
    training T."""
    w = post["widths"][-1]
    fig, axes = plt.subplots(1, len(POSTHOC_TEMPS), figsize=(4.2 * len(POSTHOC_TEMPS), 4))
    for ax, T in zip(axes, POSTHOC_TEMPS):
        a = next(x for x in post["agg"] if x["train_T"] == T and x["width"] == w)
        for tag, c, lab in (("before", "C3", "T = 1"), ("after", "C0", "fitted T*")):
            b = post["bins"][(T, w, tag)]
            mid = 0.5 * (b["edges"][:-1] + b["edges"][1:])
            ok = b["count"] > 0
            ax.plot(b["confidence"][ok], b["accuracy"][ok], "o-", color=c, ms=4,
                    label=f"{lab}: ECE {post['pooled_ece'][(T, w, tag)]:.3f}")
            ax.bar(mid[ok], b["count"][ok] / b["count"].sum(), width=1 / len(mid), color=c,
                   alpha=0.12)
        ax.plot([0, 1], [0, 1], "k--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("confidence (top class)")
        ax.set_title(f"trained at T = {T:g}; T* = {a['fitted_T']:.2f} (mean)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    axes[0].set_ylabel("accuracy in bin (bars: share of examples)")
    fig.suptitle(f"digits, 64-{w}-10 tanh, test set, {post['seeds']} seeds pooled; T* fitted "
                 "on validation NLL per model",
                 fontsize=10)
    fig.tight_layout()
    save_fig(fig, path)


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

    # ---------------- (b) post-hoc temperature scaling
    post = posthoc_study(splits, q, seeds)
    write_csv(args.out / "posthoc_runs.csv", post["rows"])
    write_csv(args.out / "posthoc.csv", post["agg"])
    plot_reliability(post, args.out / "reliability.png")

    a1 = {a["T"]: a for a in agg}
    pr, pa = post["rows"], post["agg"]
    ece_b, ece_a = np.mean([x["ece_before"] for x in pr]), np.mean([x["ece_after"] for x in pr])
    claims = {
        "temps": TEMPS, "seeds": seeds,
        "test_acc": [a["test_acc"] for a in agg], "test_nll_T1": [a["test_nll_T1"] for a in agg],
        "ece_T1": [a["ece_T1"] for a in agg], "entropy_bits": [a["entropy_bits"] for a in agg],
        "logit_norm": [a["logit_norm"] for a in agg],
        "posthoc_temps": POSTHOC_TEMPS, "posthoc_widths": post["widths"],
        "posthoc_acc_unchanged": all(x["acc_before"] == x["acc_after"] for x in pr),
        "posthoc_mean_ece_before": ece_b, "posthoc_mean_ece_after": ece_a,
        "posthoc_nll_not_worse": all(x["nll_after"] <= x["nll_before"] + 1e-3 for x in pr),
        "posthoc_fitted_T": {f"{a['train_T']:g}/{a['width']}": a["fitted_T"] for a in pa},
        "posthoc_ece": {f"{a['train_T']:g}/{a['width']}": [a["ece_before"], a["ece_after"]]
                        for a in pa},
    }
    headline = (f"training T {TEMPS[0]:g} -> {TEMPS[-1]:g}: logit norm {a1[TEMPS[0]]['logit_norm']:.1f}"
                f" -> {a1[TEMPS[-1]]['logit_norm']:.1f}, entropy {a1[TEMPS[0]]['entropy_bits']:.2f}"
                f" -> {a1[TEMPS[-1]]['entropy_bits']:.2f} bits, ECE {a1[TEMPS[0]]['ece_T1']:.3f} -> "
                f"{a1[TEMPS[-1]]['ece_T1']:.3f}, NLL@1 {a1[TEMPS[0]]['test_nll_T1']:.3f} -> "
                f"{a1[TEMPS[-1]]['test_nll_T1']:.3f}; post-hoc temperature scaling: mean test ECE "
                f"{ece_b:.3f} -> {ece_a:.3f} ({ece_b / ece_a:.1f}x lower) over {len(pr)} models, "
                f"accuracy {'unchanged' if claims['posthoc_acc_unchanged'] else 'CHANGED'}")
    cols = ["train T", "test acc", "test NLL (T=1)", "ECE (T=1)", "entropy (bits)", "logit norm"]
    trows = [[f"{a['T']:g}"] + [pm(a[k], a[k + "_std"], ".3f" if k != "test_acc" else ".4f")
                                for k in metrics] for a in agg]
    prows = [[f"{a['train_T']:g}", a["width"], pm(a["fitted_T"], a["fitted_T_std"], ".2f"),
              f"{a['acc_before']:.4f}", f"{a['acc_after']:.4f}",
              f"{pm(a['ece_before'], a['ece_before_std'], '.3f')} -> "
              f"{pm(a['ece_after'], a['ece_after_std'], '.3f')}",
              f"{pm(a['nll_before'], a['nll_before_std'], '.3f')} -> "
              f"{pm(a['nll_after'], a['nll_after_std'], '.3f')}"] for a in pa]
    return finish(NAME, args, headline=headline, claims=claims, columns=cols, rows=trows,
                  more_tables=[{"title": f"(b) post-hoc temperature scaling, T* fitted on "
                                         f"validation NLL, {post['seeds']} seeds, "
                                         f"{post['epochs']} epochs (test set)",
                                "columns": ["train T", "width", "fitted T*", "acc at T=1",
                                            "acc at T*", "ECE before -> after",
                                            "NLL before -> after"],
                                "rows": prows}],
                  figures=["train_temperature.png", "reliability.png"], t0=t0)


if __name__ == "__main__":
    main()
