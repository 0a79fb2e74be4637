#!/usr/bin/env bash
# The first device session on a GPU machine (the `device` tool's `run`): no network there, so
# the machine's own python3 with its JAX (CUDA), optax, pytest and hypothesis runs this
# checkout directly. Under 5 minutes; the JSON report comes back from $OUT.
#   bash scripts/accelerator_check.sh            # on the GPU machine, from the repo root
set -uo pipefail
OUT="${OUT:-/tmp/accelerator_check}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 JAXMLP_COMPILE_CACHE=off
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/nvidia_smi.txt"
python3 -c "import jax, optax, numpy; print('jax', jax.__version__, jax.devices())" 2>&1 | tee "$OUT/env.txt"
timeout 290 python3 scripts/accelerator_check.py --out "$OUT/accelerator_check.json" "$@" 2>&1 \
  | tee "$OUT/accelerator_check.log"
