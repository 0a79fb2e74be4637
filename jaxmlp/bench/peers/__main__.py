"""``python -P -m jaxmlp.bench.peers TASK.json RESULT.json``: run the task's runner and write
its result (an exception becomes ``ok: False`` with the error, for the parent to print)."""
from __future__ import annotations

import json
import os
import sys

from jaxmlp.bench.peers.jaxmlp_runs import run_jaxmlp
from jaxmlp.bench.peers.micro import run_gemm_peak, run_pex_jax, run_pex_torch
from jaxmlp.bench.peers.sklearn_runs import run_sklearn
from jaxmlp.bench.peers.sweep_runs import (run_sweep_jaxmlp, run_sweep_jaxmlp_cores,
                                           run_sweep_peer, run_sweep_peer_procs)
from jaxmlp.bench.peers.torch_runs import run_pytorch

RUNNERS = {
    "jaxmlp": run_jaxmlp,
    "pytorch": run_pytorch,
    "sklearn": run_sklearn,
    "gemm_peak": run_gemm_peak,
    "pex_jax": run_pex_jax,
    "pex_torch": run_pex_torch,
    "sweep_jaxmlp": run_sweep_jaxmlp,
    "sweep_jaxmlp_cores": run_sweep_jaxmlp_cores,
    "sweep_pytorch": lambda t, o: run_sweep_peer(t, o, "pytorch"),
    "sweep_sklearn": lambda t, o: run_sweep_peer(t, o, "sklearn"),
    "sweep_pytorch_procs": lambda t, o: run_sweep_peer_procs(t, o, "pytorch"),
    "sweep_sklearn_procs": lambda t, o: run_sweep_peer_procs(t, o, "sklearn"),
}


def main(argv=None):
    """Run ``TASK.json``'s runner, write ``RESULT.json`` (weights, if any, beside it as ``.npz``)."""
    argv = sys.argv[1:] if argv is None else argv
    task_path, result_path = argv
    with open(task_path) as f:
        task = json.load(f)
    out_npz = result_path.replace(".json", ".npz")
    try:
        res = RUNNERS[task["runner"]](task, out_npz)
        res["ok"] = True
        if os.path.exists(out_npz):
            res["params"] = out_npz
    except Exception as e:  # reported, not hidden: the parent prints it
        import traceback
        res = {"ok": False, "error": f"{type(e).__name__}: {e}",
               "traceback": traceback.format_exc()[-4000:]}
    with open(result_path, "w") as f:
        json.dump(res, f, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
