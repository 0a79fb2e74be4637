"""Study 1: the lectures' f(x, y, z) = (x + y) z through the gate engine.

Question: does the hand-derived gate engine (``jaxmlp.backprop``) reproduce the slides'
forward/backward numbers at (x, y, z) = (-2, 5, -4), and does one SGD step
[x, y, z] <- [x, y, z] - eta grad f lower f?

Run: ``python experiments/computation_graph.py [--quick] [--out DIR]``
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from common import finish, parse_args, save_fig, write_csv  # noqa: E402
from jaxmlp.backprop import seed_example  # noqa: E402

NAME = "computation_graph"
LR = 0.01


def _f(v) -> float:
    return float(np.asarray(v))


def main(argv=None) -> dict:
    args = parse_args(NAME, argv, __doc__,
                      lambda p: p.add_argument("--lr", type=float, default=LR))
    t0 = time.time()
    g = seed_example(-2.0, 5.0, -4.0)
    g.forward()
    grads = g.backward(g["f"])
    print("forward / backward of f = (x + y) z at (-2, 5, -4):")
    print(g.table())
    trace = [{"node": r["name"], "op": r["op"], "inputs": ",".join(r["inputs"]),
              "value": _f(r["value"]), "grad": _f(r["grad"])} for r in g.trace()]
    write_csv(args.out / "trace.csv", trace)
    before = {n: _f(g[n].value) for n in ("x", "y", "z", "q", "f")}

    # SGD steps on the graph: [x, y, z] <- [x, y, z] - lr * grad f.
    n_steps = 5 if args.quick else 20
    f_path = [before["f"]]
    steps = []
    after = None
    for s in range(n_steps):
        gr = g.backward(g["f"])
        g.sgd_step(args.lr)
        vals = {n: _f(g[n].value) for n in ("x", "y", "z", "q", "f")}
        steps.append({"step": s + 1, **vals,
                      "dfdx": _f(gr["x"]), "dfdy": _f(gr["y"]), "dfdz": _f(gr["z"])})
        f_path.append(vals["f"])
        if after is None:
            after = vals
    write_csv(args.out / "sgd_steps.csv", steps)
    print(f"one SGD step (lr={args.lr}): x,y,z = ({before['x']:g}, {before['y']:g}, "
          f"{before['z']:g}) -> ({after['x']:.4g}, {after['y']:.4g}, {after['z']:.4g}); "
          f"f = {before['f']:g} -> {after['f']:.6g}")

    # Figure: the graph annotated with values (green) and gradients (red), and f over steps.
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [1.4, 1]})
    pos = {"x": (0, 2), "y": (0, 1), "z": (0, 0), "q": (1.4, 1.5), "f": (2.8, 0.75)}
    for a, b in (("x", "q"), ("y", "q"), ("q", "f"), ("z", "f")):
        ax.annotate("", xy=pos[b], xytext=pos[a],
                    arrowprops=dict(arrowstyle="->", color="0.5", shrinkA=18, shrinkB=18))
    ops = {"q": "+", "f": "*"}
    for r in trace:
        n = r["node"]
        x0, y0 = pos[n]
        ax.text(x0, y0, n if n not in ops else f"{n} ({ops[n]})", ha="center", va="center",
                fontsize=12, bbox=dict(boxstyle="circle", fc="w", ec="k"))
        ax.text(x0, y0 + 0.32, f"{r['value']:g}", color="green", ha="center", fontsize=11)
        ax.text(x0, y0 - 0.38, f"{r['grad']:g}", color="red", ha="center", fontsize=11)
    ax.set_xlim(-0.6, 3.4)
    ax.set_ylim(-0.7, 2.6)
    ax.axis("off")
    ax.set_title("f = (x + y) z: values (green), df/dnode (red)")
    ax2.plot(range(len(f_path)), f_path, marker="o")
    ax2.set_xlabel(f"SGD step (lr = {args.lr})")
    ax2.set_ylabel("f")
    ax2.grid(alpha=0.3)
    ax2.set_title("gradient descent on the graph lowers f")
    save_fig(fig, args.out / "computation_graph.png")

    claims = {"q": before["q"], "f": before["f"], "dfdx": _f(grads["x"]), "dfdy": _f(grads["y"]),
              "dfdz": _f(grads["z"]), "dfdq": _f(grads["q"]), "f_before": before["f"],
              "f_after_one_step": after["f"], "lr": args.lr,
              "xyz_after_one_step": [after["x"], after["y"], after["z"]],
              "f_after_all_steps": f_path[-1], "n_steps": n_steps}
    headline = (f"q = {claims['q']:g}, f = {claims['f']:g}; df/dx = {claims['dfdx']:g}, "
                f"df/dy = {claims['dfdy']:g}, df/dz = {claims['dfdz']:g}; one SGD step "
                f"(lr {args.lr}) lowers f from {before['f']:g} to {after['f']:.4f}")
    rows = [[r["node"], r["op"], r["inputs"] or "-", f"{r['value']:g}", f"{r['grad']:g}"]
            for r in trace]
    rows.append(["f after 1 SGD step", f"lr={args.lr}", "x,y,z", f"{after['f']:.4f}", "-"])
    return finish(NAME, args, headline=headline, claims=claims,
                  columns=["node", "op", "inputs", "value", "df/dnode"], rows=rows,
                  figures=["computation_graph.png"], t0=t0)


if __name__ == "__main__":
    main()
