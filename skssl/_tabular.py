"""Reading and writing the files ``skssl label`` works on.

CSV (header row), NPY (a 2-D array whose target is a column index), NPZ (a
features array and a labels array) and Parquet (with pyarrow). Files are read
in bounded chunks where the format allows, and outputs are written to a
temporary file beside the destination and renamed, so a crash never leaves a
half-written output and the input is never touched.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMATS = {".csv": "csv", ".npy": "npy", ".npz": "npz", ".parquet": "parquet"}
# Target values that mean "unlabeled" besides the user's --unlabeled-value.
_MISSING = {"", "nan", "NaN", "NAN", "-1", "-1.0", "None", "NA", "null"}
_CHUNK_ROWS = 65_536


class TableError(ValueError):
    """A user-facing problem with an input or output file (one clear line)."""


@dataclass
class Table:
    """Features and targets read from a file, with what is needed to write back.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float32
    y : ndarray of shape (n_samples,), object
        Labels with -1 for unlabeled rows (ints when every label is an integer).
    feature_names : list of str
    fmt : str
        One of "csv", "npy", "npz", "parquet".
    source : Path
    extra : dict
        Format-specific state used when writing (e.g. the other NPZ arrays).
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list
    fmt: str
    source: Path
    extra: dict = field(default_factory=dict)


def detect_format(path):
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise TableError(
            f"{path}: unsupported file type {Path(path).suffix!r}; use one of "
            f"{', '.join(FORMATS)}."
        )
    return fmt


def _is_missing(value, unlabeled_value):
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    text = str(value).strip()
    return text in _MISSING or (unlabeled_value is not None and text == unlabeled_value)


def _encode_targets(raw, unlabeled_value):
    """Object array of labels with -1 for unlabeled; integer labels stay ints."""
    raw = list(raw)
    missing = np.array([_is_missing(v, unlabeled_value) for v in raw], dtype=bool)
    labels = [str(v).strip() for v, m in zip(raw, missing, strict=True) if not m]
    try:
        parsed = [float(v) for v in labels]
        as_int = all(p.is_integer() for p in parsed)
        values = [int(p) for p in parsed] if as_int else None
    except ValueError:
        values = None
    if values is None:
        values = labels
    y = np.empty(len(raw), dtype=object)
    y[missing] = -1
    y[~missing] = values
    return y


def _float_columns(columns, names, path):
    """Stack named columns (sequences of strings or numbers) as float32."""
    bad = []
    out = np.empty((len(columns[0]) if columns else 0, len(columns)), np.float32)
    for j, (col, name) in enumerate(zip(columns, names, strict=True)):
        try:
            out[:, j] = np.asarray(col, dtype=np.float32)
        except ValueError:
            bad.append(name)
    if bad:
        raise TableError(
            f"{path}: non-numeric feature column(s) {bad}; encode them as numbers "
            "or leave them out with --drop."
        )
    return out


# --- CSV --------------------------------------------------------------------


def _read_csv(path, target, unlabeled_value, drop, verbose):
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise TableError(f"{path}: the file is empty (no header row).") from None
        header = [h.strip() for h in header]
        _check_columns(path, header, target, drop)
        t = header.index(target)
        feat = [j for j, h in enumerate(header) if j != t and h not in drop]
        names = [header[j] for j in feat]
        blocks, targets, n = [], [], 0
        while True:
            rows = [r for _, r in zip(range(_CHUNK_ROWS), reader, strict=False)]
            if not rows:
                break
            for i, r in enumerate(rows):
                if len(r) != len(header):
                    raise TableError(
                        f"{path}: line {n + i + 2} has {len(r)} fields but the header "
                        f"has {len(header)}."
                    )
            targets.extend(r[t] for r in rows)
            cols = [[r[j] for r in rows] for j in feat]
            blocks.append(_float_columns(cols, names, path))
            n += len(rows)
            if verbose:
                print(f"[skssl label] read {n} rows", flush=True)
    if n == 0:
        raise TableError(f"{path}: the file has a header but no rows.")
    X = np.concatenate(blocks)
    y = _encode_targets(targets, unlabeled_value)
    return Table(X, y, names, "csv", path, extra={"header": header})


def _write_csv(table, out_fh, new_columns):
    names = list(new_columns)
    with open(table.source, newline="") as fh:
        reader = csv.reader(fh)
        writer = csv.writer(out_fh, lineterminator="\n")
        next(reader)  # the header, already parsed by _read_csv
        writer.writerow(table.extra["header"] + names)
        values = [new_columns[k] for k in names]
        for i, row in enumerate(reader):
            writer.writerow(row + [_fmt(v[i]) for v in values])


def _fmt(v):
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return str(v)


# --- Parquet ----------------------------------------------------------------


def _pyarrow(path):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise TableError(
            f"{path}: Parquet files need pyarrow; `pip install pyarrow`."
        ) from None
    return pa, pq


def _read_parquet(path, target, unlabeled_value, drop, verbose):
    pa, pq = _pyarrow(path)
    try:
        tbl = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise TableError(f"{path}: cannot read as Parquet ({exc}).") from None
    header = list(tbl.column_names)
    _check_columns(path, header, target, drop)
    names = [h for h in header if h != target and h not in drop]
    bad = [
        h
        for h in names
        if not (pa.types.is_integer(tbl[h].type) or pa.types.is_floating(tbl[h].type))
    ]
    if bad:
        raise TableError(
            f"{path}: non-numeric feature column(s) {bad}; encode them as numbers "
            "or leave them out with --drop."
        )
    X = np.empty((tbl.num_rows, len(names)), np.float32)
    for j, h in enumerate(names):
        X[:, j] = tbl[h].to_numpy(zero_copy_only=False)
    if tbl.num_rows == 0:
        raise TableError(f"{path}: the file has no rows.")
    y = _encode_targets(tbl[target].to_pylist(), unlabeled_value)
    return Table(X, y, names, "parquet", path, extra={"table": tbl})


def _write_parquet(table, out_path, new_columns):
    pa, pq = _pyarrow(table.source)
    tbl = table.extra["table"]
    for name, values in new_columns.items():
        arr = np.asarray(values)
        tbl = tbl.append_column(
            name, pa.array(list(arr) if arr.dtype == object else arr)
        )
    pq.write_table(tbl, out_path)


# --- NumPy ------------------------------------------------------------------


def _read_npy(path, target, unlabeled_value, drop, verbose):
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise TableError(f"{path}: cannot read as .npy ({exc}).") from None
    if arr.ndim != 2:
        raise TableError(
            f"{path}: a .npy input must be 2-D (rows x columns), got shape {arr.shape}."
        )
    try:
        t = int(target)
    except ValueError:
        raise TableError(
            f"{path}: for a .npy file --target is a column index (e.g. 0 or -1), "
            f"got {target!r}."
        ) from None
    if not -arr.shape[1] <= t < arr.shape[1]:
        raise TableError(
            f"{path}: --target {t} is out of range for {arr.shape[1]} columns."
        )
    t %= arr.shape[1]
    dropped = {int(d) % arr.shape[1] for d in drop}
    feat = [j for j in range(arr.shape[1]) if j != t and j not in dropped]
    names = [f"x{j}" for j in feat]
    if arr.dtype.kind not in "iuf":
        raise TableError(
            f"{path}: a .npy input must be numeric, got dtype {arr.dtype}."
        )
    X = np.ascontiguousarray(arr[:, feat], dtype=np.float32)
    y = _encode_targets(arr[:, t].tolist(), unlabeled_value)
    return Table(X, y, names, "npy", path, extra={"array": arr})


def _read_npz(path, target, unlabeled_value, drop, verbose, features=None):
    try:
        data = dict(np.load(path, allow_pickle=False))
    except (OSError, ValueError) as exc:
        raise TableError(f"{path}: cannot read as .npz ({exc}).") from None
    if target not in data:
        raise TableError(
            f"{path}: no array named {target!r}; it holds {sorted(data)}. Pass the "
            "labels array's name with --target."
        )
    if features is None:
        candidates = [k for k, v in data.items() if k != target and v.ndim == 2]
        if len(candidates) != 1:
            raise TableError(
                f"{path}: cannot tell which array holds the features among "
                f"{sorted(candidates) or sorted(data)}; name it with --features."
            )
        features = candidates[0]
    if features not in data:
        raise TableError(
            f"{path}: no array named {features!r}; it holds {sorted(data)}."
        )
    Xa, ya = data[features], data[target]
    if Xa.ndim != 2 or Xa.dtype.kind not in "iuf":
        raise TableError(
            f"{path}: features array {features!r} must be 2-D numeric, got shape "
            f"{Xa.shape} dtype {Xa.dtype}."
        )
    if ya.shape != (Xa.shape[0],):
        raise TableError(
            f"{path}: labels array {target!r} has shape {ya.shape} but the features "
            f"have {Xa.shape[0]} rows."
        )
    X = np.ascontiguousarray(Xa, dtype=np.float32)
    y = _encode_targets(ya.tolist(), unlabeled_value)
    names = [f"{features}{j}" for j in range(X.shape[1])]
    return Table(X, y, names, "npz", path, extra={"arrays": data})


def _write_npz(table, out_fh, new_columns):
    arrays = dict(table.extra.get("arrays") or {"data": table.extra["array"]})
    for name, values in new_columns.items():
        arr = np.asarray(values)
        if arr.dtype == object:
            arr = arr.astype(str)
        arrays[name] = arr
    np.savez(out_fh, **arrays)


def _check_columns(path, header, target, drop):
    if target not in header:
        raise TableError(
            f"{path}: no column named {target!r}; columns are {header[:20]}"
            f"{' ...' if len(header) > 20 else ''}."
        )
    missing = [d for d in drop if d not in header]
    if missing:
        raise TableError(f"{path}: --drop names unknown column(s) {missing}.")
    if target in drop:
        raise TableError(f"{path}: --drop cannot remove the target column {target!r}.")


# --- public entry points ----------------------------------------------------


def read_table(
    path, target, *, unlabeled_value=None, drop=(), features=None, verbose=0
):
    """Read features and semi-supervised targets from ``path``.

    Raises
    ------
    TableError
        With one clear line for any unreadable or ill-formed input.
    """
    path = Path(path)
    fmt = detect_format(path)
    if not path.is_file():
        raise TableError(f"{path}: no such file.")
    drop = list(drop or ())
    if fmt == "csv":
        try:
            return _read_csv(path, target, unlabeled_value, drop, verbose)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise TableError(f"{path}: cannot read as CSV ({exc}).") from None
    if fmt == "parquet":
        return _read_parquet(path, target, unlabeled_value, drop, verbose)
    if fmt == "npy":
        return _read_npy(path, target, unlabeled_value, drop, verbose)
    return _read_npz(path, target, unlabeled_value, drop, verbose, features=features)


@contextmanager
def _atomic_output(out_path, binary):
    """Open a temporary file beside ``out_path``; rename it into place on success."""
    out_path = Path(out_path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{out_path.name}.", suffix=".tmp", dir=out_path.parent or "."
    )
    try:
        mode = "wb" if binary else "w"
        with os.fdopen(fd, mode, **({} if binary else {"newline": ""})) as fh:
            yield fh, tmp
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out_path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_output_path(table_or_input, out_path):
    """Refuse outputs that would overwrite the input or change its format."""
    src = Path(getattr(table_or_input, "source", table_or_input))
    out = Path(out_path)
    if out.exists() and out.resolve() == src.resolve():
        raise TableError(
            f"{out}: the output is the input file; choose another --out so the "
            "input stays untouched."
        )
    in_fmt, out_fmt = detect_format(src), detect_format(out)
    expected = "npz" if in_fmt in ("npy", "npz") else in_fmt
    if out_fmt != expected:
        raise TableError(
            f"{out}: a {in_fmt} input is written as .{expected}; name the output "
            f"with that extension."
        )
    if not out.parent.exists():
        raise TableError(f"{out}: the folder {out.parent} does not exist.")


def write_table(table, out_path, new_columns):
    """Write every input row with ``new_columns`` appended, atomically.

    Parameters
    ----------
    table : Table
    out_path : path
    new_columns : dict of str to sequence
        Column name to one value per row, in the input's row order.
    """
    check_output_path(table, out_path)
    clash = [c for c in new_columns if c in _existing_columns(table)]
    if clash:
        raise TableError(
            f"{table.source}: output column(s) {clash} already exist in the input; "
            "rename those input columns."
        )
    if table.fmt == "csv":
        with _atomic_output(out_path, binary=False) as (fh, _):
            _write_csv(table, fh, new_columns)
    elif table.fmt == "parquet":
        with _atomic_output(out_path, binary=True) as (fh, _):
            _write_parquet(table, fh, new_columns)
    else:
        with _atomic_output(out_path, binary=True) as (fh, _):
            _write_npz(table, fh, new_columns)


def _existing_columns(table):
    if table.fmt == "csv":
        return list(table.extra["header"])
    if table.fmt == "parquet":
        return list(table.extra["table"].column_names)
    return list(table.extra.get("arrays") or {"data": None})
