#!/usr/bin/env python
"""What drawing an initialisation's random bits on the host costs against drawing them in
the initialisation program: the measurement behind ``jaxmlp.host_draws.HOST_DRAW_MAX``.

    python scripts/host_draw_cost.py --out docs/bench/host_draws_<commit>.json   # ~2 min
    python scripts/host_draw_cost.py --rounds 1 --out /tmp/hd.json                 # a smoke test

Per case (layer sizes and distinct seeds, as a run or a sweep's widest shape draws them) and
round, in a fresh process: the host path = NumPy's bits (``weight_bits``, per seed) + compiling
and running a program that turns them into normals; the in-program path = compiling and running
``standard_normals`` over the seeds' keys (both programs with the initialisation's XLA options,
``CPU_ONCE_OPTIONS``; JAX's compile cache off). The normals of the two paths are checked equal.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "default train: 64-128-10": ([64, 128, 10], 1),
    "W3 sweep: 64-128-10 x 4 seeds": ([64, 128, 10], 4),
    "W2: 784-512-512-10": ([784, 512, 512, 10], 1),
    "784-1024-1024-10": ([784, 1024, 1024, 10], 1),
    "1024-2048-2048-10": ([1024, 2048, 2048, 10], 1),
}


def child(sizes: list, n_seeds: int) -> dict:
    import jax
    import numpy as np

    from jaxmlp import host_draws
    from jaxmlp.nn import standard_normals
    from jaxmlp.training import init_key
    from jaxmlp.training.compile import fast_jit
    jax.jit(lambda x: x + 1).lower(np.float32(0)).compile()  # the backend up, untimed
    seeds = np.arange(n_seeds, dtype=np.uint32)
    t0 = time.perf_counter()
    bits = [np.stack(layer) for layer in zip(*[host_draws.weight_bits(int(s), sizes)
                                                for s in seeds])]
    t1 = time.perf_counter()
    exe = fast_jit(lambda b: [host_draws.normals_from_bits(x) for x in b], once=True).lower(
        bits).compile()
    t2 = time.perf_counter()
    host = jax.block_until_ready(exe(bits))
    t3 = time.perf_counter()
    draw = lambda s: jax.vmap(lambda k: standard_normals(k, sizes))(jax.vmap(init_key)(s))
    exe = fast_jit(draw, once=True).lower(seeds).compile()
    t4 = time.perf_counter()
    prog = jax.block_until_ready(exe(seeds))
    t5 = time.perf_counter()
    return {"host_bits_s": t1 - t0, "host_compile_s": t2 - t1, "host_run_s": t3 - t2,
            "program_compile_s": t4 - t3, "program_run_s": t5 - t4,
            "same": all(bool(np.array_equal(np.asarray(a), np.asarray(b)))
                        for a, b in zip(host, prog))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        sizes, n = CASES[a.child]
        print(json.dumps(child(sizes, n)))
        return 0
    if not a.out:
        p.error("--out is required")
    sys.path.insert(0, str(ROOT))
    from jaxmlp.bench.machine import machine_info
    from jaxmlp.host_draws import HOST_DRAW_MAX
    rows = []
    for r in range(a.rounds):
        for name, (sizes, n) in CASES.items():
            out = subprocess.run([sys.executable, __file__, "--child", name], check=True,
                                 capture_output=True, text=True).stdout.splitlines()[-1]
            weights = n * sum(x * y for x, y in zip(sizes[:-1], sizes[1:]))
            rows.append({"case": name, "round": r, "weights": weights, **json.loads(out)})
            print(f"round {r + 1}/{a.rounds} {name}: host {rows[-1]['host_bits_s']:.3f} s "
                  f"+ compile {rows[-1]['host_compile_s']:.3f} s; in-program compile "
                  f"{rows[-1]['program_compile_s']:.3f} s", flush=True)
    meta = {"argv": list(argv if argv is not None else sys.argv[1:]), "rounds": a.rounds,
            "HOST_DRAW_MAX": HOST_DRAW_MAX, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "machine": machine_info(), "doc": __doc__.strip()}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
