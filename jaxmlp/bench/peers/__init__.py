"""The in-process benchmark's child processes: one framework per process.

Usage (by ``jaxmlp.bench.runner``, not by hand): ``python -P -m jaxmlp.bench.peers TASK.json
RESULT.json`` (``__main__`` picks the runner).

``TASK.json`` names a runner (``jaxmlp``, ``pytorch``, ``sklearn``, ``gemm_peak``,
``pex_jax``, ``pex_torch``, ``sweep_jaxmlp``, ``sweep_jaxmlp_cores``, ``sweep_pytorch``,
``sweep_sklearn``) and, for
training runners, a ``.npz`` written by the parent with the training data (``X``, ``y``), the
shared initial weights (``W0, b0, W1, b1, ...`` with ``W`` shaped ``(fan_in, fan_out)``) and
the data order (``order``: ``(epochs, n_train)`` int32, row ``e`` is jaxmlp's permutation for
epoch ``e``). Each runner imports only its own framework, times only the training loop and
writes timings plus the final weights back (``RESULT.json`` and ``RESULT.npz``) so the parent
can evaluate every framework's result with the same numpy code.

Modules: ``common`` (task files in, weights out, timed calls); ``jaxmlp_runs``, ``torch_runs``,
``sklearn_runs`` (one model trained: W1, W2, W4); ``micro`` (GEMM peak, per-example gradients:
G); ``sweep_runs`` (W3: 64 models).
"""
