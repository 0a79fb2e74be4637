"""Command line: parse flags -> build a config -> call the library -> print. Thin on purpose.

The flags are ``jaxmlp.cli_flags`` (generated from ``jaxmlp.config``); the folder-writing
drivers are ``jaxmlp.runs``. Bad input prints one line ``error: ...`` on stderr and exits with
status 2. ``jaxmlp --help`` imports neither JAX nor matplotlib.
"""
from __future__ import annotations

import time

_START = time.perf_counter()  # timing.json's clock starts with this module

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from jaxmlp.cli_flags import (SWEEP_AXIS_FIELDS, add_gradcheck_flags,  # noqa: E402
                              add_predict_flags, add_sweep_flags, add_train_flags,
                              add_watch_flags,
                              config_from_args, grid_from_args)
from jaxmlp.errors import JaxmlpError  # noqa: E402

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


# --------------------------------------------------------------------------- commands
def start_processes(a) -> int | None:
    """Join a multi-process job if asked (flags or JAX_* variables); the device count to use."""
    from jaxmlp.parallel import DistributedConfig, initialize
    dist = DistributedConfig.from_env(a.coordinator, a.num_processes, a.process_id,
                                      peer_timeout_s=int(a.peer_timeout),
                                      auto=a.distributed == "auto", local_devices=a.local_devices)
    initialize(dist)
    if a.devices == "auto" or (a.devices is None and dist.enabled):
        import jax
        return jax.device_count()
    return a.devices


def _start_jax(a) -> None:
    """Import JAX and start its backend (the floor of any JAX program), then count compiles.
    A multi-process job starts its backend later, after ``jax.distributed.initialize``."""
    with a.clock.phase("import"):
        import jax

        from jaxmlp.parallel import DistributedConfig
        try:
            joining = DistributedConfig.from_env(a.coordinator, a.num_processes, a.process_id,
                                                 auto=a.distributed == "auto").enabled
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


def _show_progress(a) -> bool:
    return not a.quiet and sys.stderr.isatty()


#: Flags naming a path or names: an empty value would silently mean "not given".
_NON_EMPTY = ("out", "resume", "grid", "run", "heatmap", "coordinator", "compile_cache", "target")


def _reject_empty(a) -> None:
    from jaxmlp.errors import ConfigError
    for dest in _NON_EMPTY:
        v = getattr(a, dest, None)
        if isinstance(v, str) and v.strip() == "":
            raise ConfigError(f"--{dest.replace('_', '-')} needs a value, got {v!r}")


def _reject_with_resume(a, allowed: set, why: str) -> None:
    """A resumed run takes its config from its folder: other flags would be silently ignored."""
    from jaxmlp.errors import ConfigError
    ignored = sorted(getattr(a, "given_flags", set()) - allowed - {"--resume"})
    if ignored:
        raise ConfigError(f"{', '.join(ignored)} cannot be combined with --resume ({why})")


def _out_folder(out: str | None, command: str) -> Path:
    """``--out``, checked before any work (default: a new ``runs/<command>-<time>``): its
    nearest existing ancestor must be a writable folder."""
    from jaxmlp.errors import ConfigError
    from jaxmlp.runs.lifecycle import new_run_dir
    if out is None:
        return new_run_dir(command)
    path = Path(out)
    above = next((p for p in path.parents if p.exists()), Path("."))
    if not above.is_dir():
        raise ConfigError(f"--out {out}: {above} is not a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: folder {above} is not writable")
    return path


def _fmt_final(final: dict) -> str:
    keys = [k for k in ("test_accuracy", "test_loss", "test_mse", "val_loss") if k in final]
    parts = [f"{k}={final[k]:.4f}" for k in keys]
    parts.append(f"epochs={final['epochs_run']}")
    parts.append(f"compile={final['compile_s']:.2f}s")
    parts.append(f"train={final['train_s']:.2f}s")
    parts.append(f"samples/s={final['samples_per_s']:.3g}")
    return " ".join(parts)


def _check_tensorboard(a) -> None:
    """``--tensorboard`` without its extra: one error line before any work."""
    if a.tensorboard:
        from jaxmlp.runs.tensorboard import check_available
        check_available()


def cmd_train(a) -> int:
    from jaxmlp.runs.folder import load_run_config, train_run
    if a.resume:
        _reject_with_resume(a, {"--epochs", "--quiet", "--devices", "--coordinator",
                                "--num-processes", "--process-id", "--peer-timeout",
                                "--compile-cache", "--no-compile-cache", "--fast-compile",
                                "--no-fast-compile", "--distributed", "--local-devices",
                                "--log-every", "--tensorboard"},
                            "the run's config.json is used; only --epochs and --quiet apply")
        cfg, out = load_run_config(a.resume), Path(a.resume)
        epochs = a.epochs if a.epochs_given else None
    else:
        cfg, out, epochs = config_from_args(a), _out_folder(a.out, "train"), None
    _check_tensorboard(a)
    devices = start_processes(a)
    run, _, result = train_run(cfg, out, resume=bool(a.resume), progress=_show_progress(a),
                               epochs=epochs, devices=devices, peer_timeout_s=a.peer_timeout,
                               clock=a.clock, plotter=a.plotter, fast_compile=a.fast_compile,
                               log_every={None: "long", "off": None}.get(a.log_every, a.log_every),
                               tensorboard=a.tensorboard)
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


def cmd_watch(a) -> int:
    from jaxmlp.runs.watch import watch
    watch(a.run_dir, follow=a.follow, interval=a.interval, out=lambda t: print(t, flush=True))
    return 0


def cmd_predict(a) -> int:
    from jaxmlp.runs.predict import score_run
    print(json.dumps(score_run(a.run, a.dataset, a.target)))
    return 0


def _sweep_setup(a) -> dict:
    """The sweep from flags and a grid file (flags win), validated before any compile. The
    base config takes the first value of each axis given as a flag."""
    from jaxmlp.runs.sweep_folder import read_grid_file, sweep_setup
    flags = grid_from_args(a)
    grid = read_grid_file(a.grid) if a.grid else {}
    seeds = grid.pop("seeds", a.seeds)
    grid.update(flags)
    cfg = config_from_args(a, **{k: v[0] for k, v in flags.items() if k in SWEEP_AXIS_FIELDS})
    return sweep_setup(cfg, grid, seeds, max_pad_ratio=a.max_pad_ratio, heatmap=a.heatmap,
                       data_devices=a.data_devices, fast_compile=a.fast_compile,
                       packing=a.packing)


def _sweep_line(result, out: Path) -> str:
    from jaxmlp.runs.sweep_folder import GRID_AXES, best_model, headline_metric
    info, metric = result.info, headline_metric(result)
    best, chosen_by = best_model(result)
    row = result.rows[best]
    return (f"{len(result.rows)} models, strategy={info['strategy']}, "
            f"programs={len(info['programs'])}, flop efficiency={info['flop_efficiency']:.0%}, "
            f"compile={info['compile_s']:.2f}s run={info['run_s']:.2f}s; best by {chosen_by}: "
            f"{metric}={row[metric]:.4f} ({', '.join(f'{k}={row[k]}' for k in GRID_AXES)}); "
            f"diverged={sum(r['diverged'] for r in result.rows)} -> {out}")


def cmd_sweep(a) -> int:
    from jaxmlp.runs.sweep_folder import load_sweep_setup, sweep_run
    if a.resume:
        _reject_with_resume(a, {"--quiet", "--devices", "--compile-cache", "--no-compile-cache",
                                "--tensorboard"}, "the sweep's config.json is used")
        setup, out = load_sweep_setup(a.resume), Path(a.resume)
    else:
        setup, out = _sweep_setup(a), _out_folder(a.out, "sweep")
    _check_tensorboard(a)
    devices = start_processes(a)
    result = sweep_run(setup, out, resume=bool(a.resume), devices=devices,
                       progress=_show_progress(a), clock=a.clock, plotter=a.plotter,
                       tensorboard=a.tensorboard)
    print(_sweep_line(result, out), flush=True)
    a.clock.trained = result.info["run_s"]
    _finish_files(a, out)
    return 0


def cmd_gradcheck(a) -> int:
    from jaxmlp.runs.gradient_check import check_gradients
    cfg = config_from_args(a)
    r = check_gradients(cfg, n_fd=a.n_fd)
    print(f"gradcheck: {cfg.data.dataset} sizes={r['sizes']} activation={cfg.model.activation} "
          f"loss={r['loss']} T={cfg.train.temperature} batch={r['n']} float64 tol={a.tol:g}")
    print(f"{'layer':>5} {'param':>5} {'shape':>10} {'abs(man-auto)':>14} {'rel(man-auto)':>14} "
          f"{'abs(man-fd)':>12} {'rel(man-fd)':>12}")
    for row in r["rows"]:
        shape = "x".join(map(str, row["shape"]))
        print(f"{row['layer']:>5} {row['param']:>5} {shape:>10} "
              f"{row['max_abs_manual_vs_autodiff']:>14.3e} {row['max_rel_manual_vs_autodiff']:>14.3e} "
              f"{row['max_abs_manual_vs_fd']:>12.3e} {row['max_rel_manual_vs_fd']:>12.3e}")
    ok = r["worst"] <= a.tol
    print(f"{'PASS' if ok else 'FAIL'}: worst error {r['worst']:.3e} {'<=' if ok else '>'} "
          f"tolerance {a.tol:g}")
    return 0 if ok else 1


# --------------------------------------------------------------------------- the parser
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jaxmlp", description="JIT-compiled MLP trainer on JAX + Optax.")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    t = sub.add_parser("train", help="train one MLP and write a run folder")
    add_train_flags(t)
    t.add_argument("--resume", default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from its checkpoint")
    t.set_defaults(func=cmd_train)
    pr = sub.add_parser("predict", help="score a data set with a trained run's checkpoint")
    add_predict_flags(pr)
    pr.set_defaults(func=cmd_predict)
    sw = sub.add_parser("sweep", help="train a grid of models in as few compiled programs as possible")
    add_sweep_flags(sw)
    sw.set_defaults(func=cmd_sweep)
    # `jaxmlp bench ...` hands its arguments to jaxmlp.bench.inproc's own parser (see _main)
    sub.add_parser("bench", help="time jaxmlp against PyTorch eager and scikit-learn "
                   "(see BENCHMARKS.md; `jaxmlp bench --help`)", add_help=False)
    w = sub.add_parser("watch", help="a running or finished run's progress and curves, from "
                                     "its folder")
    add_watch_flags(w)
    w.set_defaults(func=cmd_watch)
    gc = sub.add_parser("gradcheck", help="hand-derived backward vs jax.grad vs finite differences")
    add_gradcheck_flags(gc)
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
        _reject_empty(a)
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
        print("error: out of memory (data set or model too large for this machine)",
              file=sys.stderr)
    except OSError as e:  # e.g. an unwritable --out folder, disk full
        if os.environ.get("JAXMLP_DEBUG"):
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}".splitlines()[0], file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - last resort: never a traceback for a user
        from jaxmlp.runs.lifecycle import Interrupted  # imported here: `jaxmlp --help` must not import jax
        if isinstance(e, Interrupted):
            print(f"interrupted: {e}", file=sys.stderr)
            return EXIT_INTERRUPTED
        if os.environ.get("JAXMLP_DEBUG"):
            raise
        if "RESOURCE_EXHAUSTED" in str(e):  # XLA could not allocate: sizes too large for it
            print("error: out of memory (data set or model too large for the device): "
                  + str(e).splitlines()[0].split("RESOURCE_EXHAUSTED:")[-1].strip(),
                  file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1
    finally:  # a failed command leaves no figure worker behind
        if getattr(a, "plotter", None) is not None:
            a.plotter.close()
    return EXIT_BAD_INPUT


if __name__ == "__main__":
    run()
