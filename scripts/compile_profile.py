#!/usr/bin/env python
"""Where the training chunk's XLA:CPU compile goes (the default `jaxmlp train` job).

    python scripts/compile_profile.py --out docs/bench/compile_profile_<commit>.json  # ~1 min
    python scripts/compile_profile.py --rounds 1 --out /tmp/cp.json                  # a smoke test

The README's default job (digits 64-128-10 tanh, cross-entropy, SGD, batch 128, 50 epochs)
is fitted with ``jaxmlp.fit`` once (untimed: imports, data, initialisation, every program);
then the process forgets its training chunk and fits again under ``jax.profiler``, so the
trace holds one compile of the chunk alone. XLA's own trace events give its stages: the HLO
passes, the fusion kernels (XLA:CPU's emitters turn each into LLVM IR, spread over its codegen
threads: their sum is CPU time, not wall), the thunk emitter (the compile thread's wall while
the kernels are emitted) and LLVM's machine-code generation; the compiled program's text gives
its kernel counts. Three variants, each in fresh processes, interleaved for ``--rounds``: the
chunk at the full options (``CPU_COMPILER_OPTIONS``: what a long run compiles), compiled
quick (``fast_compile``: ``CPU_ONCE_OPTIONS``, -O0 without the fusion emitters: what ``train``
compiles for this short job, ``compiles_quick``), and, for scale,
the programs the e2e benchmark's plain JAX script compiles for the same job (its jitted step
at two batch shapes and its accuracy: no per-epoch evaluation or bookkeeping; JAX's default
options), compiled alone the same way (``plain_child``).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("JAXMLP_COMPILE_CACHE", "off")
ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"the chunk at the full options (a long run's)": "train",
            "the chunk compiled quick (train's default for this job)": "short",
            "the plain JAX script's 3 programs": "plain"}
PLAIN = ROOT / "jaxmlp" / "bench" / "e2e" / "peers" / "train_jax.py"
# trace event -> the stage it is reported as
STAGES = {"PjRtCpuClient::Compile": "xla_compile_s", "JitCompiler::Compile": "llvm_codegen_s",
          "ThunkEmitter::EmitEntryComputation": "emit_kernels_wall_s",
          "FusionCompiler::Compile": "fusion_emitter_cpu_s"}


def _trace_events(folder: str) -> dict:
    from jax._src.lib import _profile_data
    out, count = defaultdict(float), defaultdict(int)
    for f in glob.glob(f"{folder}/**/*.xplane.pb", recursive=True):
        for plane in _profile_data.ProfileData.from_file(f).planes:
            for line in plane.lines:
                for ev in line.events:
                    key = STAGES.get(ev.name, "hlo_passes_s" if ev.name.startswith("HLO passes")
                                     else None)
                    if key:
                        out[key] += ev.duration_ns / 1e9
                        count[key] += 1
    out["fusion_kernels_emitted"] = count["fusion_emitter_cpu_s"]
    return dict(out)


def _profiled(fn):
    """``fn()`` run once under ``jax.profiler``: its result, its wall seconds and the stages
    XLA's trace events give (``_trace_events``)."""
    import jax
    with tempfile.TemporaryDirectory() as tmp:
        jax.profiler.start_trace(tmp)
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
        jax.profiler.stop_trace()
        return out, wall, _trace_events(tmp)


def _kernel_counts(texts: list[str]) -> dict:
    """Fusion kernels in compiled programs' text: all, loop fusions, library calls."""
    kinds = [k for t in texts for k in re.findall(r"= \S+ fusion\(.*kind=(k\w+)", t)]
    return {"fusions": len(kinds), "loop_fusions": kinds.count("kLoop"),
            "library_calls": kinds.count("kCustom")}


def plain_child() -> dict:
    """The programs the plain JAX script (``PLAIN``, the e2e peer) compiles for the default
    job: its step at 128 rows and at the last batch's 105, and its accuracy on the 359 test
    rows, each compiled once untimed, then again (JAX's caches cleared) under the profiler."""
    import runpy

    import jax
    import numpy as np
    peer = runpy.run_path(str(PLAIN), run_name="compile_profile")
    f32 = lambda *shape: np.zeros(shape, np.float32)
    params = [(f32(64, 128), f32(128)), (f32(128, 10), f32(10))]
    calls = [(peer["step"], (params, f32(n, 64), np.zeros(n, np.int32))) for n in (128, 105)]
    calls.append((peer["accuracy"], (params, f32(359, 64), np.zeros(359, np.int32))))
    compile_all = lambda: [fn.lower(*args).compile() for fn, args in calls]
    compile_all()  # untimed: one-time costs of the process's first compiles
    jax.clear_caches()
    exes, wall, row = _profiled(compile_all)
    row.update({"fit_s": wall, **_kernel_counts([e.as_text() for e in exes])})
    return row


def child(short: bool) -> dict:
    import jax

    import jaxmlp
    from jaxmlp.config import DataConfig, ModelConfig, TrainConfig
    from jaxmlp.data import load_splits
    from jaxmlp.timing import COMPILE_EVENTS  # JAX's tracing, lowering, compile events
    from jaxmlp.training import compile as comp
    stages = defaultdict(float)
    jax.monitoring.register_event_duration_secs_listener(
        lambda ev, secs, **kw: stages.__setitem__(ev, stages[ev] + secs))
    data = load_splits(DataConfig())  # the default: digits, 70/10/20
    fit = lambda: jaxmlp.fit(data, model=ModelConfig(hidden=(128,)),
                             train=TrainConfig(lr=0.1, batch_size=128, epochs=50),
                             fast_compile=short)
    fit()  # untimed: everything once
    comp._EXECUTABLES.cache_clear()
    comp.jit_chunk.cache_clear()
    stages.clear()
    (_, h), wall, row = _profiled(fit)
    row.update({"fit_s": wall, "train_s": h["final"]["train_s"],
                "trace_s": stages.get(COMPILE_EVENTS[0], 0.0),
                "lower_s": stages.get(COMPILE_EVENTS[1], 0.0),
                **_kernel_counts([comp._EXECUTABLES.values()[0].as_text()]),
                "test_accuracy": h["final"]["test_accuracy"]})
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--child", choices=sorted(set(VARIANTS.values())), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child is not None:
        print(json.dumps(plain_child() if a.child == "plain" else child(a.child == "short")))
        return 0
    if not a.out:
        p.error("--out is required")
    sys.path.insert(0, str(ROOT))
    from jaxmlp.bench.machine import machine_info
    rows = []
    for r in range(a.rounds):
        for name, kind in VARIANTS.items():
            res = subprocess.run([sys.executable, __file__, "--child", kind],
                                 capture_output=True, text=True, check=True)
            rows.append({"variant": name, "round": r, **json.loads(res.stdout.splitlines()[-1])})
            print(f"round {r + 1}/{a.rounds} {name}: XLA compile "
                  f"{rows[-1]['xla_compile_s']:.2f} s, {rows[-1]['fusions']} fusions", flush=True)
    meta = {"argv": list(argv if argv is not None else sys.argv[1:]), "rounds": a.rounds,
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine_info(),
            "doc": __doc__.strip()}
    from jaxmlp.bench.raw import write_report
    write_report(a.out, {"meta": meta, "rows": rows})
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
