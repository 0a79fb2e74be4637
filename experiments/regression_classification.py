"""Study 6: the lectures' two worked MLPs - regression (car sensors) and classification (pixels).

Questions:
1. Regression: the slides' car example (8 rangefinder readings -> steering angle and throttle;
   o1 = tanh(W1 x), o2 = W2 o1 with identity output, E = mean squared error; data set
   "car_sensor"). How does test MSE fall with the hidden width (2..128), and how far below a
   linear least-squares fit does it go?
2. Classification "of the seed's kind" (pixel values): o1 = tanh(W1 x), o2 = softmax(W2 o1),
   one-hot cross-entropy, on scikit-learn's 8x8 digits. Test accuracy and cross-entropy in
   bits (-log2 P_m(correct class), averaged).

Targets and inputs are standardised with the training split's statistics (the library's
default), so MSE is in units of the target variance (a constant predictor scores about 1).

Run: ``python experiments/regression_classification.py [--quick] [--out DIR]``
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

NAME = "regression_classification"


def least_squares_mse(splits) -> float:
    """Test MSE (mean over outputs) of the ordinary least-squares affine map x -> x A + c."""
    Xa = np.c_[splits.X_train.astype(np.float64), np.ones(len(splits.X_train))]
    A, *_ = np.linalg.lstsq(Xa, splits.y_train.astype(np.float64), rcond=None)
    pred = np.c_[splits.X_test.astype(np.float64), np.ones(len(splits.X_test))] @ A
    return float(np.mean((pred - splits.y_test) ** 2))


def main(argv=None) -> dict:
    args = parse_args(NAME, argv, __doc__)
    t0 = time.time()
    q = args.quick

    # ---------------- 1. regression vs width
    widths = [2, 8, 32] if q else [2, 4, 8, 16, 32, 64, 128]
    seeds = 1 if q else 3
    car = jaxmlp.load_splits(jaxmlp.DataConfig(dataset="car_sensor"))
    ls_mse = least_squares_mse(car)
    model = jaxmlp.ModelConfig(hidden=(max(widths),), activation="tanh")
    train = jaxmlp.TrainConfig(optimizer="adam", lr=3e-3, batch_size=128, epochs=15 if q else 150,
                               schedule="cosine")
    res = sweep(car, model=model, train=train, grid={"width": widths}, seeds=seeds,
                max_pad_ratio=float("inf") if q else 8.0)
    runs = [{"width": r["width"], "seed": r["seed"], "train_mse": r["train_mse"],
             "val_mse": r["val_mse"], "test_mse": r["test_mse"]} for r in res.rows]
    write_csv(args.out / "car_runs.csv", runs)
    reg = []
    for w in widths:
        m, s = mean_std([r["test_mse"] for r in runs if r["width"] == w])
        tr, _ = mean_std([r["train_mse"] for r in runs if r["width"] == w])
        reg.append({"width": w, "test_mse": m, "test_mse_std": s, "train_mse": tr,
                    "vs_least_squares": m / ls_mse})
        print(f"car_sensor width {w:4d}: test MSE {pm(m, s)} (least squares {ls_mse:.4f})")
    write_csv(args.out / "car_sensor.csv", reg + [{"width": "least_squares", "test_mse": ls_mse}])
    noise_floor = None
    if car.y_std is not None:  # the generator's target noise (0.05) in standardised units
        noise_floor = float(np.mean((0.05 / np.asarray(car.y_std, np.float64)) ** 2))

    # ---------------- 2. classification, o1 = tanh(W1 x), o2 = softmax(W2 o1)
    digits = jaxmlp.load_splits(jaxmlp.DataConfig(dataset="digits"))
    hidden = 32 if q else 64
    params, hist = jaxmlp.fit(digits, model=jaxmlp.ModelConfig(hidden=(hidden,), activation="tanh"),
                              train=jaxmlp.TrainConfig(optimizer="sgd", lr=0.1, batch_size=32,
                                                       epochs=10 if q else 60))
    logits = jaxmlp.forward(params, jnp.asarray(digits.X_test), activation="tanh")
    yte = jnp.asarray(digits.y_test, jnp.int32)
    cls = {"hidden": hidden, "test_accuracy": float(jaxmlp.accuracy(logits, yte)),
           "test_ce_bits": float(jaxmlp.cross_entropy_bits(logits, yte)),
           "train_ce_bits": float(hist["final"]["train_loss"]) / math.log(2.0),
           "chance_ce_bits": math.log2(digits.n_classes),
           "epochs": int(hist["final"]["epochs_run"])}
    print(f"digits 64-{hidden}-10 tanh/softmax: test accuracy {cls['test_accuracy']:.4f}, test CE "
          f"{cls['test_ce_bits']:.3f} bits (uniform guess: {cls['chance_ce_bits']:.3f} bits)")
    write_csv(args.out / "digits.csv", [cls])

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax.errorbar(widths, [r["test_mse"] for r in reg], yerr=[r["test_mse_std"] for r in reg],
                marker="o", capsize=3, label="tanh MLP, test")
    ax.plot(widths, [r["train_mse"] for r in reg], "s--", ms=4, label="tanh MLP, train")
    ax.axhline(ls_mse, color="k", label=f"linear least squares ({ls_mse:.3f})")
    if noise_floor is not None:
        ax.axhline(noise_floor, color="0.5", ls=":", label=f"target noise floor ({noise_floor:.4f})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("hidden width")
    ax.set_ylabel("MSE (standardised targets)")
    ax.set_title("car sensors -> steering, throttle")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ep = hist["epoch"]
    ax2.plot(ep, hist["train_loss"] / math.log(2), label="train CE")
    ax2.plot(ep, hist["test_loss"] / math.log(2), label="test CE")
    ax2.set_yscale("log")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("cross-entropy (bits)")
    ax2b = ax2.twinx()
    ax2b.plot(ep, hist["test_accuracy"], color="C2", label="test accuracy")
    ax2b.set_ylabel("test accuracy")
    ax2.set_title(f"digits, o1 = tanh(W1 x), o2 = softmax(W2 o1), hidden {hidden}")
    ax2.legend(loc="center right", fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    save_fig(fig, args.out / "regression_classification.png")

    best = min(reg, key=lambda r: r["test_mse"])
    claims = {"widths": widths, "test_mse": [r["test_mse"] for r in reg], "least_squares_mse": ls_mse,
              "best_width": best["width"], "best_test_mse": best["test_mse"],
              "noise_floor_mse": noise_floor, "digits_test_accuracy": cls["test_accuracy"],
              "digits_test_ce_bits": cls["test_ce_bits"], "digits_chance_ce_bits": cls["chance_ce_bits"]}
    headline = (f"car sensors: test MSE {reg[0]['test_mse']:.3f} (width {widths[0]}) -> "
                f"{best['test_mse']:.4f} (width {best['width']}) vs linear least squares "
                f"{ls_mse:.3f} ({ls_mse / best['test_mse']:.1f}x lower); digits 64-{hidden}-10: "
                f"test accuracy {cls['test_accuracy']:.4f}, CE {cls['test_ce_bits']:.3f} bits")
    cols = ["model", "test MSE (mean ± std)", "train MSE", "vs least squares"]
    rows = [[f"tanh 8-{r['width']}-2", pm(r["test_mse"], r["test_mse_std"]), f"{r['train_mse']:.4f}",
             f"{r['vs_least_squares']:.3f}x"] for r in reg]
    rows.append(["linear least squares", f"{ls_mse:.4f}", "-", "1x"])
    if noise_floor is not None:
        rows.append(["target noise floor (0.05 std)", f"{noise_floor:.4f}", "-", "-"])
    return finish(NAME, args, headline=headline, claims=claims, columns=cols, rows=rows,
                  more_tables=[{"title": "classification (digits, one tanh hidden layer, softmax, SGD)",
                                "columns": ["model", "test accuracy", "test CE (bits)",
                                            "train CE (bits)", "uniform guess (bits)"],
                                "rows": [[f"64-{hidden}-10", f"{cls['test_accuracy']:.4f}",
                                          f"{cls['test_ce_bits']:.3f}", f"{cls['train_ce_bits']:.3f}",
                                          f"{cls['chance_ce_bits']:.3f}"]]}],
                  figures=["regression_classification.png"], t0=t0)


if __name__ == "__main__":
    main()
