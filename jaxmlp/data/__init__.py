"""Data sets, validation and train/val/test splits (numpy only, never JAX).

Three sources, all offline:

* built-in names in :data:`DATASETS` (``catalog``): scikit-learn's bundled sets ("digits",
  "iris", "wine", "breast_cancer", "diabetes", read by ``bundled``) and generated ones
  ("xor", "and", "or", "x2"/"square", "spirals", "car_sensor", "teacher": ``synthetic``);
* user files (``files``): a ``.csv`` with a header row, or a ``.npz`` with arrays ``X`` and ``y``;
* arrays passed directly, checked by :func:`validate_arrays` (``validate``).

``load`` turns a ``DataConfig`` into a :class:`Dataset` (``dataset``) and ``splits`` into
:class:`Splits`. Everything is deterministic: generators take explicit seeds (0 by default)
and splits use ``DataConfig.split_seed``. Arrays are numpy: ``X`` is ``(n, d)`` float32; ``y``
is ``(n,)`` int32 class ids in ``[0, n_classes)`` for classification (``classes`` keeps the
original label value of each id, e.g. a CSV's 10, 20, 30) or ``(n, k)`` float32 targets for
regression.

The names below are loaded on first use (PEP 562), as in ``jaxmlp/__init__.py``, so that
``jaxmlp.data.catalog`` (the data set names, for help texts) imports without numpy.
"""
from __future__ import annotations

from jaxmlp.lazy import lazy_exports

# public name -> the module of this package defining it
_EXPORTS = {
    **dict.fromkeys(["TASKS", "Dataset", "Splits"], "dataset"),
    **dict.fromkeys(["MAX_CLASSES", "ConstantFeatureWarning", "validate_arrays"], "validate"),
    **dict.fromkeys(["CAR_SENSOR_ANGLES", "car_sensor_targets", "make_car_sensor", "make_logic",
                     "make_spirals", "make_teacher", "make_x2"], "synthetic"),
    **dict.fromkeys(["CSV_MAX_AUTO_CLASSES", "load_csv", "load_npz", "save_npz"], "files"),
    **dict.fromkeys(["DATASETS"], "catalog"),
    **dict.fromkeys(["TINY_N", "UnsplitDataWarning", "make_splits"], "splits"),
    **dict.fromkeys(["load_dataset", "load_splits"], "load"),
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
