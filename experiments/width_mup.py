"""Study 5: does the best learning rate transfer across width? SP vs muP.

Question: as the hidden width of a two-hidden-layer ReLU MLP grows from 64 to 2048, does the
best SGD learning rate move under the standard parametrisation (SP), and does it stay put
under the maximal update parametrisation (muP, Yang & Hu 2021; Yang et al. 2022, "Tensor
Programs V"; ``ModelConfig(parametrization="mup", base_width=64)``: input-layer learning rate
x n/n0, output-layer learning rate x n0/n and output init std x sqrt(n0/n), the SGD column)?

Set-up, the way the muP papers show it: hidden layers (n, n), so muP has hidden-to-hidden
weights between its rescaled input and output layers; plain SGD, batch 64, 10 epochs on digits
(past the first plateau of the loss); learning rates in half-octave steps around the optimum;
3 seeds; the *training* loss at the end of the budget (mean over seeds) as the metric, as in
the papers' "training loss vs learning rate, one curve per width" figure. One
``jaxmlp.sweep`` per parametrisation with ``grid={"width": [...], "lr": [...]}`` (each width
its own program: no padding). A cell where any seed's loss went non-finite, or ended above
the loss of a uniform guess (ln 10), counts as diverged and is marked.

Reported: the best learning rate per width, its spread over widths in octaves for each
parametrisation, and how close the loss-vs-lr curves of neighbouring widths get (the mean
absolute difference in log loss over the learning rates where both trained), which under muP
should shrink as the width grows (the infinite-width limit exists) and under SP should not.

Run: ``python experiments/width_mup.py [--quick] [--out DIR]``
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import jaxmlp  # noqa: E402
from common import finish, parse_args, save_fig, write_csv  # noqa: E402
from jaxmlp.sweeps import sweep  # noqa: E402

NAME = "width_mup"
BASE_WIDTH = 64
PARS = ("sp", "mup")
LABEL = {"sp": "standard (SP)", "mup": f"muP (base width {BASE_WIDTH})"}


def settings(quick: bool) -> dict:
    if quick:
        return {"widths": [64, 512, 1024], "lr_exps": np.arange(-1.5, 0.51, 0.5), "seeds": 2,
                "epochs": 10}
    return {"widths": [64, 128, 256, 512, 1024, 2048], "lr_exps": np.arange(-3.0, 1.51, 0.5),
            "seeds": 3, "epochs": 10}


def loss_grid(rows, widths, lrs) -> np.ndarray:
    """Seed-mean final train loss per (width, lr); NaN where a seed diverged."""
    L = np.full((len(widths), len(lrs)), np.nan)
    for i, w in enumerate(widths):
        for j, lr in enumerate(lrs):
            sel = [r["train_loss"] for r in rows if r["width"] == w and r["lr"] == lr]
            if sel and all(np.isfinite(sel)) and max(sel) < math.log(10):
                L[i, j] = float(np.mean(sel))
    return L


def curve_gaps(L: np.ndarray) -> list[float]:
    """Mean |log L_w(lr) - log L_2w(lr)| over the lrs where both widths trained, per pair of
    neighbouring widths (NaN when they share none)."""
    out = []
    for a, b in zip(L[:-1], L[1:]):
        ok = np.isfinite(a) & np.isfinite(b)
        out.append(float(np.mean(np.abs(np.log(a[ok]) - np.log(b[ok])))) if ok.any() else math.nan)
    return out


def run_par(par, splits, s, lrs):
    model = jaxmlp.ModelConfig(hidden=(s["widths"][-1],) * 2, activation="relu",
                               parametrization=par, base_width=BASE_WIDTH)
    train = jaxmlp.TrainConfig(optimizer="sgd", batch_size=64, epochs=s["epochs"])
    res = sweep(splits, model=model, train=train, grid={"width": s["widths"], "lr": lrs},
                seeds=s["seeds"], max_pad_ratio=1.0)
    print(f"{par}: {len(res.rows)} models in {len(res.info['programs'])} programs, "
          f"{res.info['total_s']:.1f} s")
    return [{"param": par, "width": r["width"], "lr": r["lr"], "seed": r["seed"],
             "train_loss": r["train_loss"] if not r["diverged"] else math.nan,
             "test_accuracy": r["test_accuracy"] if not r["diverged"] else math.nan,
             "diverged": bool(r["diverged"])} for r in res.rows]


def main(argv=None) -> dict:
    args = parse_args(NAME, argv, __doc__)
    t0 = time.time()
    s = settings(args.quick)
    widths, lrs = s["widths"], [float(2.0 ** e) for e in s["lr_exps"]]
    splits = jaxmlp.load_splits(jaxmlp.DataConfig(dataset="digits"))
    rows, res = [], {}
    for par in PARS:
        r = run_par(par, splits, s, lrs)
        rows += r
        L = loss_grid(r, widths, lrs)
        best = [lrs[int(np.nanargmin(row))] if np.isfinite(row).any() else math.nan for row in L]
        res[par] = {"loss": L, "best_lr": best,
                    "best_loss": [float(np.nanmin(row)) if np.isfinite(row).any() else math.nan
                                  for row in L],
                    # rounded: the grid's 2 ** 0.5 steps are not exact in floating point
                    "spread_octaves": round(float(np.log2(np.nanmax(best) / np.nanmin(best))), 9),
                    "shift_octaves": round(float(np.log2(best[-1] / best[0])), 9),
                    "gaps": curve_gaps(L),
                    "max_stable_lr": [max([lr for j, lr in enumerate(lrs) if np.isfinite(L[i, j])],
                                          default=math.nan) for i in range(len(widths))]}
        print(f"{par}: best lr per width {dict(zip(widths, best))}; spread "
              f"{res[par]['spread_octaves']:.1f} octaves; neighbour gaps "
              + ", ".join(f"{g:.3f}" for g in res[par]["gaps"]))
    write_csv(args.out / "runs.csv", rows)
    write_csv(args.out / "best_lr.csv", [
        {"param": par, "width": w, "best_lr": res[par]["best_lr"][i],
         "train_loss_at_best_lr": res[par]["best_loss"][i],
         "max_stable_lr": res[par]["max_stable_lr"][i]}
        for par in PARS for i, w in enumerate(widths)])
    plot(res, widths, lrs, s, args.out / "width_mup.png")

    sp, mu = res["sp"], res["mup"]
    claims = {"widths": widths, "lrs": lrs, "seeds": s["seeds"], "epochs": s["epochs"],
              "base_width": BASE_WIDTH,
              **{f"{p}_{k}": res[p][k] for p in PARS
                 for k in ("best_lr", "best_loss", "spread_octaves", "shift_octaves", "gaps",
                           "max_stable_lr")},
              "sp_loss_grid": sp["loss"], "mup_loss_grid": mu["loss"]}
    headline = (f"best SGD lr from width {widths[0]} to {widths[-1]} (2 hidden ReLU layers, "
                f"{s['epochs']} epochs): SP {sp['best_lr'][0]:.3g} -> {sp['best_lr'][-1]:.3g} "
                f"(spread {sp['spread_octaves']:.1f} octaves), muP {mu['best_lr'][0]:.3g} -> "
                f"{mu['best_lr'][-1]:.3g} (spread {mu['spread_octaves']:.1f} octaves); "
                f"neighbouring widths' loss curves differ by {mu['gaps'][0]:.3f} -> "
                f"{mu['gaps'][-1]:.3f} (muP) vs {sp['gaps'][0]:.3f} -> {sp['gaps'][-1]:.3f} (SP) "
                f"in mean |log loss|")
    fmt_lr = lambda v: "diverged" if not math.isfinite(v) else f"{v:.3g}"
    cols = ["width", "SP best lr", "SP train loss", "SP largest stable lr", "muP best lr",
            "muP train loss", "muP largest stable lr"]
    trows = [[w, fmt_lr(sp["best_lr"][i]), f"{sp['best_loss'][i]:.4f}",
              fmt_lr(sp["max_stable_lr"][i]), fmt_lr(mu["best_lr"][i]),
              f"{mu['best_loss'][i]:.4f}", fmt_lr(mu["max_stable_lr"][i])]
             for i, w in enumerate(widths)]
    grows = [[f"{a} -> {b}", f"{sp['gaps'][i]:.3f}", f"{mu['gaps'][i]:.3f}"]
             for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
    return finish(NAME, args, headline=headline, claims=claims, columns=cols, rows=trows,
                  more_tables=[{"title": "how far apart neighbouring widths' loss-vs-lr curves "
                                         "are (mean abs difference of log train loss)",
                                "columns": ["widths", "SP", "muP"], "rows": grows}],
                  figures=["width_mup.png"], t0=t0)


def plot(res, widths, lrs, s, path):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    cmap = plt.get_cmap("viridis")
    top = max(np.nanmax(res[p]["loss"]) for p in PARS) * 1.5
    low = min(np.nanmin(res[p]["loss"]) for p in PARS) * 0.7
    for ax, par in zip(axes[:2], PARS):
        L = res[par]["loss"]
        for i, w in enumerate(widths):
            c = cmap(i / max(len(widths) - 1, 1))
            ax.plot(lrs, L[i], "o-", color=c, ms=3, label=f"width {w}")
            gone = ~np.isfinite(L[i])
            ax.plot(np.asarray(lrs)[gone], np.full(gone.sum(), top), "x", color=c, ms=7)
            if math.isfinite(res[par]["best_lr"][i]):
                j = lrs.index(res[par]["best_lr"][i])
                ax.plot(lrs[j], L[i, j], "*", color=c, ms=13, mec="k")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("learning rate (SGD)")
        ax.set_title(f"{LABEL[par]}: best lr spread {res[par]['spread_octaves']:.1f} octaves",
                     fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(f"train loss after {s['epochs']} epochs (mean of {s['seeds']} seeds)")
    for ax in axes[:2]:
        ax.set_ylim(low, top * 1.3)
    axes[1].legend(fontsize=7, ncol=2)
    for par, m in zip(PARS, ("o-", "s-")):
        axes[2].plot(widths, res[par]["best_lr"], m, label=LABEL[par])
    axes[2].set_xscale("log", base=2)
    axes[2].set_yscale("log", base=2)
    axes[2].set_xlabel("width")
    axes[2].set_ylabel("best learning rate")
    axes[2].set_title("best lr vs width", fontsize=10)
    axes[2].grid(alpha=0.3, which="both")
    axes[2].legend(fontsize=8)
    fig.suptitle("digits, 64-n-n-10 ReLU, SGD batch 64; stars = best lr per width, x = "
                 "diverged (loss non-finite or above ln 10)", fontsize=10)
    fig.tight_layout()
    save_fig(fig, path)


if __name__ == "__main__":
    main()
