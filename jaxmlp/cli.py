"""Command line: argparse -> config -> library call -> files. Thin on purpose.

Bad input prints one line ``error: ...`` on stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .errors import JaxmlpError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: ...``) and exit code 2."""

    def error(self, message):  # noqa: D401 - argparse API
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _int_list(text: str) -> tuple[int, ...]:
    text = text.strip()
    if text == "":
        raise argparse.ArgumentTypeError("empty hidden sizes; give widths like 128,64 (or 'none' "
                                         "for a model without hidden layers)")
    if text.lower() == "none":
        return ()
    try:
        vals = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    return vals


def _float_list(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_train_flags(p: argparse.ArgumentParser) -> None:
    """Flags shared by ``train`` and ``sweep``."""
    d = p.add_argument_group("data")
    d.add_argument("--dataset", default="digits",
                   help="built-in name (digits, iris, wine, breast_cancer, diabetes, xor, and, or, "
                        "x2, spirals, car_sensor, teacher) or a .csv/.npz file (default: digits)")
    d.add_argument("--target", default=None, help="CSV target column (default: the last)")
    d.add_argument("--task", default="auto", choices=["auto", "classification", "regression"])
    d.add_argument("--n-samples", type=int, default=None, help="size of a synthetic data set")
    d.add_argument("--noise", type=float, default=None, help="noise of a synthetic data set")
    d.add_argument("--val-fraction", type=float, default=0.1)
    d.add_argument("--test-fraction", type=float, default=0.2)
    d.add_argument("--split-seed", type=int, default=0)
    m = p.add_argument_group("model")
    m.add_argument("--hidden", type=_int_list, default=(128,),
                   help="hidden widths, comma-separated (default: 128; 'none' for no hidden layer)")
    m.add_argument("--activation", default="tanh", choices=["tanh", "relu", "sigmoid", "identity"])
    m.add_argument("--init", default="auto", choices=["auto", "lecun", "glorot", "he"])
    t = p.add_argument_group("training")
    t.add_argument("--loss", default="auto", choices=["auto", "ce", "mse"])
    t.add_argument("--temperature", type=float, default=1.0, help="softmax temperature T of the CE loss")
    t.add_argument("--optimizer", default="sgd",
                   help="sgd, momentum, nesterov, or any optax optimizer name (adam, adamw, ...)")
    t.add_argument("--lr", type=float, default=0.1, help="learning rate")
    t.add_argument("--momentum", type=float, default=0.0)
    t.add_argument("--nesterov", action="store_true")
    t.add_argument("--l2", type=float, default=0.0, help="L2 penalty strength on weights")
    t.add_argument("--schedule", default="constant",
                   choices=["constant", "cosine", "step", "warmup_cosine"])
    t.add_argument("--warmup-epochs", type=int, default=0)
    t.add_argument("--step-every", type=int, default=30, help="epochs between lr drops (step schedule)")
    t.add_argument("--step-gamma", type=float, default=0.1)
    t.add_argument("--batch-size", type=int, default=128, help="mini-batch size (1 = per example)")
    t.add_argument("--epochs", type=int, default=50)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--patience", type=int, default=0, help="early-stopping patience (0 = off)")
    t.add_argument("--grad", default="autodiff", choices=["autodiff", "manual"],
                   help="jax.grad or the hand-derived backward")
    t.add_argument("--drop-last", action="store_true", help="drop the last partial batch")
    t.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16"])
    t.add_argument("--checkpoint-every", type=int, default=10, help="epochs between checkpoints")
    o = p.add_argument_group("output")
    o.add_argument("--out", default=None, help="run folder (default: runs/<command>-<time>)")
    o.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(a: argparse.Namespace):
    from .config import DataConfig, ModelConfig, RunConfig, TrainConfig
    data = DataConfig(dataset=a.dataset, target=a.target, task=a.task, val_fraction=a.val_fraction,
                      test_fraction=a.test_fraction, split_seed=a.split_seed,
                      n_samples=a.n_samples, noise=a.noise)
    model = ModelConfig(hidden=tuple(a.hidden), activation=a.activation, init=a.init)
    train = TrainConfig(loss=a.loss, temperature=a.temperature, optimizer=a.optimizer, lr=a.lr,
                        momentum=a.momentum, nesterov=a.nesterov, l2=a.l2, schedule=a.schedule,
                        warmup_epochs=a.warmup_epochs, step_every=a.step_every,
                        step_gamma=a.step_gamma, batch_size=a.batch_size, epochs=a.epochs,
                        seed=a.seed, patience=a.patience, grad=a.grad, drop_last=a.drop_last,
                        compute_dtype=a.compute_dtype, checkpoint_every=a.checkpoint_every)
    return RunConfig(data=data, model=model, train=train)


def _default_out(command: str) -> Path:
    return Path("runs") / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"


def _show_progress(a) -> bool:
    return not a.quiet and sys.stderr.isatty()


def _fmt_final(final: dict) -> str:
    keys = [k for k in ("test_accuracy", "test_loss", "test_mse", "val_loss") if k in final]
    parts = [f"{k}={final[k]:.4f}" for k in keys]
    parts.append(f"epochs={final['epochs_run']}")
    parts.append(f"compile={final['compile_s']:.2f}s")
    parts.append(f"train={final['train_s']:.2f}s")
    parts.append(f"samples/s={final['samples_per_s']:.3g}")
    return " ".join(parts)


def cmd_train(a) -> int:
    from .runs import load_run_config, train_run
    if a.resume:
        cfg = load_run_config(a.resume)
        out = Path(a.resume)
        epochs = a.epochs if a.epochs_given else None
    else:
        cfg = config_from_args(a)
        out = Path(a.out) if a.out else _default_out("train")
        epochs = None
    run, state, result = train_run(cfg, out, resume=bool(a.resume), progress=_show_progress(a),
                                   epochs=epochs)
    final = result["final"]
    if final["diverged"]:
        from .train import divergence_message
        print(f"warning: {divergence_message(final, run.spec)}", file=sys.stderr)
    print(f"{cfg.data.dataset}: {_fmt_final(final)} -> {out}")
    return 1 if final["diverged"] else 0


def cmd_predict(a) -> int:
    import numpy as np

    from .config import DataConfig
    from .data import load_dataset
    from .train import evaluate
    from .runs import params_from_run
    cfg, params, norm = params_from_run(a.run)
    dcfg = DataConfig(dataset=a.dataset or cfg.data.dataset, target=a.target or cfg.data.target,
                      task=norm["task"])
    ds = load_dataset(dcfg)
    X = (ds.X - np.asarray(norm["x_mean"], np.float32)) / np.asarray(norm["x_std"], np.float32)
    if X.shape[1] != len(norm["x_mean"]):
        from .errors import DataError
        raise DataError(f"data has {ds.X.shape[1]} features, the model expects {len(norm['x_mean'])}")
    y = ds.y
    if norm["task"] == "regression":
        y = (y - np.asarray(norm["y_mean"], np.float32)) / np.asarray(norm["y_std"], np.float32)
    elif norm["n_classes"] is not None and int(y.max()) >= norm["n_classes"]:
        from .errors import DataError
        raise DataError(f"labels out of range: max label {int(y.max())}, model has {norm['n_classes']} classes")
    loss = "ce" if norm["task"] == "classification" else "mse"
    res = evaluate({"activation": cfg.model.activation, "loss": loss,
                    "temperature": cfg.train.temperature}, params, X, y)
    res = {k: float(v) for k, v in res.items()}
    res["n"] = int(len(X))
    print(json.dumps(res))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jaxmlp", description="JIT-compiled MLP trainer on JAX + Optax.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    t = sub.add_parser("train", help="train one MLP and write a run folder")
    add_train_flags(t)
    t.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from its checkpoint")
    t.set_defaults(func=cmd_train)
    pr = sub.add_parser("predict", help="score a data set with a trained run's checkpoint")
    pr.add_argument("--run", required=True, metavar="RUN_DIR")
    pr.add_argument("--dataset", default=None, help="data set (default: the run's)")
    pr.add_argument("--target", default=None)
    pr.set_defaults(func=cmd_predict)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        a = parser.parse_args(argv)
        if a.command is None:
            parser.print_help()
            return EXIT_BAD_INPUT
        if a.command == "train":
            a.epochs_given = any(x == "--epochs" or x.startswith("--epochs=") for x in argv)
        return a.func(a)
    except _UsageError as e:
        print(f"error: {e}", file=sys.stderr)
    except JaxmlpError as e:
        print(f"error: {e}", file=sys.stderr)
    except FileNotFoundError as e:
        print(f"error: {e.filename or e}: not found", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - last resort: never a traceback for a user
        from .runs import Interrupted
        if isinstance(e, Interrupted):
            print(f"interrupted: {e}", file=sys.stderr)
            return 130
        if os.environ.get("JAXMLP_DEBUG"):
            raise
        print(f"error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
