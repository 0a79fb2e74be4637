"""Where a program's inputs live: a run's splits moved to the device once (sharded over a
data-parallel mesh), and host arrays placed as program inputs (replicated, or split over a
sweep's model axis).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxmlp.parallel import MODELS, put_global, replicated, rows_sharding
from jaxmlp.training.spec import Spec


def device_data(splits, spec: Spec) -> dict:
    """Move the splits to the device once (class labels int32, whatever the loss; regression /
    probability targets float32).

    Data-parallel runs replicate every split on every device (``_sharded_data``).
    """
    if spec.mesh is not None:
        return _sharded_data(splits, spec)
    xdt, ydt = input_dtype(spec), _label_dtype(splits, spec)
    data = {"X_train": jnp.asarray(splits.X_train, xdt),
            "y_train": jnp.asarray(splits.y_train, ydt)}
    if spec.has_val:
        data["X_val"] = jnp.asarray(splits.X_val, xdt)
        data["y_val"] = jnp.asarray(splits.y_val, ydt)
    if spec.has_test:
        data["X_test"] = jnp.asarray(splits.X_test, xdt)
        data["y_test"] = jnp.asarray(splits.y_test, ydt)
    return data


def input_dtype(spec: Spec):
    """The inputs' dtype on the device: the compute dtype (a bfloat16 run's first matmul reads
    them in bfloat16 anyway: half the memory and bandwidth), else float32."""
    return jnp.dtype(spec.compute_dtype)


def _label_dtype(splits, spec: Spec):
    """int32 class indices, or float32 regression / probability targets."""
    labels = spec.classification and np.issubdtype(np.asarray(splits.y_train).dtype, np.integer)
    return np.int32 if labels else np.float32


def _sharded_data(splits, spec: Spec) -> dict:
    """Data-parallel runs: the training rows replicated on every device (batches are random
    rows: with the rows sharded, gathering a batch moved rows between devices every step, or
    the whole set every epoch; replicated, each device slices its part of the batch locally
    and the gradient all-reduce is the step's only collective), validation/test replicated."""
    xdt, ydt = input_dtype(spec), _label_dtype(splits, spec)
    rep = replicated(spec.mesh)
    data = {"X_train": put_global(np.asarray(splits.X_train, xdt), rep),
            "y_train": put_global(np.asarray(splits.y_train, ydt), rep)}
    for split, flag in (("val", spec.has_val), ("test", spec.has_test)):
        if flag:
            data[f"X_{split}"] = put_global(np.asarray(getattr(splits, f"X_{split}"), xdt), rep)
            data[f"y_{split}"] = put_global(np.asarray(getattr(splits, f"y_{split}"), ydt), rep)
    return data


def host_input(mesh, x):
    """A host array every process holds identically, as a (replicated) program input."""
    if mesh is None:
        return x
    return put_global(np.asarray(x), replicated(mesh))


def models_input(mesh, x):
    """A host array with a leading model axis, split over the mesh's "models" axis."""
    if mesh is None:
        return x
    return put_global(x, rows_sharding(mesh, MODELS))
