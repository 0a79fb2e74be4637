"""A sweep folder's checkpoint: every started program's stacked train state with its epoch,
metric chunks and timings (``save_sweep_checkpoint`` / ``load_sweep_checkpoint``), and the
``sweep`` callback that writes it when due and on a signal (``chunk_saver``).
"""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jaxmlp.runs.checkpoint import load_checkpoint, save_checkpoint
from jaxmlp.runs.lifecycle import Interrupted

SWEEP_CHECKPOINT = "sweep_checkpoint.npz"


def save_sweep_checkpoint(out, snapshot: dict, config: dict) -> None:
    """Atomically save a sweep's progress: every started program's stacked state (host arrays),
    the epoch it reached, its metric chunks and timings (see ``jaxmlp.sweeps.sweep``)."""
    progs = [p for p in snapshot["programs"] if "state" in p]
    meta = [{"epoch": int(p["epoch"]), "compile_s": float(p["compile_s"]), "run_s": float(p["run_s"]),
             "n_leaves": len(jax.tree.leaves(p["state"])),
             "chunks": [{k: np.asarray(v).tolist() for k, v in c.items()} for c in p["chunks"]]}
            for p in progs]
    save_checkpoint(Path(out) / SWEEP_CHECKPOINT, [p["state"] for p in progs], config=config,
                    epoch=min((m["epoch"] for m in meta), default=0),
                    extra={"programs": meta, "packing": snapshot.get("packing")})


def load_sweep_checkpoint(out) -> tuple[dict, dict]:
    """``(resume, config)`` from a sweep folder's checkpoint (falls back to the previous one)."""
    leaves, meta = load_checkpoint(Path(out) / SWEEP_CHECKPOINT)
    programs, pos = [], 0
    for m in meta["extra"]["programs"]:
        chunks = [{k: np.asarray(v) for k, v in c.items()} for c in m["chunks"]]
        programs.append({"state": leaves[pos:pos + m["n_leaves"]], "epoch": m["epoch"], "chunks": chunks,
                         "compile_s": m["compile_s"], "run_s": m["run_s"]})
        pos += m["n_leaves"]
    # "packing": the plan the states were laid out by (absent before packing existed: padded)
    return {"programs": programs, "packing": meta["extra"].get("packing", "pad")}, meta["config"]


def chunk_saver(out: Path, setup: dict, every: int, write: bool, flag: dict):
    """``sweep``'s ``on_chunk``: checkpoint every ``every`` epochs of a program (and when a
    program starts), stop on a signal with a checkpoint."""
    last = {"key": None}   # (programs started, epoch) at the last checkpoint
    key_of = lambda snap: (len(snap["programs"]), snap["programs"][-1]["epoch"])

    def saving(snapshot) -> bool:
        key, prev = key_of(snapshot), last["key"]
        due = every and (prev is None or key[0] != prev[0] or key[1] - prev[1] >= every)
        return bool(write and (due or flag["stop"]))

    def on_chunk(snapshot):
        # without the state (a signal came after ``saving`` said no) stop at the next chunk
        have = "state" in snapshot["programs"][-1]
        if have and saving(snapshot):
            save_sweep_checkpoint(out, snapshot, setup)
            last["key"] = key_of(snapshot)
        if flag["stop"] and have:
            raise Interrupted(f"{flag['stop']} received; sweep checkpoint saved; resume "
                              f"with: jaxmlp sweep --resume {out}", run_dir=out)
    on_chunk.wants_state = saving  # the states are copied to the host only for a checkpoint
    return on_chunk
