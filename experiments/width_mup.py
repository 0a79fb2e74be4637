"""Study 5: width and learning rate under the standard parametrisation (SP) and muP.

Question: as the hidden width grows from 8 to 1024, does the best learning rate move under
SP, and does it stay put under the maximal update parametrisation (muP, Yang & Hu 2021;
``ModelConfig(parametrization="mup", base_width=64)``: input-layer learning rate x n/n0,
output-layer learning rate x n0/n and output init std x sqrt(n0/n), SGD column)?

Set-up, as the muP papers do it: a fixed small budget (a few epochs of plain SGD, batch 64)
on digits with a one-hidden-layer tanh MLP, a learning-rate sweep (powers of two) at every
width, several seeds, and the *training* loss at the end of the budget as the metric. All of
it runs through ``jaxmlp.sweep`` with ``grid={"width": [...], "lr": [...]}``; widths are
grouped in buckets of ratio <= 2 (exact padding with masks), so each program pads at most 2x.
A model whose loss went non-finite counts as diverged (the loss is shown as missing).

Run: ``python experiments/width_mup.py [--quick] [--out DIR]``
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
from jaxmlp.sweeps import sweep  # noqa: E402

NAME = "width_mup"
BASE_WIDTH = 64


def main(argv=None) -> dict:
    args = parse_args(NAME, argv, __doc__)
    t0 = time.time()
    q = args.quick
    widths = [8, 64] if q else [8, 16, 32, 64, 128, 256, 512, 1024]
    lrs = [2.0 ** e for e in (range(-4, 3, 2) if q else range(-6, 4))]
    seeds = 1 if q else 2
    epochs = 3 if q else 5
    pad_ratio = float("inf") if q else 2.0
    splits = jaxmlp.load_splits(jaxmlp.DataConfig(dataset="digits"))
    train = jaxmlp.TrainConfig(optimizer="sgd", batch_size=64, epochs=epochs)

    rows, results = [], {}
    for par in ("sp", "mup"):
        model = jaxmlp.ModelConfig(hidden=(widths[-1],), activation="tanh", parametrization=par,
                                   base_width=BASE_WIDTH)
        res = sweep(splits, model=model, train=train, grid={"width": widths, "lr": lrs},
                    seeds=seeds, max_pad_ratio=pad_ratio)
        print(f"{par}: {len(res.rows)} models in {len(res.info['programs'])} programs, "
              f"{res.info['total_s']:.1f} s")
        for r in res.rows:
            ok = not r["diverged"] and np.isfinite(r["train_loss"])
            rows.append({"param": par, "width": r["width"], "lr": r["lr"], "seed": r["seed"],
                         "train_loss": r["train_loss"] if ok else float("nan"),
                         "val_loss": r["val_loss"] if ok else float("nan"),
                         "test_accuracy": r["test_accuracy"] if ok else float("nan"),
                         "diverged": not ok})
    write_csv(args.out / "runs.csv", rows)

    # Seed-mean train loss per (param, width, lr); a diverged seed makes the cell diverged.
    summary, table = {}, []
    for par in ("sp", "mup"):
        L = np.full((len(widths), len(lrs)), np.nan)
        A = np.full((len(widths), len(lrs)), np.nan)
        for i, w in enumerate(widths):
            for j, lr in enumerate(lrs):
                sel = [r for r in rows if r["param"] == par and r["width"] == w and r["lr"] == lr]
                if all(not r["diverged"] for r in sel):
                    L[i, j] = np.mean([r["train_loss"] for r in sel])
                    A[i, j] = np.mean([r["test_accuracy"] for r in sel])
        best_j = [int(np.nanargmin(L[i])) if np.isfinite(L[i]).any() else -1 for i in range(len(widths))]
        best_lr = [lrs[j] if j >= 0 else float("nan") for j in best_j]
        summary[par] = {"loss": L, "acc": A, "best_lr": best_lr,
                        "shift_log2": float(np.log2(best_lr[-1] / best_lr[0])),
                        "spread_log2": float(np.log2(max(best_lr) / min(best_lr))),
                        "best_loss": [float(L[i, j]) for i, j in enumerate(best_j)],
                        "best_acc": [float(A[i, j]) for i, j in enumerate(best_j)]}
        for i, w in enumerate(widths):
            table.append({"param": par, "width": w, "best_lr": best_lr[i],
                          "train_loss_at_best_lr": summary[par]["best_loss"][i],
                          "test_acc_at_best_lr": summary[par]["best_acc"][i],
                          "max_stable_lr": max([lr for j, lr in enumerate(lrs)
                                                if np.isfinite(L[i, j])], default=float("nan"))})
        print(f"{par}: best lr per width {dict(zip(widths, best_lr))}; shift "
              f"{summary[par]['shift_log2']:+.0f} octaves from width {widths[0]} to {widths[-1]}")
    write_csv(args.out / "best_lr.csv", table)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    cmap = plt.get_cmap("viridis")
    for ax, par in zip(axes, ("sp", "mup")):
        L = summary[par]["loss"]
        for i, w in enumerate(widths):
            c = cmap(i / max(len(widths) - 1, 1))
            ax.plot(lrs, L[i], "o-", color=c, ms=3, label=f"width {w}")
            j = lrs.index(summary[par]["best_lr"][i]) if np.isfinite(summary[par]["best_lr"][i]) else None
            if j is not None:
                ax.plot(lrs[j], L[i, j], "*", color=c, ms=12, mec="k")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("learning rate (SGD)")
        ax.set_title(f"{'standard (SP)' if par == 'sp' else f'muP (base width {BASE_WIDTH})'}: "
                     f"best lr shifts {summary[par]['shift_log2']:+.0f} octaves", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylabel(f"train loss after {epochs} epochs (mean of {seeds} seeds)")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle("digits, 64-n-10 tanh; stars = best lr per width; gaps = diverged", fontsize=10)
    fig.tight_layout()
    save_fig(fig, args.out / "width_mup.png")

    sp, mu = summary["sp"], summary["mup"]
    claims = {"widths": widths, "lrs": lrs, "seeds": seeds, "epochs": epochs,
              "sp_best_lr": sp["best_lr"], "mup_best_lr": mu["best_lr"],
              "sp_shift_log2": sp["shift_log2"], "mup_shift_log2": mu["shift_log2"],
              "sp_spread_log2": sp["spread_log2"], "mup_spread_log2": mu["spread_log2"],
              "sp_best_loss": sp["best_loss"], "mup_best_loss": mu["best_loss"],
              "base_width": BASE_WIDTH, "sp_loss_grid": sp["loss"], "mup_loss_grid": mu["loss"]}
    headline = (f"best SGD lr from width {widths[0]} to {widths[-1]}: SP {sp['best_lr'][0]:g} -> "
                f"{sp['best_lr'][-1]:g} ({sp['shift_log2']:+.0f} octaves, spread "
                f"{sp['spread_log2']:.0f}), muP {mu['best_lr'][0]:g} -> {mu['best_lr'][-1]:g} "
                f"({mu['shift_log2']:+.0f} octaves, spread {mu['spread_log2']:.0f}); best train "
                f"loss at width {widths[-1]}: SP {sp['best_loss'][-1]:.3f}, muP {mu['best_loss'][-1]:.3f}")
    cols = ["width", "SP best lr", "SP train loss", "SP test acc", "muP best lr", "muP train loss",
            "muP test acc"]
    trows = [[w, f"{sp['best_lr'][i]:g}", f"{sp['best_loss'][i]:.4f}", f"{sp['best_acc'][i]:.4f}",
              f"{mu['best_lr'][i]:g}", f"{mu['best_loss'][i]:.4f}", f"{mu['best_acc'][i]:.4f}"]
             for i, w in enumerate(widths)]
    return finish(NAME, args, headline=headline, claims=claims, columns=cols, rows=trows,
                  figures=["width_mup.png"], t0=t0)


if __name__ == "__main__":
    main()
