"""User data files: a numeric ``.csv`` with a header row, or an ``.npz`` with ``X`` and ``y``.

Readers check as they go and fail with a :class:`~jaxmlp.errors.DataError` that names the
file, line and column; the arrays then pass :func:`~jaxmlp.data.validate.validate_arrays`.
"""
from __future__ import annotations

import csv
import os
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from jaxmlp.data.dataset import TASKS, Dataset
from jaxmlp.data.validate import validate_arrays
from jaxmlp.errors import ConfigError, DataError

#: CSV targets with at most this many distinct integer values are classification under "auto".
CSV_MAX_AUTO_CLASSES = 20


def _dataset(X, y, task, n_classes, name, feature_names=None, classes=None,
             min_classes: int = 2) -> Dataset:
    """Validated arrays as a Dataset (``n_classes=None``: ``max(label) + 1``)."""
    X, y = validate_arrays(X, y, task, n_classes, name, min_classes=min_classes)
    if task == "classification" and n_classes is None:
        n_classes = int(y.max()) + 1
    return Dataset(X=X, y=y, task=task, n_classes=n_classes if task == "classification" else None,
                   name=name, feature_names=tuple(feature_names) if feature_names else None,
                   classes=tuple(classes) if classes is not None else None)


def _check_file(path) -> Path:
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file not found: {p}")
    if p.is_dir():
        raise DataError(f"data path is a directory, not a file: {p}")
    if not os.access(p, os.R_OK):
        raise DataError(f"data file is not readable (permission denied): {p}")
    return p


def _check_task(task: str) -> None:
    if task not in ("auto",) + TASKS:
        raise ConfigError(f"task must be auto, classification or regression, got {task!r}")


#: A CSV number: decimal digits with an optional sign, point and exponent, or nan/inf (which
#: the finiteness check then names). Python's ``float()`` also takes ``1_000`` and non-ASCII
#: digits; a CSV reader does not, so neither does this.
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)",
                     re.IGNORECASE | re.ASCII)


def _parse_float(cell: str) -> float:
    text = cell.strip()
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"not a number: {cell!r}")
    return float(text)


def load_csv(path, *, target: str | None = None, task: str = "auto",
             min_classes: int = 2) -> Dataset:
    """Load a numeric CSV file with a header row.

    Args:
        path: File path.
        target: Name of the target column (default: the last column); the other columns are
            the features.
        task: ``"auto"`` (classification if every target value is an integer and there are at
            most 20 distinct values, else regression), ``"classification"`` or ``"regression"``.
        min_classes: Classification: how many distinct labels must be present (2 to train;
            1 for a file only scored, as by ``jaxmlp predict``).

    Returns:
        Dataset named after the file stem. Classification labels are the sorted distinct target
        values mapped to ``0..K-1``, the values kept in ``Dataset.classes``; regression y is
        ``(n, 1)``. A cell is a number as a CSV reader reads it: ``1_000`` or non-ASCII digits
        are non-numeric.

    Raises:
        DataError: missing/unreadable file, no header or no data rows, a row with the wrong
            number of fields (with its line number), a non-numeric cell (row and column), an
            unknown target column, non-finite values, non-integral classification targets.
    """
    _check_task(task)
    p = _check_file(path)
    header, rows, lines = _read_csv_records(p)
    _check_header(p, header, rows)
    t = _target_index(p, header, target)
    data = _parse_cells(p, header, rows, lines)
    return _csv_dataset(p, header, data, t, task, min_classes)


def _read_csv_records(p: Path):
    """``(header, rows, line numbers)``; blank lines skipped."""
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header, rows, lines = None, [], []
            for rec in reader:
                if not rec or all(c.strip() == "" for c in rec) and len(rec) <= 1:
                    continue  # blank line
                if header is None:
                    header = [c.strip() for c in rec]
                    continue
                rows.append(rec)
                lines.append(reader.line_num)
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not a UTF-8 text CSV file ({e.reason} at byte {e.start})") from None
    except csv.Error as e:
        raise DataError(f"{p}: malformed CSV: {e}") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read file: {e}") from None
    return header, rows, lines


def _check_header(p: Path, header, rows) -> None:
    """A header of at least two distinct, not all numeric, names and at least one data row."""
    if header is None:
        raise DataError(f"{p}: empty CSV file (a header row is required)")
    m = len(header)
    if m < 2:
        raise DataError(f"{p}: need at least 2 columns (features and a target), header has {m}")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise DataError(f"{p}: duplicate column name(s) in header: {', '.join(map(repr, dup))}")
    numeric_header = True
    for h in header:
        try:
            _parse_float(h)
        except ValueError:
            numeric_header = False
            break
    if numeric_header:
        raise DataError(f"{p}: the first row {header!r} looks numeric; a header row with column "
                        "names is required")
    if not rows:
        raise DataError(f"{p}: CSV has a header but no data rows")


def _target_index(p: Path, header, target: str | None) -> int:
    """The target column: ``target`` by name, or the last column."""
    if target is None:
        return len(header) - 1
    if target in header:
        return header.index(target)
    raise DataError(f"{p}: target column {target!r} not found; available columns: "
                    f"{', '.join(header)}")


def _parse_cells(p: Path, header, rows, lines) -> np.ndarray:
    """Every cell as a number, ``(n, m)`` float64, each finite in float32."""
    m = len(header)
    data = np.empty((len(rows), m), dtype=np.float64)
    for i, (rec, line) in enumerate(zip(rows, lines)):
        if len(rec) != m:
            raise DataError(f"{p}: line {line} has {len(rec)} field(s), expected {m} "
                            "(ragged or truncated row)")
        for j, cell in enumerate(rec):
            try:
                data[i, j] = _parse_float(cell)
            except ValueError:
                shown = cell if len(cell) <= 40 else cell[:40] + "..."
                raise DataError(f"{p}: non-numeric value {shown!r} in data row {i + 1} "
                                f"(line {line}), column {header[j]!r}") from None
    with np.errstate(over="ignore"):
        bad = ~np.isfinite(data.astype(np.float32))
    if bad.any():
        i, j = (int(v) for v in np.argwhere(bad)[0])
        raise DataError(f"{p}: {int(bad.sum())} non-finite value(s) (NaN/inf, or too large for "
                        f"float32); first in data row {i + 1} (line {lines[i]}), "
                        f"column {header[j]!r}")
    return data


def _csv_dataset(p: Path, header, data: np.ndarray, t: int, task: str,
                 min_classes: int = 2) -> Dataset:
    """Column ``t`` is the target, the rest the features; ``task="auto"`` decided here."""
    m = len(header)
    feat_idx = [j for j in range(m) if j != t]
    X, yv = data[:, feat_idx], data[:, t]
    feature_names = tuple(header[j] for j in feat_idx)
    name = p.stem
    integral = bool(np.all(yv == np.floor(yv)))
    if task == "auto":
        task = ("classification" if integral and len(np.unique(yv)) <= CSV_MAX_AUTO_CLASSES
                else "regression")
    if task == "classification":
        if not integral:
            i = int(np.argmax(yv != np.floor(yv)))
            raise DataError(f"{name}: classification target column {header[t]!r} must hold "
                            f"integers; data row {i + 1} has {yv[i]!r}")
        classes, y = np.unique(yv, return_inverse=True)
        return _dataset(X, y.astype(np.int32), task, len(classes), name, feature_names,
                        classes=[int(c) for c in classes], min_classes=min_classes)
    return _dataset(X, yv[:, None], task, None, name, feature_names)


def load_npz(path, *, task: str = "auto", min_classes: int = 2) -> Dataset:
    """Load arrays ``X`` ``(n, d)`` and ``y`` ``(n,)`` or ``(n, k)`` from an ``.npz`` file.

    The rule for ``task="auto"``: integer (or bool) targets are class labels, whatever their
    shape, ``(n,)`` or one column ``(n, 1)``, with ``n_classes = max(y) + 1`` (label values
    are the class ids); ``--task regression`` says otherwise. Float targets, and integer
    targets of more than one column ``(n, k > 1)``, are regression (``(n,)`` becomes
    ``(n, 1)``).

    Args:
        path: File path (read with ``allow_pickle=False``).
        task: ``"auto"`` (the rule above), ``"classification"`` (also accepts integral float
            labels) or ``"regression"`` (casts y to float32).
        min_classes: Classification: how many distinct labels must be present (2 to train;
            1 for a file only scored).

    Returns:
        Dataset named after the file stem.

    Raises:
        DataError: missing/unreadable/corrupted file, missing ``X`` or ``y``, or any
            :func:`validate_arrays` failure (negative labels are "labels out of range").
    """
    _check_task(task)
    p = _check_file(path)
    X, y = _read_npz(p)
    name = p.stem
    if task == "auto":
        one_column = y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1)
        task = "classification" if (one_column and y.dtype.kind in "biu") else "regression"
    if task == "classification" and y.dtype.kind == "b":
        y = y.astype(np.int32)
    return _dataset(X, y, task, None, name, min_classes=min_classes)


def _read_npz(p: Path) -> tuple[np.ndarray, np.ndarray]:
    """Arrays ``X`` and ``y`` of an ``.npz`` (no pickles); any read failure is a DataError."""
    try:
        with open(p, "rb") as fh:
            obj = np.load(fh, allow_pickle=False)
            if not isinstance(obj, np.lib.npyio.NpzFile):
                raise DataError(f"{p}: not an .npz archive (expected arrays 'X' and 'y')")
            with obj:
                missing = [k for k in ("X", "y") if k not in obj.files]
                if missing:
                    raise DataError(f"{p}: missing array(s) {', '.join(map(repr, missing))} in "
                                    f".npz; found {', '.join(map(repr, obj.files)) or 'none'}")
                X, y = np.asarray(obj["X"]), np.asarray(obj["y"])
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{p}: corrupted .npz file (array header asks for too much memory)") from None
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError, TypeError,
            IndexError, RuntimeError, NotImplementedError, OverflowError, SyntaxError) as e:
        raise DataError(f"{p}: cannot read .npz file (truncated or corrupted?): "
                        f"{type(e).__name__}: {e}") from None
    return X, y


def save_npz(path, X, y) -> None:
    """Write ``X`` and ``y`` to a compressed ``.npz`` readable by :func:`load_npz`.

    Args:
        path: Destination (should end in ``.npz``).
        X: Inputs ``(n, d)``.
        y: Labels ``(n,)`` (integers: classification on reload) or targets ``(n,)``/``(n, k)``.
    """
    with open(path, "wb") as f:
        np.savez_compressed(f, X=np.asarray(X), y=np.asarray(y))
