"""Command line: argparse -> config -> library call -> files. Thin on purpose.

Bad input prints one line ``error: ...`` on stderr and exits with status 2.
"""
from __future__ import annotations

import time

_START = time.perf_counter()  # timing.json's clock starts with this module

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from jaxmlp.errors import JaxmlpError  # noqa: E402
from jaxmlp.registry import activation_names, loss_names  # noqa: E402

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """``warnings`` output as one ``warning: ...`` line (no source line, no file name)."""
    text = " ".join(str(message).split())
    print(f"warning: {text}", file=sys.stderr if file is None else file)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``error: ...``) and exit code 2; no abbreviated flags
    (``--ep`` for ``--epochs``), so which flags were given is unambiguous."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

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


def _devices(text: str):
    if text == "auto":
        return "auto"
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a device count or 'auto', got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"device count must be >= 1, got {n}")
    return n


def start_processes(a) -> int | None:
    """Join a multi-process job if asked (flags or JAX_* variables); the device count to use."""
    from jaxmlp.parallel import DistributedConfig, initialize
    dist = DistributedConfig.from_env(a.coordinator, a.num_processes, a.process_id,
                                      peer_timeout_s=int(a.peer_timeout))
    initialize(dist)
    if a.devices == "auto" or (a.devices is None and dist.enabled):
        import jax
        return jax.device_count()
    return a.devices


def add_train_flags(p: argparse.ArgumentParser, grid: bool = False) -> None:
    """Flags shared by ``train`` and ``sweep`` (with ``grid``, --lr, --temperature, --l2 and
    --momentum take comma lists: the sweep's axes)."""
    num = _float_list if grid else float
    many = " (comma list: a sweep axis)" if grid else ""
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
    m.add_argument("--activation", default="tanh", choices=activation_names())
    m.add_argument("--init", default="auto", choices=["auto", "lecun", "glorot", "he"])
    m.add_argument("--parametrization", default="sp", choices=["sp", "mup"],
                   help="standard, or maximal update parametrisation (muP) relative to --base-width")
    m.add_argument("--base-width", type=int, default=64, help="muP base width (default 64)")
    t = p.add_argument_group("training")
    t.add_argument("--loss", default="auto", choices=loss_names())
    t.add_argument("--temperature", type=num, default=None if grid else 1.0,
                   help="softmax temperature T of the CE loss" + many)
    t.add_argument("--optimizer", default="sgd",
                   help="sgd, momentum, nesterov, or any optax optimizer name (adam, adamw, ...)")
    t.add_argument("--lr", type=num, default=None if grid else 0.1, help="learning rate" + many)
    t.add_argument("--momentum", type=num, default=None if grid else 0.0, help="momentum" + many)
    t.add_argument("--nesterov", action="store_true")
    t.add_argument("--l2", type=num, default=None if grid else 0.0,
                   help="L2 penalty strength on weights" + many)
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
    d = p.add_argument_group("devices and processes")
    d.add_argument("--devices", type=_devices, default=None,
                   help="N or 'auto' (all): " + ("shard the models over N devices" if grid else
                                                 "data-parallel over N devices; --batch-size is the "
                                                 "global batch, split evenly over them"))
    d.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                   help="jax.distributed coordinator (or JAX_COORDINATOR_ADDRESS)")
    d.add_argument("--num-processes", type=int, default=None, help="(or JAX_NUM_PROCESSES)")
    d.add_argument("--process-id", type=int, default=None, help="(or JAX_PROCESS_ID)")
    d.add_argument("--peer-timeout", type=float, default=60.0,
                   help="multi-process: seconds without progress before giving up on peers")
    o = p.add_argument_group("output")
    o.add_argument("--out", default=None, help="run folder (default: runs/<command>-<time>)")
    o.add_argument("--quiet", action="store_true", help="no progress bar")
    o.add_argument("--compile-cache", default=None, metavar="DIR",
                   help="keep compiled programs in DIR for later runs (JAX's persistent cache; "
                        "default: $JAXMLP_COMPILE_CACHE, else ~/.cache/jaxmlp/xla)")
    o.add_argument("--no-compile-cache", action="store_true",
                   help="compile everything afresh and keep nothing (or JAXMLP_COMPILE_CACHE=off)")


def config_from_args(a: argparse.Namespace):
    from jaxmlp.config import DataConfig, ModelConfig, RunConfig, TrainConfig
    data = DataConfig(dataset=a.dataset, target=a.target, task=a.task, val_fraction=a.val_fraction,
                      test_fraction=a.test_fraction, split_seed=a.split_seed,
                      n_samples=a.n_samples, noise=a.noise)
    model = ModelConfig(hidden=tuple(a.hidden), activation=a.activation, init=a.init,
                        parametrization=a.parametrization, base_width=a.base_width)
    def base(name, default):  # sweep axes are lists: the base config takes the first value
        v = getattr(a, name)
        return default if v is None else (v[0] if isinstance(v, tuple) else v)
    train = TrainConfig(loss=a.loss, temperature=base("temperature", 1.0), optimizer=a.optimizer,
                        lr=base("lr", 0.1), momentum=base("momentum", 0.0), nesterov=a.nesterov,
                        l2=base("l2", 0.0), schedule=a.schedule,
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


def _reject_with_resume(a, allowed: set, why: str) -> None:
    """A resumed run takes its config from its folder: other flags would be silently ignored."""
    from jaxmlp.errors import ConfigError
    ignored = sorted(getattr(a, "given_flags", set()) - allowed - {"--resume"})
    if ignored:
        raise ConfigError(f"{', '.join(ignored)} cannot be combined with --resume ({why})")


def _start_jax(a) -> None:
    """Import JAX and start its backend (the floor of any JAX program), then count compiles.
    A multi-process job starts its backend later, after ``jax.distributed.initialize``."""
    with a.clock.phase("import"):
        import jax

        from jaxmlp.parallel import DistributedConfig
        try:
            joining = DistributedConfig.from_env(a.coordinator, a.num_processes,
                                                 a.process_id).enabled
        except JaxmlpError:
            joining = True  # reported by start_processes, after the config is checked
        if not joining:
            jax.devices()
    a.clock.listen()


def _finish_files(a, out: Path) -> None:
    """After the result is printed: collect the figures, then write ``timing.json``."""
    from jaxmlp.parallel import is_writer
    with a.clock.phase("plot"):
        a.plotter.finish()
    if is_writer() and out.is_dir():
        a.clock.write(out)


def cmd_train(a) -> int:
    from jaxmlp.runs.folder import load_run_config, train_run
    if a.resume:
        _reject_with_resume(a, {"--epochs", "--quiet", "--devices", "--coordinator",
                                "--num-processes", "--process-id", "--peer-timeout",
                                "--compile-cache", "--no-compile-cache"},
                            "the run's config.json is used; only --epochs and --quiet apply")
        cfg = load_run_config(a.resume)
        out = Path(a.resume)
        epochs = a.epochs if a.epochs_given else None
    else:
        cfg = config_from_args(a)
        out = Path(a.out) if a.out else _default_out("train")
        if not a.out:  # two runs started within the same second get distinct folders
            base, i = out, 1
            while out.exists():
                out, i = base.with_name(f"{base.name}-{i}"), i + 1
        epochs = None
    devices = start_processes(a)
    run, state, result = train_run(cfg, out, resume=bool(a.resume), progress=_show_progress(a),
                                   epochs=epochs, devices=devices, peer_timeout_s=a.peer_timeout,
                                   clock=a.clock, plotter=a.plotter)
    final = result["final"]
    print(f"{cfg.data.dataset}: {_fmt_final(final)} -> {out}", flush=True)
    a.clock.trained = final["train_s"]
    _finish_files(a, out)
    if final["diverged"]:
        from jaxmlp.training import divergence_message
        ck = final.get("checkpoint_epoch")
        kept = (f"last good checkpoint: {out / 'checkpoint.npz'} (epoch {ck})" if ck is not None
                else "no finite checkpoint was written")
        print(f"error: {divergence_message(final, run.spec)} (e.g. --lr {cfg.train.lr / 10:g}); "
              f"{kept}", file=sys.stderr)
        return EXIT_DIVERGED
    return 0


def cmd_predict(a) -> int:
    import numpy as np

    from jaxmlp.config import DataConfig
    from jaxmlp.data import load_dataset
    from jaxmlp.training import evaluate
    from jaxmlp.runs.folder import params_from_run
    cfg, params, norm = params_from_run(a.run)
    dcfg = DataConfig(dataset=a.dataset or cfg.data.dataset, target=a.target or cfg.data.target,
                      task=norm["task"])
    ds = load_dataset(dcfg)
    if ds.X.shape[1] != len(norm["x_mean"]):
        from jaxmlp.errors import DataError
        raise DataError(f"data has {ds.X.shape[1]} features, the model expects {len(norm['x_mean'])}")
    X = (ds.X - np.asarray(norm["x_mean"], np.float32)) / np.asarray(norm["x_std"], np.float32)
    y = ds.y
    if norm["task"] == "regression":
        y = (y - np.asarray(norm["y_mean"], np.float32)) / np.asarray(norm["y_std"], np.float32)
    elif norm["n_classes"] is not None and int(y.max()) >= norm["n_classes"]:
        from jaxmlp.errors import DataError
        raise DataError(f"labels out of range: max label {int(y.max())}, model has {norm['n_classes']} classes")
    loss = "ce" if norm["task"] == "classification" else "mse"
    res = evaluate({"activation": cfg.model.activation, "loss": loss,
                    "temperature": cfg.train.temperature}, params, X, y)
    res = {k: float(v) for k, v in res.items()}
    res["n"] = int(len(X))
    print(json.dumps(res))
    return 0


def _parse_grid_file(path: str) -> dict:
    from jaxmlp.errors import ConfigError
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"grid file {path} not found")
    try:
        if p.suffix == ".toml":
            import tomllib
            grid = tomllib.loads(p.read_text())
        else:
            grid = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"grid file {path} is not valid {p.suffix.lstrip('.') or 'JSON'}: "
                          f"{str(e).splitlines()[0]}") from None
    if not isinstance(grid, dict):
        raise ConfigError(f"grid file {path} must hold a mapping of axis -> list of values")
    return grid


def _sweep_setup(a) -> dict:
    """The sweep's full description from flags / a grid file, validated before any compile."""
    from jaxmlp.errors import ConfigError
    from jaxmlp.sweeps import expand_grid
    cfg = config_from_args(a)
    grid: dict = {}
    if a.grid:
        grid.update(_parse_grid_file(a.grid))
    seeds = grid.pop("seeds", a.seeds)
    for axis in ("width", "lr", "temperature", "l2", "momentum"):
        v = getattr(a, axis)
        if v is not None:
            grid[axis] = list(v)
    for axis, v in grid.items():
        if not isinstance(v, list):
            raise ConfigError(f"grid axis {axis} must be a list of values")
    if "width" in grid:
        grid["width"] = [int(w) if float(w).is_integer() else w for w in grid["width"]]
    if not isinstance(seeds, (int, list)) or isinstance(seeds, bool) or (isinstance(seeds, int) and seeds < 1):
        raise ConfigError(f"seeds must be a positive integer or a list, got {seeds!r}")
    if a.heatmap and len(a.heatmap.split(",")) != 2:
        raise ConfigError("--heatmap takes two axis names, e.g. width,lr")
    expand_grid(grid, seeds, cfg.train, cfg.model)  # validate every model's values
    if a.data_devices < 1:
        raise ConfigError(f"--data-devices must be >= 1, got {a.data_devices}")
    return {"run": cfg.to_dict(), "grid": grid, "seeds": seeds, "max_pad_ratio": a.max_pad_ratio,
            "heatmap": a.heatmap, "data_devices": a.data_devices, "fast_compile": a.fast_compile,
            "packing": a.packing}


def cmd_sweep(a) -> int:
    import numpy as np

    from jaxmlp.runs.checkpoint import atomic_write_text, previous_path
    from jaxmlp.config import RunConfig
    from jaxmlp.data import load_splits
    from jaxmlp.errors import CheckpointError, ConfigError
    from jaxmlp.parallel import is_writer
    from jaxmlp.runs.folder import Interrupted, check_fresh_run_dir, stop_on_signals
    from jaxmlp.sweeps import GRID_AXES, expand_grid, sweep
    from jaxmlp.runs.sweep_folder import (SWEEP_CHECKPOINT, headline_metric, load_sweep_checkpoint,
                              save_sweep_checkpoint, write_sweep_folder)
    resume = None
    if a.resume:
        out = Path(a.resume)
        _reject_with_resume(a, {"--quiet", "--devices", "--compile-cache", "--no-compile-cache"},
                            "the sweep's config.json is used")
        try:
            setup = json.loads((out / "config.json").read_text())
            cfg = RunConfig.from_dict(setup["run"])
        except (OSError, ValueError, KeyError):
            raise CheckpointError(f"{out} is not a sweep folder (no valid config.json)") from None
        if (out / SWEEP_CHECKPOINT).exists() or previous_path(out / SWEEP_CHECKPOINT).exists():
            resume, _ = load_sweep_checkpoint(out)
    else:
        setup = _sweep_setup(a)
        cfg = RunConfig.from_dict(setup["run"])
        out = Path(a.out) if a.out else _default_out("sweep")
        check_fresh_run_dir(out)
        if (out / SWEEP_CHECKPOINT).exists():
            raise ConfigError(f"output folder {out} already holds a sweep; continue it with --resume {out}")
    grid, seeds = setup["grid"], setup["seeds"]
    n_models = len(expand_grid(grid, seeds, cfg.train, cfg.model))
    devices = start_processes(a)
    from jaxmlp.sweeps.program import model_mesh
    model_mesh(devices, setup.get("data_devices", 1))  # the device layout, checked up front
    with a.clock.phase("data"):
        splits = load_splits(cfg.data)
    write = is_writer()
    if write and not a.resume:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "config.json", json.dumps(setup, indent=2) + "\n")
    bar = None
    if _show_progress(a):
        from tqdm import tqdm
        bar = tqdm(total=cfg.train.epochs, unit="epoch", file=sys.stderr, dynamic_ncols=True)

    def progress(epochs_done, program, n_programs):
        if bar is not None:
            bar.set_description(f"program {program + 1}/{n_programs} ({n_models} models)")
            bar.n = epochs_done
            bar.refresh()
    every = cfg.train.checkpoint_every
    last = {"epoch": None}
    try:
        with stop_on_signals() as flag:
            def on_chunk(snapshot):
                cur = snapshot["programs"][-1]
                key = (len(snapshot["programs"]), cur["epoch"])
                due = every and (last["epoch"] is None or key[0] != last["epoch"][0]
                                 or cur["epoch"] - last["epoch"][1] >= every)
                if write and (due or flag["stop"]):
                    save_sweep_checkpoint(out, snapshot, setup)
                    last["epoch"] = key
                if flag["stop"]:
                    raise Interrupted(f"{flag['stop']} received; sweep checkpoint saved; resume "
                                      f"with: jaxmlp sweep --resume {out}", run_dir=out)
            with a.clock.phase("train"):
                result = sweep(splits, model=cfg.model, train=cfg.train, grid=grid, seeds=seeds,
                               max_pad_ratio=setup["max_pad_ratio"], n_devices=devices,
                               data_devices=setup.get("data_devices", 1),
                               fast_compile=setup.get("fast_compile"),
                               packing=setup.get("packing", "pad"),
                               progress=progress, on_chunk=on_chunk, resume=resume)
    finally:
        if bar is not None:
            bar.close()
    if write:
        with a.clock.phase("write"):
            save_sweep_checkpoint(out, result.info["snapshot"], setup)
            heat = tuple(setup["heatmap"].split(",")) if setup.get("heatmap") else None
            write_sweep_folder(out, result, {**setup, "strategy": result.info["strategy"]}, heat,
                               plotter=a.plotter)
    metric = headline_metric(result)
    vals = result.column(metric)
    best = int(np.nanargmax(vals) if "accuracy" in metric else np.nanargmin(vals))
    info = result.info
    print(f"{len(result.rows)} models, strategy={info['strategy']}, programs={len(info['programs'])}, "
          f"flop efficiency={info['flop_efficiency']:.0%}, compile={info['compile_s']:.2f}s run={info['run_s']:.2f}s; best {metric}="
          f"{vals[best]:.4f} ({', '.join(f'{k}={result.rows[best][k]}' for k in GRID_AXES)}); "
          f"diverged={sum(r['diverged'] for r in result.rows)} -> {out}", flush=True)
    a.clock.trained = info["run_s"]
    _finish_files(a, out)
    return 0


def cmd_gradcheck(a) -> int:
    import jax
    with jax.enable_x64(True):  # float64 for meaningful tolerances, restored afterwards
        return _gradcheck(a)


def _gradcheck(a) -> int:
    import jax
    import jax.numpy as jnp

    from jaxmlp.config import DataConfig
    from jaxmlp.data import load_splits
    from jaxmlp.gradcheck import gradcheck
    from jaxmlp.training import init_key, init_model, model_sizes, resolve_loss
    from jaxmlp.config import ModelConfig
    splits = load_splits(DataConfig(dataset=a.dataset, target=a.target, n_samples=a.n_samples))
    loss = resolve_loss(a.loss, splits.task)
    model = ModelConfig(hidden=tuple(a.hidden), activation=a.activation)
    n = min(a.batch_size, len(splits.X_train))
    if n < 1:
        from jaxmlp.errors import ConfigError
        raise ConfigError(f"batch size must be >= 1, got {a.batch_size}")
    x = jnp.asarray(splits.X_train[:n], jnp.float64)
    y = jnp.asarray(splits.y_train[:n], jnp.int32 if loss == "ce" else jnp.float64)
    params = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64),
                          init_model(init_key(a.seed), model, model_sizes(model, splits.n_features, splits.n_outputs)))
    rows = gradcheck(params, x, y, activation=a.activation, loss=loss, temperature=a.temperature,
                     n_fd=a.n_fd, key=jax.random.PRNGKey(a.seed))
    print(f"gradcheck: {a.dataset} sizes={model_sizes(model, splits.n_features, splits.n_outputs)} "
          f"activation={a.activation} loss={loss} T={a.temperature} batch={n} float64 tol={a.tol:g}")
    print(f"{'layer':>5} {'param':>5} {'shape':>10} {'abs(man-auto)':>14} {'rel(man-auto)':>14} "
          f"{'abs(man-fd)':>12} {'rel(man-fd)':>12}")
    worst = 0.0
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        print(f"{r['layer']:>5} {r['param']:>5} {shape:>10} {r['max_abs_manual_vs_autodiff']:>14.3e} "
              f"{r['max_rel_manual_vs_autodiff']:>14.3e} {r['max_abs_manual_vs_fd']:>12.3e} "
              f"{r['max_rel_manual_vs_fd']:>12.3e}")
        worst = max(worst, r["max_rel_manual_vs_autodiff"], r["max_abs_manual_vs_fd"])
    ok = worst <= a.tol
    print(f"{'PASS' if ok else 'FAIL'}: worst error {worst:.3e} {'<=' if ok else '>'} tolerance {a.tol:g}")
    return 0 if ok else 1


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

    from jaxmlp.config import PACKING_NAMES
    sw = sub.add_parser("sweep", help="train a grid of models in as few compiled programs as possible")
    add_train_flags(sw, grid=True)
    g = sw.add_argument_group("grid")
    g.add_argument("--width", type=_int_list, default=None, help="hidden widths, e.g. 16,32,64,128")
    g.add_argument("--seeds", type=int, default=1, help="number of seeds per configuration")
    g.add_argument("--grid", default=None, help="JSON/TOML grid file (axis -> list, 'seeds')")
    g.add_argument("--max-pad-ratio", type=float, default=8.0,
                   help="widths within this ratio share one padded program (1 = one per width)")
    g.add_argument("--packing", default="auto", choices=list(PACKING_NAMES),
                   help="mixed widths: pad every model to the widest (one program per "
                        "--max-pad-ratio bucket), pack each width at its own size into one "
                        "program, or auto: the one estimated faster")
    g.add_argument("--fast-compile", action=argparse.BooleanOptionalAction, default=None,
                   help="compile for a short run (less compile, slower steps on CPU); default: "
                        "decided per program from its estimated work")
    g.add_argument("--heatmap", default=None, help="two axes for the heatmap, e.g. width,lr")
    g.add_argument("--data-devices", type=int, default=1,
                   help="split each model's batch over this many devices: a 2-D (models x data) "
                        "mesh for large sweeps of large models")
    g.add_argument("--resume", default=None, metavar="SWEEP_DIR",
                   help="continue an interrupted sweep from its checkpoint")
    sw.set_defaults(func=cmd_sweep)

    # `jaxmlp bench ...` hands its arguments to jaxmlp.bench.inproc's own parser (see _main)
    sub.add_parser("bench", help="time jaxmlp against PyTorch eager and scikit-learn "
                   "(see BENCHMARKS.md; `jaxmlp bench --help`)", add_help=False)

    gc = sub.add_parser("gradcheck", help="hand-derived backward vs jax.grad vs finite differences")
    gc.add_argument("--dataset", default="digits")
    gc.add_argument("--target", default=None)
    gc.add_argument("--n-samples", type=int, default=None)
    gc.add_argument("--hidden", type=_int_list, default=(32,))
    gc.add_argument("--activation", default="tanh", choices=activation_names())
    gc.add_argument("--loss", default="auto", choices=loss_names())
    gc.add_argument("--temperature", type=float, default=1.0)
    gc.add_argument("--batch-size", type=int, default=16)
    gc.add_argument("--seed", type=int, default=0)
    gc.add_argument("--n-fd", type=int, default=12, help="finite-difference entries per array")
    gc.add_argument("--tol", type=float, default=1e-6, help="max relative/abs error allowed")
    gc.set_defaults(func=cmd_gradcheck)
    return p


def main(argv=None) -> int:
    import warnings
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _main(argv)


def run() -> None:
    """The ``jaxmlp`` console script: ``main``, then exit. Every file a command writes is
    complete (atomic, fsync'ed) before it returns, so a single-process command skips the
    interpreter's teardown (~0.07-0.1 s of JAX/XLA shutdown on a 2-core CPU), unless
    ``JAXMLP_FULL_EXIT`` is set (e.g. for coverage tools that save at exit). Multi-process
    jobs exit normally: ``jax.distributed`` shuts down at exit."""
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    dist = "jax" in sys.modules and sys.modules["jax"].process_count() > 1
    if not dist and not os.environ.get("JAXMLP_FULL_EXIT"):
        os._exit(rc)
    sys.exit(rc)


def use_all_cpu_cores(argv) -> None:
    """Split this CPU into one XLA host device per core for a sweep, so its model axis is
    sharded over the cores (about as fast as the streams a one-device sweep runs, 1.2-1.3x
    faster than one device without them: BENCHMARKS.md, scaling). Only when
    the user set no device count, the backend has not started, and the run is single-process;
    GPU/TPU backends ignore the flag."""
    flags = os.environ.get("XLA_FLAGS", "")
    if ("xla_force_host_platform_device_count" in flags or os.environ.get("JAX_PLATFORMS", "cpu") != "cpu"
            or any(a.startswith("--coordinator") for a in argv) or "JAX_COORDINATOR_ADDRESS" in os.environ):
        return
    if "jax" in sys.modules:  # (not imported yet: no backend can have started)
        from jax._src import xla_bridge
        if xla_bridge.backends_are_initialized():
            return
    n = os.cpu_count() or 1
    if n > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()


def _main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    a = None
    try:
        if argv[:1] == ["sweep"]:
            use_all_cpu_cores(argv)
        if argv[:1] == ["bench"]:
            from jaxmlp.bench.inproc import main as bench_main
            return bench_main(argv[1:])
        a = parser.parse_args(argv)
        if a.command is None:
            parser.print_help()
            return EXIT_BAD_INPUT
        if a.command in ("train", "sweep"):
            a.given_flags = {x.split("=", 1)[0] for x in argv if x.startswith("--")}
            a.epochs_given = "--epochs" in a.given_flags
            from jaxmlp.runs.plotter import Plotter
            from jaxmlp.timing import Clock
            a.clock = Clock(_START)
            a.plotter = Plotter()  # first: it imports matplotlib while this process loads JAX
            _start_jax(a)
        from jaxmlp.training.compile_cache import enable_for_command
        enable_for_command(getattr(a, "compile_cache", None), getattr(a, "no_compile_cache", False))
        return a.func(a)
    except (_UsageError, JaxmlpError) as e:
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
    except FileNotFoundError as e:
        print(f"error: {e.filename or e}: not found", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: interrupted (no checkpoint written for the current chunk)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("error: out of memory (data set or model too large)", file=sys.stderr)
        return 1
    except OSError as e:  # e.g. an unwritable --out folder, disk full
        if os.environ.get("JAXMLP_DEBUG"):
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}".splitlines()[0], file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - last resort: never a traceback for a user
        from jaxmlp.runs.folder import Interrupted  # imported here: `jaxmlp --help` must not import jax
        if isinstance(e, Interrupted):
            print(f"interrupted: {e}", file=sys.stderr)
            return EXIT_INTERRUPTED
        if os.environ.get("JAXMLP_DEBUG"):
            raise
        print(f"error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1
    finally:  # a failed command leaves no figure worker behind
        if getattr(a, "plotter", None) is not None:
            a.plotter.close()
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    run()
