#!/usr/bin/env python
"""How much host time the device waits for between compiled chunks, with the next chunk's data
orders drawn ahead (while the current chunk runs; ``jaxmlp.training.OrdersAhead``) and drawn
inline (just before each chunk, as before), in one process, rounds alternating.

    python scripts/order_overlap.py [--quick] [--rounds 3] [--out overlap.json]

The run: car-sensor 8-64-2 tanh, MSE, 1,000,000 rows (val/test 10% each), batch 4096, 40
epochs (a few chunks of ~2,048 steps). Per chunk after the first, the *host gap* is the time
from the moment a chunk's metrics reach the host to the moment the next chunk's orders are on
hand, i.e. host work the device waits for (on an accelerator it idles; on this CPU the order
draw also competes with XLA's threads, so train seconds say less). Both ways must give the
same final loss, bit for bit.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout


def measure(n_rows: int, epochs: int, rounds: int, chunk_epochs: int = 0) -> dict:
    import jaxmlp as jm
    import jaxmlp.training.fitting as fitting
    from jaxmlp.config import ModelConfig, TrainConfig
    from jaxmlp.data import make_car_sensor
    from jaxmlp.training.program import OrdersAhead, chunk_orders

    ds = make_car_sensor(n_rows)
    kw = dict(model=ModelConfig(hidden=(64,)),
              train=TrainConfig(epochs=epochs, batch_size=4096, lr=0.05,
                                checkpoint_every=chunk_epochs))  # fit: caps the chunk only
    gaps, draws, fetched = [], [], [None]
    fetch, take, ahead = fitting.to_host, OrdersAhead.take, OrdersAhead.ahead

    def timed_fetch(x):
        out = fetch(x)
        fetched[0] = time.perf_counter()
        return out

    def timed_take(self, ep):
        out = take(self, ep)
        if fetched[0] is not None:
            gaps.append(time.perf_counter() - fetched[0])
        return out

    def timed_draw(spec, seed, ep, end):
        t = time.perf_counter()
        out = chunk_orders(spec, seed, ep, end)
        draws.append(time.perf_counter() - t)
        return out
    fitting.to_host, OrdersAhead.take, fitting.chunk_orders = timed_fetch, timed_take, timed_draw
    jm.fit((ds.X, ds.y), **kw)  # compile, untimed
    rows = []
    for r in range(rounds):
        for way in ("inline", "ahead"):
            OrdersAhead.ahead = ahead if way == "ahead" else (lambda self, ep: None)
            gaps.clear(), draws.clear()
            fetched[0] = None
            _, h = jm.fit((ds.X, ds.y), **kw)
            f = h["final"]
            rows.append({"round": r, "way": way, "train_s": f["train_s"],
                         "host_gaps_s": list(gaps),
                         "draw_s": list(draws), "train_loss": float(h["train_loss"][-1])})
            print(f"round {r} {way:6s}: train {f['train_s']:.3f} s, host gap per chunk "
                  f"{statistics.median(gaps) * 1e3:.2f} ms (median of {len(gaps)}), "
                  f"order draw {statistics.median(draws) * 1e3:.1f} ms per chunk", flush=True)
    OrdersAhead.ahead = ahead
    return {"rows": rows, "n_rows": n_rows, "epochs": epochs, "batch_size": 4096,
            "chunks": len(draws)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="20,000 rows, 8 epochs in 2-epoch chunks, 1 round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None, help="write the raw results (and the machine) as JSON")
    a = ap.parse_args(argv)
    rep = measure(20_000, 8, 1, 2) if a.quick else measure(1_000_000, 40, a.rounds)
    losses = {r["train_loss"] for r in rep["rows"]}
    rep["same_loss"] = len(losses) == 1
    print("final losses " + ("identical" if rep["same_loss"] else f"DIFFER: {sorted(losses)}"))
    if a.out:
        from jaxmlp.bench.machine import machine_info
        rep["meta"] = {"argv": list(argv if argv is not None else sys.argv[1:]),
                       "machine": machine_info(), "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        from jaxmlp.bench.raw import write_report
        write_report(a.out, rep)
        print(f"wrote {a.out}")
    return 0 if rep["same_loss"] else 1


if __name__ == "__main__":
    sys.exit(main())
