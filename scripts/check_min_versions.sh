#!/usr/bin/env bash
# The oldest dependency versions pyproject.toml allows, installed exactly into a scratch venv,
# then a subset of the suite run against them (about 5 minutes on 2 cores; needs PyPI).
#   bash scripts/check_min_versions.sh [VENV_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-/tmp/jaxmlp-min-versions}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "jax==0.8.0" "jaxlib==0.8.0" "ml_dtypes==0.5.0" "optax==0.2.5" "filelock==3.8.0" \
  "numpy==2.0.2" "scikit-learn==1.4.2" "matplotlib==3.8.4" "tqdm==4.60.0" pytest hypothesis
"$VENV/bin/pip" install -q --no-deps -e "$ROOT"
cd "$ROOT"
"$VENV/bin/python" -c "import jax, optax, numpy; print('jax', jax.__version__, 'optax', optax.__version__, 'numpy', numpy.__version__)"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/test_api.py tests/test_train.py \
  tests/test_nn.py tests/test_compile_cache.py tests/test_sweep.py tests/test_cli.py \
  tests/test_data.py tests/test_bundled.py tests/test_plotter.py tests/test_losses.py \
  tests/test_parallel.py tests/test_backprop.py tests/test_reliability.py
