"""Study 3: one hidden ReLU layer of k units approximating x^2 on [-1, 1].

Question: how does the error of a trained 1-k-1 ReLU network fall with k, compared with the
best possible piecewise-linear approximation with the same number of pieces?

What we compare to (derivation). With a linear output,
f(x) = c + sum_j v_j ReLU(w_j x + b_j) is continuous and piecewise linear with one kink per
unit, at t_j = -b_j / w_j; only kinks inside (-1, 1) matter, so k units give at most k + 1
linear pieces on [-1, 1]. For g(x) = x^2 (g'' = 2) the linear interpolant on an interval of
length h has error e(u) = u (h - u) for u in [0, h], maximal at the midpoint: h^2/4
(the general bound h^2 max|g''| / 8 = h^2/4). With k interior knots spaced uniformly on
[-1, 1], h = 2/(k + 1), so the interpolant's max error is 1/(k + 1)^2. Shifting that
interpolant down by half its error, h^2/8, equi-oscillates on every piece (+-h^2/8) and is the
best L-infinity approximation by k + 1 pieces (uniform knots are optimal because x^2 has
constant curvature): max error 1/(2 (k + 1)^2). Both fall as k^-2: slope -2 on a log-log plot.

A subtlety: the network has no free affine term. Writing ReLU(u) = u + ReLU(-u), the slope of
the leftmost piece equals minus the sum of the slope changes of the left-facing units (w_j < 0),
so not every (k+1)-piece function is reachable. For the optimal fit of x^2 (slope changes all
2h, leftmost slope -(2 - h) = -k h) exactly k/2 units must face left: reachable for even k,
not for odd k (k = 1 can only make one flat piece and one sloped piece). Spending one unit on a
kink outside [-1, 1] (an affine term) always works, so k units surely reach k pieces:
max error 1/(2 k^2). We plot both references.

Training: ``jaxmlp.sweep`` over the widths k (exact padding inside width buckets), Adam by
name (``TrainConfig(optimizer="adam")``) with a cosine schedule, full batch on 512 grid points,
several seeds; we keep the seed with the lowest training MSE per k. Errors are measured on a
dense grid of 4001 points. The network minimises MSE, not the max error, so even a perfectly
trained network sits somewhat above the L-infinity optimum.

Run: ``python experiments/relu_x2.py [--quick] [--out DIR]``
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
from jaxmlp.data import make_x2  # noqa: E402
from jaxmlp.sweeps import sweep  # noqa: E402

NAME = "relu_x2"


def interpolant_max_err(k):
    """Max error of the linear interpolant of x^2 with k uniform interior knots on [-1, 1]."""
    return 1.0 / (np.asarray(k, float) + 1.0) ** 2


def best_linf_err(k):
    """Best L-infinity error of a continuous piecewise-linear fit with k + 1 pieces."""
    return 0.5 / (np.asarray(k, float) + 1.0) ** 2


def reachable_linf_err(k):
    """Best L-infinity error with k pieces (k - 1 interior kinks + one unit as affine term),
    which k ReLU units can always represent: 1/(2 k^2)."""
    return 0.5 / np.asarray(k, float) ** 2


def best_linf_mean_abs(k, n: int = 4001) -> float:
    """Mean |error| of the shifted uniform interpolant (the L-infinity optimum) on [-1, 1]."""
    x = np.linspace(-1, 1, n)
    knots = np.linspace(-1, 1, k + 2)
    approx = np.interp(x, knots, knots ** 2) - 0.5 * (2.0 / (k + 1)) ** 2 / 4
    return float(np.mean(np.abs(approx - x ** 2)))


def knots_of(params) -> np.ndarray:
    """Kinks t_j = -b_j / w_j of the hidden units (units with w_j = 0 have none)."""
    w = np.asarray(params[0]["W"], np.float64)[0]
    b = np.asarray(params[0]["b"], np.float64)
    v = np.asarray(params[1]["W"], np.float64)[:, 0]
    ok = np.abs(w) > 1e-12
    t = -b[ok] / w[ok]
    return t[np.abs(v[ok]) > 1e-6]


def main(argv=None) -> dict:
    args = parse_args(NAME, argv, __doc__)
    t0 = time.time()
    q = args.quick
    ks = [1, 2, 4, 8] if q else [1, 2, 4, 8, 16, 32, 64]
    seeds = 4 if q else 6
    epochs = 2000 if q else 6000
    lrs = [0.02] if q else [0.03, 0.1]

    ds = make_x2(512)
    x_dense = np.linspace(-1, 1, 4001, dtype=np.float32)[:, None]
    y_dense = x_dense ** 2
    model = jaxmlp.ModelConfig(hidden=(max(ks),), activation="relu")
    train = jaxmlp.TrainConfig(optimizer="adam", lr=0.01, schedule="cosine",
                               batch_size=len(ds.X), epochs=epochs)
    # The library's sweep needs a validation split (a tuple without one fails, see README); the
    # per-epoch val/test metrics are computed every epoch, so give it the training points
    # (cheap) and measure the errors on the dense grid of 4001 points afterwards.
    data = (ds.X, ds.y, ds.X, ds.y, ds.X, ds.y)
    res = sweep(data, model=model, train=train, grid={"width": ks, "lr": lrs}, seeds=seeds,
                max_pad_ratio=8.0)
    print(f"sweep: {len(res.rows)} models, {len(res.info['programs'])} programs, "
          f"{res.info['total_s']:.1f} s")

    rows, best = [], {}
    for i, r in enumerate(res.rows):
        p = res.params(i)
        pred = np.asarray(jaxmlp.forward(p, x_dense, activation="relu"), np.float64)
        err = np.abs(pred - y_dense.astype(np.float64))[:, 0]
        t = knots_of(p)
        row = {"k": r["width"], "lr": r["lr"], "seed": r["seed"], "train_mse": r["train_loss"],
               "max_abs_err": float(err.max()), "mean_abs_err": float(err.mean()),
               "knots_inside": int(np.sum(np.abs(t) < 1.0)), "diverged": r["diverged"]}
        rows.append(row)
        k = r["width"]
        if k not in best or row["train_mse"] < best[k][0]["train_mse"]:
            best[k] = (row, p, pred[:, 0])
    write_csv(args.out / "all_runs.csv", rows)

    table = []
    for k in ks:
        row = best[k][0]
        opt = best_linf_err(k)
        table.append({"k": k, "pieces_max": k + 1, "best_lr": row["lr"], "best_seed": row["seed"],
                      "train_mse": row["train_mse"], "max_abs_err": row["max_abs_err"],
                      "mean_abs_err": row["mean_abs_err"],
                      "interp_max_err_1/(k+1)^2": float(interpolant_max_err(k)),
                      "optimal_max_err_1/(2(k+1)^2)": float(opt),
                      "optimal_mean_abs_err": best_linf_mean_abs(k),
                      "reachable_max_err_1/(2k^2)": float(reachable_linf_err(k)),
                      "ratio_to_optimal": row["max_abs_err"] / opt,
                      "knots_inside": row["knots_inside"]})
        print(f"k={k:3d}: max err {row['max_abs_err']:.2e} (optimal {opt:.2e}, ratio "
              f"{row['max_abs_err'] / opt:.2f}), mean err {row['mean_abs_err']:.2e}, "
              f"kinks inside [-1,1]: {row['knots_inside']}/{k}")
    write_csv(args.out / "relu_x2.csv", table)

    kk = np.asarray(ks, float)
    maxe = np.asarray([t["max_abs_err"] for t in table])
    meane = np.asarray([t["mean_abs_err"] for t in table])
    slope = float(np.polyfit(np.log(kk + 1), np.log(maxe), 1)[0])
    slope_mean = float(np.polyfit(np.log(kk + 1), np.log(meane), 1)[0])

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    kf = np.linspace(1, max(ks), 200)
    ax.loglog(kk, maxe, "o-", label="trained: max |error|")
    ax.loglog(kk, meane, "s-", label="trained: mean |error|")
    ax.loglog(kf, interpolant_max_err(kf), "k--", label="uniform interpolant: 1/(k+1)^2")
    ax.loglog(kf, best_linf_err(kf), "k-", label="best L-inf, k+1 pieces: 1/(2(k+1)^2)")
    ax.loglog(kf, reachable_linf_err(kf), color="0.6", ls="-.",
              label="best L-inf, k pieces (always reachable): 1/(2k^2)")
    ax.loglog(kk, [best_linf_mean_abs(k) for k in ks], "k:", label="mean |error| of the (k+1)-piece optimum")
    ax.set_xlabel("hidden ReLU units k")
    ax.set_ylabel("error on [-1, 1]")
    ax.set_title(f"x^2 with one ReLU layer (fitted slope of max error: {slope:.2f})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    show = [k for k in ks if k in (2, 4, 8)] or ks[:2]
    xs = x_dense[:, 0]
    ax2.plot(xs, xs ** 2, "k", lw=2, label="x^2")
    for k in show:
        _, p, pred = best[k]
        line, = ax2.plot(xs, pred, label=f"k = {k}")
        t = np.sort(knots_of(p))
        t = t[np.abs(t) < 1]
        ax2.plot(t, np.interp(t, xs, pred), "v", color=line.get_color(), ms=8)
    ax2.set_title("fits with learned kinks t_j = -b_j / w_j (triangles)")
    ax2.set_xlabel("x")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    save_fig(fig, args.out / "relu_x2.png")

    ratios = [t["ratio_to_optimal"] for t in table]
    claims = {"ks": ks, "max_abs_err": maxe.tolist(), "mean_abs_err": meane.tolist(),
              "optimal_max_err": [t["optimal_max_err_1/(2(k+1)^2)"] for t in table],
              "ratio_to_optimal": ratios, "loglog_slope_max_err": slope,
              "loglog_slope_mean_err": slope_mean, "epochs": epochs, "seeds": seeds}
    headline = (f"max error falls from {maxe[0]:.3g} (k={ks[0]}) to {maxe[-1]:.3g} (k={ks[-1]}), "
                f"log-log slope {slope:.2f} vs the optimal -2; trained/optimal max-error ratio "
                f"{min(ratios):.2f}..{max(ratios):.2f} (optimum 1/(2(k+1)^2))")
    cols = ["k", "pieces (max)", "train MSE", "max abs err", "optimal max err 1/(2(k+1)^2)",
            "k-piece optimum 1/(2k^2)", "interpolant 1/(k+1)^2", "ratio to optimal",
            "mean abs err", "kinks inside"]
    trows = [[t["k"], t["pieces_max"], f"{t['train_mse']:.2e}", f"{t['max_abs_err']:.2e}",
              f"{t['optimal_max_err_1/(2(k+1)^2)']:.2e}", f"{t['reachable_max_err_1/(2k^2)']:.2e}",
              f"{t['interp_max_err_1/(k+1)^2']:.2e}",
              f"{t['ratio_to_optimal']:.2f}", f"{t['mean_abs_err']:.2e}",
              f"{t['knots_inside']}/{t['k']}"] for t in table]
    return finish(NAME, args, headline=headline, claims=claims, columns=cols, rows=trows,
                  figures=["relu_x2.png"], t0=t0)


if __name__ == "__main__":
    main()
