"""Reading and writing the tables ``skssl label`` works on.

Inputs, told apart by extension (or, for standard input, by their first bytes):

* CSV and TSV, optionally compressed (``.gz``, ``.bz2``, ``.zst``): the
  delimiter is detected among ``,`` ``;`` tab and ``|`` (or given), the text is
  decoded from any encoding Python knows (a UTF-8 byte-order mark is ignored),
  and the cells in :data:`NA_TOKENS` are missing values. pyarrow parses the
  file in blocks on all cores, so memory holds the parsed columns, not the
  text.
* Parquet and JSON Lines (``.jsonl``, ``.ndjson``, compressed or not).
* NPY, a 2-D array whose target is a column index, and NPZ, a features array
  and a labels array.

Every row-aligned column is kept as read (features as float64, the other
columns of a text file as text), so the output repeats the input's columns,
in the input's order, with the new ones appended. The output's format follows
its extension: CSV/TSV (compressed or not), Parquet, JSON Lines or NPZ.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

__all__ = [
    "NA_TOKENS",
    "UNLABELED_TOKENS",
    "FileFormat",
    "Table",
    "TableError",
    "column_names",
    "input_format",
    "output_format",
    "read_table",
    "sniff_format",
    "write_table",
]

# Cells that mean "no value" in a text file: pyarrow's defaults, which cover the
# spellings of pandas, R and spreadsheets, plus Python's None.
NA_TOKENS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
    "1.#IND", "1.#QNAN", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip
# Target values that mark an unlabeled row (besides --unlabeled-value): any
# missing value, and the -1 of scikit-learn's semi-supervised estimators.
UNLABELED_TOKENS = (*NA_TOKENS, "-1", "-1.0")

_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
_EXTENSIONS = {
    ".csv": ("csv", None),
    ".tsv": ("csv", "\t"),
    ".tab": ("csv", "\t"),
    ".parquet": ("parquet", None),
    ".pq": ("parquet", None),
    ".jsonl": ("jsonl", None),
    ".ndjson": ("jsonl", None),
    ".npy": ("npy", None),
    ".npz": ("npz", None),
}
_COMPRESSIBLE = ("csv", "jsonl")
OUTPUT_FORMATS = ("csv", "tsv", "parquet", "jsonl", "npz")
_DELIMITERS = (",", ";", "\t", "|")
# Decoded text looked at to find the delimiter and check the first rows.
_SNIFF_BYTES = 1 << 16
# pyarrow parses one block per thread; a row must fit in one.
_BLOCK_BYTES = 1 << 23
_PROGRESS_ROWS = 1 << 16


class TableError(ValueError):
    """A problem with an input or output file, said in one line with its fix."""


@dataclass(frozen=True)
class FileFormat:
    """What a file holds and how its bytes are wrapped.

    Attributes
    ----------
    kind : {"csv", "parquet", "jsonl", "npy", "npz"}
    compression : {"gzip", "bz2", "zstd"} or None
    sep : str or None
        The delimiter a CSV-like file implies (tab for ``.tsv``); None to detect.
    """

    kind: str
    compression: str | None = None
    sep: str | None = None

    def describe(self):
        name = "TSV" if self.sep == "\t" else self.kind.upper()
        return f"{name} ({self.compression})" if self.compression else name


@dataclass
class Table:
    """Features and targets read from a file, and what is written back.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float32
        NaN where a value is missing.
    y : ndarray of shape (n_samples,)
        int64 when every label is an integer, else object (str labels); -1
        marks the unlabeled rows.
    feature_names : list of str
    name : str
        The input as messages name it.
    fmt : FileFormat
    columns : pyarrow.Table or None
        Every row-aligned column as read (CSV, Parquet, JSON Lines).
    arrays : dict of str to ndarray or None
        Every array as read (NPY as ``{"data": array}``, NPZ).
    details : str
        How the file was read (delimiter, encoding), for ``--verbose``.
    roles : dict
        NPZ: the names of the ``"features"`` and ``"target"`` arrays.
    """

    X: np.ndarray
    y: np.ndarray
    feature_names: list
    name: str
    fmt: FileFormat
    columns: object = None
    arrays: dict | None = None
    details: str = ""
    roles: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- formats


def _split_name(name):
    """``(format entry or None, compression, extension text)`` of a file name."""
    suffixes = [s.lower() for s in Path(name).suffixes]
    compression = None
    if suffixes and suffixes[-1] in _COMPRESSIONS:
        compression = _COMPRESSIONS[suffixes.pop()]
    ext = suffixes[-1] if suffixes else ""
    return _EXTENSIONS.get(ext), compression, "".join(Path(name).suffixes)


def input_format(path):
    """The :class:`FileFormat` of an input file, from its extension."""
    entry, compression, ext = _split_name(path)
    known = "a .csv/.tsv (optionally .gz, .bz2, .zst), .parquet, .jsonl, .npy or .npz"
    if entry is None:
        raise TableError(
            f"{path}: unsupported input type {ext or '(no extension)'!r}; give "
            f"{known} file."
        )
    kind, sep = entry
    if compression and kind not in _COMPRESSIBLE:
        raise TableError(
            f"{path}: a compressed {kind} file is not supported; decompress it "
            "first (only CSV, TSV and JSON Lines are read compressed)."
        )
    return FileFormat(kind, compression, sep)


def output_format(path, override=None):
    """The :class:`FileFormat` of an output, from ``override`` or its extension.

    Parameters
    ----------
    path : str
        The output file, or ``"-"`` for standard output (CSV unless
        ``override`` says otherwise).
    override : {"csv", "tsv", "parquet", "jsonl", "npz"}, default=None
    """
    if override is not None:
        compression = _split_name(path)[1] if path != "-" else None
        if override == "tsv":
            return FileFormat("csv", compression, "\t")
        if override not in _COMPRESSIBLE:
            compression = None
        return FileFormat(override, compression)
    if path == "-":
        return FileFormat("csv")
    entry, compression, ext = _split_name(path)
    if entry is not None and entry[0] == "npy":
        raise TableError(
            f"{path}: one .npy array cannot hold the new columns; name the output "
            ".npz (the input's array and one array per new column)."
        )
    if entry is None:
        raise TableError(
            f"{path}: cannot tell the output format from {ext or 'no extension'!r}; "
            "name it .csv, .tsv, .csv.gz, .parquet, .jsonl or .npz, or pass "
            "--out-format."
        )
    kind, sep = entry
    if compression and kind not in _COMPRESSIBLE:
        raise TableError(
            f"{path}: {kind} output cannot be compressed by extension; name it "
            f".{kind} (Parquet compresses inside the file)."
        )
    return FileFormat(kind, compression, sep)


# First bytes of the formats standard input may carry.
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PAR1", "parquet"),
    (b"\x93NUMPY", "npy"),
    (b"PK\x03\x04", "npz"),
)


def sniff_format(path):
    """The :class:`FileFormat` of a file from its content (for standard input).

    Compressed text, Parquet, NPY and NPZ are told by their magic bytes; text
    whose first character is ``{`` is JSON Lines, any other text CSV.
    """
    with open(path, "rb") as fh:
        head = fh.read(8)
    compression = None
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            if kind in ("parquet", "npy", "npz"):
                return FileFormat(kind)
            compression = kind
            break
    with pa.input_stream(str(path), compression=compression) as stream:
        text = stream.read(256).lstrip(b"\xef\xbb\xbf \t\r\n")
    return FileFormat("jsonl" if text.startswith(b"{") else "csv", compression)


# --------------------------------------------------------------------------- checks


def _shown(names, limit=20):
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{', '.join(map(repr, names[:limit]))}{more}"


def _check_unique(name, header):
    seen = {}
    for j, h in enumerate(header):
        seen.setdefault(h, []).append(j + 1)
    duplicated = {h: js for h, js in seen.items() if len(js) > 1}
    if duplicated:
        h, js = next(iter(duplicated.items()))
        raise TableError(
            f"{name}: column name {h!r} appears {len(js)} times (columns "
            f"{', '.join(map(str, js))}); give every column its own name."
        )


def _select_features(name, header, target, drop):
    """Feature column names: all but the target and the dropped ones."""
    if target not in header:
        raise TableError(
            f"{name}: no column named {target!r} for --target; the columns are "
            f"{_shown(header)}."
        )
    unknown = [d for d in drop if d not in header]
    if unknown:
        raise TableError(
            f"{name}: --drop names no column {_shown(unknown)}; the columns are "
            f"{_shown(header)}."
        )
    if target in drop:
        raise TableError(f"{name}: --drop cannot leave out the target {target!r}.")
    features = [h for h in header if h != target and h not in drop]
    if not features:
        raise TableError(
            f"{name}: no feature column is left besides the target {target!r}."
        )
    return features


def _column_index(text, n_columns, option, name):
    """A column index given on the command line, checked against the array."""
    try:
        index = int(text)
    except (TypeError, ValueError):
        raise TableError(
            f"{name}: {option} takes column indices (0 to {n_columns - 1}, or -1 for "
            f"the last) in an array file, got {text!r}."
        ) from None
    if not -n_columns <= index < n_columns:
        raise TableError(
            f"{name}: {option} {index} is out of range for {n_columns} columns "
            f"(0 to {n_columns - 1}, or -{n_columns} to -1 from the end)."
        )
    return index % n_columns


def _non_numeric_error(name, bad, hint=""):
    listed = ", ".join(f"{c!r} (e.g. {v!r})" for c, v in bad.items())
    drop = " ".join(bad)
    return TableError(
        f"{name}: non-numeric feature column(s) {listed}; encode them as numbers "
        f"or leave them out with --drop {drop}{hint}."
    )


# ------------------------------------------------------------------- targets, X


def _encode_targets(values, unlabeled_value):
    """Labels with -1 for unlabeled rows; int64 when every label is integral.

    ``values`` is a pyarrow array of any type. Cells in
    :data:`UNLABELED_TOKENS` (after trimming blanks) or equal to
    ``unlabeled_value`` are unlabeled.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not pa.types.is_string(values.type):
        if pa.types.is_large_string(values.type) or pa.types.is_dictionary(values.type):
            values = values.cast(pa.string())
        else:
            try:
                values = pc.cast(values, pa.string())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise TableError(
                    f"the target column holds {values.type} values; it must hold "
                    "one label (a number or a string) per row."
                ) from None
    text = pc.utf8_trim_whitespace(values)
    tokens = list(UNLABELED_TOKENS)
    if unlabeled_value is not None:
        tokens.append(str(unlabeled_value).strip())
    missing = pc.or_(pc.is_null(text), pc.is_in(text, value_set=pa.array(tokens)))
    missing = missing.to_numpy(zero_copy_only=False)
    labels = text.filter(pa.array(~missing))
    try:
        numbers = pc.cast(labels, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        numbers = None
    if numbers is not None and np.all(np.isfinite(numbers) & (numbers % 1 == 0)):
        y = np.full(len(text), -1, dtype=np.int64)
        y[~missing] = numbers.astype(np.int64)
        return y
    y = np.full(len(text), -1, dtype=object)
    y[~missing] = np.asarray(labels.to_pylist(), dtype=object)
    return y


def _float_matrix(columns, names):
    """The named columns of a pyarrow table as one float32 matrix, NaN if null."""
    X = np.empty((columns.num_rows, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        col = columns.column(name).cast(pa.float64())
        X[:, j] = col.to_numpy()
    return X


def _is_numeric_type(t):
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
        or pa.types.is_null(t)
    )


def _check_numeric_types(name, columns, features):
    """Name every feature column whose type is not a number, with a value."""
    bad = {}
    for f in features:
        col = columns.column(f)
        if not _is_numeric_type(col.type):
            present = col.drop_null()
            bad[f] = present[0].as_py() if len(present) else str(col.type)
    if bad:
        raise _non_numeric_error(name, bad)


def _finish(columns, target, features, unlabeled_value, name, fmt, details):
    if columns.num_rows == 0:
        raise TableError(f"{name}: the file has column names but no rows.")
    try:
        y = _encode_targets(columns.column(target), unlabeled_value)
    except TableError as exc:
        raise TableError(f"{name}: {exc}") from None
    X = _float_matrix(columns, features)
    return Table(X, y, features, name, fmt, columns=columns, details=details)


# --------------------------------------------------------------------------- CSV


def _codec_name(encoding, name):
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise TableError(
            f"{name}: --encoding {encoding!r} is not an encoding Python knows; use "
            "e.g. utf-8, latin-1, cp1252 or utf-16."
        ) from None


def _encoding_error(name, encoding, detail):
    return TableError(
        f"{name}: the file is not valid {encoding} text ({detail}); pass its "
        "encoding, e.g. --encoding latin-1 (or cp1252 for Windows exports)."
    )


def _text_head(path, fmt, encoding, name):
    """The first decoded characters of a text file, cut after a whole line.

    Returns
    -------
    text : str
    complete : bool
        Whether ``text`` is the whole file.
    """
    try:
        with pa.input_stream(str(path), compression=fmt.compression) as stream:
            raw = stream.read(_SNIFF_BYTES + 1)
    except (OSError, pa.ArrowInvalid) as exc:
        raise TableError(
            f"{name}: cannot read as {fmt.describe()} ({_first_line(exc)})."
        ) from None
    complete = len(raw) <= _SNIFF_BYTES
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        text = decoder.decode(raw[:_SNIFF_BYTES], final=complete)
    except UnicodeDecodeError as exc:
        raise _encoding_error(name, encoding, _byte_detail(exc)) from None
    if not complete:
        cut = text.rfind("\n")
        text = text[: cut + 1] if cut >= 0 else text
    return text.lstrip("\ufeff"), complete


def _byte_detail(exc):
    bad = exc.object[exc.start : exc.start + 1]
    return f"byte 0x{bad.hex()} at position {exc.start}"


def _detect_delimiter(rows_by_sep):
    """The delimiter that splits the sampled lines into equally many fields.

    ``rows_by_sep`` maps each candidate to the sample parsed with it. Among
    the candidates giving every line the header's field count (at least two),
    the one giving the most fields wins, ties in the order of
    :data:`_DELIMITERS`; failing that, the one splitting the header most
    (pyarrow then reports the first ragged line).
    """
    best, best_fields = None, 1
    for sep in _DELIMITERS:
        rows = rows_by_sep[sep]
        n = len(rows[0])
        if n > best_fields and all(len(r) == n for r in rows[1:]):
            best, best_fields = sep, n
    if best is not None:
        return best
    return max(_DELIMITERS, key=lambda s: len(rows_by_sep[s][0]))


def _sample_rows(text, sep, complete):
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=sep) if r]
    # The last sampled line may be cut inside a quoted field.
    return rows if complete or len(rows) < 3 else rows[:-1]


def _is_number(text, decimal):
    if decimal != ".":
        text = text.replace(decimal, ".")
    try:
        float(text)
    except ValueError:
        return False
    return "_" not in text


_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")


def _check_sample(name, rows, header, features, decimal, sep):
    """Name every feature column whose sampled cells are not all numbers."""
    position = {h: j for j, h in enumerate(header)}
    na = set(NA_TOKENS)
    bad = {}
    for f in features:
        j = position[f]
        for r in rows:
            cell = r[j].strip() if j < len(r) else ""
            if cell not in na and not _is_number(cell, decimal):
                bad[f] = cell
                break
    if bad:
        hint = ""
        if (
            decimal == "."
            and sep != ","
            and all(_DECIMAL_COMMA.match(v) for v in bad.values())
        ):
            hint = "; for decimal commas pass --decimal ,"
        raise _non_numeric_error(name, bad, hint)


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _ragged_line(path, fmt, encoding, sep, n_fields):
    """The line number of the first row without ``n_fields`` fields, if found."""
    try:
        with pa.input_stream(str(path), compression=fmt.compression) as stream:
            reader = csv.reader(
                io.TextIOWrapper(stream, encoding=encoding, newline=""), delimiter=sep
            )
            for row in reader:
                if row and len(row) != n_fields:
                    return reader.line_num
    except (OSError, UnicodeDecodeError, csv.Error, pa.ArrowInvalid):
        return None
    return None


def _csv_error(exc, path, fmt, name, header, sep, encoding):
    """A one-line :class:`TableError` for pyarrow's CSV errors."""
    text = str(exc)
    if isinstance(exc, UnicodeDecodeError):
        return _encoding_error(name, encoding, _byte_detail(exc))
    if "invalid UTF8" in text:
        return _encoding_error(name, encoding, "invalid UTF-8 in a text column")
    ragged = re.search(r"Expected (\d+) columns, got (\d+)", text)
    if ragged:
        expected, got = int(ragged.group(1)), int(ragged.group(2))
        line = _ragged_line(path, fmt, encoding, sep, expected)
        where = f"line {line}" if line else "a line"
        return TableError(
            f"{name}: {where} has {got} field(s) but the header has {expected} "
            f"(delimiter {sep!r}); fix that line, or pass --sep if the delimiter "
            "is wrong."
        )
    invalid = re.search(r"column #(\d+): .*invalid value '(.*)'", text)
    if invalid:
        column = header[int(invalid.group(1))]
        return _non_numeric_error(name, {column: invalid.group(2)})
    return TableError(f"{name}: cannot read as {fmt.describe()} ({_first_line(exc)}).")


def _read_csv(path, fmt, name, target, drop, unlabeled_value, options, progress):

    encoding = _codec_name(options.get("encoding") or "utf-8", name)
    decimal = options.get("decimal") or "."
    text, complete = _text_head(path, fmt, encoding, name)
    if not text.strip():
        raise TableError(f"{name}: the file is empty (no header row).")
    sep = options.get("sep") or fmt.sep
    if sep is None:
        sep = _detect_delimiter(
            {s: _sample_rows(text, s, complete) for s in _DELIMITERS}
        )
    rows = _sample_rows(text, sep, complete)
    header = [h.strip() or f"column_{j + 1}" for j, h in enumerate(rows[0])]
    if len(header) < 2:
        raise TableError(
            f"{name}: found a single column {header[0]!r}; if the file has a "
            "delimiter other than , ; tab or |, pass it with --sep."
        )
    _check_unique(name, header)
    features = _select_features(name, header, target, drop)
    _check_sample(name, rows[1:], header, features, decimal, sep)
    feature_set = set(features)
    types = {h: pa.float64() if h in feature_set else pa.string() for h in header}
    # A quoted line break anywhere in the sample: parse values with newlines
    # (correct for such files, slower for all others).
    newlines = any("\n" in cell or "\r" in cell for r in rows for cell in r)
    reader_options = (
        pacsv.ReadOptions(
            column_names=header,
            skip_rows=1,
            block_size=_BLOCK_BYTES,
            encoding="utf8" if encoding == "utf-8" else encoding,
        ),
        pacsv.ParseOptions(delimiter=sep, newlines_in_values=newlines),
        pacsv.ConvertOptions(
            column_types=types,
            null_values=list(NA_TOKENS),
            strings_can_be_null=False,
            decimal_point=decimal,
        ),
    )
    try:
        stream = pa.input_stream(str(path), compression=fmt.compression)
        with stream, _progress(progress, name) as bar:
            reader = pacsv.open_csv(stream, *reader_options)
            batches = []
            for batch in reader:
                batches.append(batch)
                bar.update(batch.num_rows)
            columns = pa.Table.from_batches(batches, schema=reader.schema)
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
        raise _csv_error(exc, path, fmt, name, header, sep, encoding) from None
    details = f"{fmt.describe()}, delimiter {sep!r}, encoding {encoding}"
    if decimal != ".":
        details += f", decimal {decimal!r}"
    return _finish(columns, target, features, unlabeled_value, name, fmt, details)


def _progress(enabled, name):
    from tqdm.auto import tqdm

    return tqdm(
        desc=f"reading {name}",
        unit=" rows",
        unit_scale=True,
        disable=not enabled,
        file=sys.stderr,
        mininterval=0.5,
    )


# ------------------------------------------------------------ Parquet, JSON Lines


def _read_parquet(path, fmt, name, target, drop, unlabeled_value, progress):

    try:
        source = pq.ParquetFile(str(path))
        header = list(source.schema_arrow.names)
        _check_unique(name, header)
        features = _select_features(name, header, target, drop)
        with _progress(progress, name) as bar:
            batches = []
            for batch in source.iter_batches(batch_size=_PROGRESS_ROWS):
                batches.append(batch)
                bar.update(batch.num_rows)
        columns = pa.Table.from_batches(batches, schema=source.schema_arrow)
    except (OSError, pa.ArrowInvalid) as exc:
        raise TableError(
            f"{name}: cannot read as Parquet ({_first_line(exc)})."
        ) from None
    _check_numeric_types(name, columns, features)
    return _finish(columns, target, features, unlabeled_value, name, fmt, "Parquet")


def _read_jsonl(path, fmt, name, target, drop, unlabeled_value):

    try:
        with pa.input_stream(str(path), compression=fmt.compression) as stream:
            columns = pajson.read_json(
                stream, read_options=pajson.ReadOptions(block_size=_BLOCK_BYTES)
            )
    except (OSError, pa.ArrowInvalid) as exc:
        raise TableError(
            f"{name}: cannot read as JSON Lines, one object per line "
            f"({_first_line(exc)})."
        ) from None
    header = list(columns.column_names)
    _check_unique(name, header)
    features = _select_features(name, header, target, drop)
    _check_numeric_types(name, columns, features)
    return _finish(
        columns, target, features, unlabeled_value, name, fmt, fmt.describe()
    )


# --------------------------------------------------------------------------- NumPy


def _load_numpy(path, kind, name):
    try:
        data = np.load(path, allow_pickle=False)
        return dict(data) if kind == "npz" else data
    except (OSError, ValueError, EOFError) as exc:
        raise TableError(
            f"{name}: cannot read as .{kind} ({_first_line(exc)}); a file with "
            "object arrays is not read, save plain numeric or string arrays."
        ) from None


def _numeric_array(name, what, arr):
    if arr.dtype.kind not in "biuf":
        raise TableError(
            f"{name}: {what} must be numeric, got dtype {arr.dtype}; convert it "
            "before saving."
        )


def _read_npy(path, fmt, name, target, drop, unlabeled_value):
    arr = _load_numpy(path, "npy", name)
    if arr.ndim != 2:
        raise TableError(
            f"{name}: a .npy input must be 2-D (rows x columns), got shape {arr.shape}."
        )
    _numeric_array(name, "a .npy input", arr)
    m = arr.shape[1]
    t = _column_index(target, m, "--target", name)
    dropped = {_column_index(d, m, "--drop", name) for d in drop}
    if t in dropped:
        raise TableError(f"{name}: --drop cannot leave out the target column {t}.")
    feat = [j for j in range(m) if j != t and j not in dropped]
    if not feat:
        raise TableError(f"{name}: no feature column is left besides the target.")
    if arr.shape[0] == 0:
        raise TableError(f"{name}: the array has no rows.")
    X = np.ascontiguousarray(arr[:, feat], dtype=np.float32)
    y = _encode_targets(pa.array(arr[:, t]), unlabeled_value)
    return Table(
        X, y, [str(j) for j in feat], name, fmt, arrays={"data": arr}, details="NPY"
    )


def _read_npz_columns(data, fmt, name, target, drop, unlabeled_value):
    """An NPZ of 1-D arrays of one length: a table, one array per column."""
    lengths = {len(v) for v in data.values()}
    if len(lengths) != 1:
        raise TableError(
            f"{name}: the 1-D arrays have different lengths {sorted(lengths)}; an "
            "NPZ of columns needs one length, or put the features in one 2-D array."
        )
    columns = pa.table(data)
    header = list(data)
    features = _select_features(name, header, target, drop)
    _check_numeric_types(name, columns, features)
    return _finish(
        columns,
        target,
        features,
        unlabeled_value,
        name,
        fmt,
        "NPZ, one array per column",
    )


def _read_npz(path, fmt, name, target, drop, unlabeled_value, features):
    data = _load_numpy(path, "npz", name)
    if target not in data:
        raise TableError(
            f"{name}: no array named {target!r} for --target; it holds "
            f"{_shown(sorted(data))}."
        )
    if features is None:
        candidates = [k for k, v in data.items() if k != target and v.ndim == 2]
        if not candidates and all(v.ndim == 1 for v in data.values()):
            return _read_npz_columns(data, fmt, name, target, drop, unlabeled_value)
        if len(candidates) != 1:
            raise TableError(
                f"{name}: cannot tell which array holds the features among "
                f"{_shown(sorted(candidates) or sorted(data))}; name it with "
                "--features."
            )
        features = candidates[0]
    if features not in data:
        raise TableError(
            f"{name}: no array named {features!r} for --features; it holds "
            f"{_shown(sorted(data))}."
        )
    Xa, ya = data[features], data[target]
    if Xa.ndim != 2:
        raise TableError(
            f"{name}: features array {features!r} must be 2-D, got shape {Xa.shape}."
        )
    _numeric_array(name, f"features array {features!r}", Xa)
    if ya.shape != (Xa.shape[0],):
        raise TableError(
            f"{name}: labels array {target!r} has shape {ya.shape} but the features "
            f"have {Xa.shape[0]} rows."
        )
    if Xa.shape[0] == 0:
        raise TableError(f"{name}: the arrays have no rows.")
    dropped = {_column_index(d, Xa.shape[1], "--drop", name) for d in drop}
    feat = [j for j in range(Xa.shape[1]) if j not in dropped]
    if not feat:
        raise TableError(f"{name}: --drop leaves no feature column.")
    X = np.ascontiguousarray(Xa[:, feat], dtype=np.float32)
    y = _encode_targets(pa.array(ya), unlabeled_value)
    return Table(
        X,
        y,
        [f"{features}{j}" for j in feat],
        name,
        fmt,
        arrays=data,
        details="NPZ",
        roles={"features": features, "target": target},
    )


# --------------------------------------------------------------------------- reading


def read_table(
    path,
    target,
    *,
    fmt=None,
    name=None,
    unlabeled_value=None,
    drop=(),
    features=None,
    sep=None,
    encoding="utf-8",
    decimal=".",
    progress=False,
):
    """Read features and semi-supervised targets from a file.

    Parameters
    ----------
    path : path-like
    target : str
        The label column (CSV, Parquet, JSON Lines), array (NPZ) or column
        index (NPY).
    fmt : FileFormat, default=None
        The file's format; from the extension when None.
    name : str, default=None
        How messages name the input (``path`` when None).
    unlabeled_value : str, default=None
        A target value marking unlabeled rows besides :data:`UNLABELED_TOKENS`.
    drop : sequence of str, default=()
        Columns (indices for NPY and NPZ) left out of the features.
    features : str, default=None
        NPZ: the features array; the only 2-D array besides the target when None.
    sep, encoding, decimal : str
        CSV: delimiter (detected when None), text encoding and decimal mark.
    progress : bool, default=False
        Show a progress bar on standard error.

    Returns
    -------
    table : Table

    Raises
    ------
    TableError
        In one line, for any unreadable or ill-formed input.
    """
    name = str(path) if name is None else name
    fmt = input_format(path) if fmt is None else fmt
    if not Path(path).is_file():
        kind = "a folder" if Path(path).is_dir() else "no such file"
        raise TableError(f"{name}: {kind}; give the path of a file to label.")
    drop = [str(d) for d in drop]
    if fmt.kind == "csv":
        options = {"sep": sep, "encoding": encoding, "decimal": decimal}
        return _read_csv(
            path, fmt, name, target, drop, unlabeled_value, options, progress
        )
    if fmt.kind == "parquet":
        return _read_parquet(path, fmt, name, target, drop, unlabeled_value, progress)
    if fmt.kind == "jsonl":
        return _read_jsonl(path, fmt, name, target, drop, unlabeled_value)
    if fmt.kind == "npy":
        return _read_npy(path, fmt, name, target, drop, unlabeled_value)
    return _read_npz(path, fmt, name, target, drop, unlabeled_value, features)


# --------------------------------------------------------------------------- writing


def _row_columns(table):
    """Every row-aligned column of ``table`` as a pyarrow table."""
    if table.columns is not None:
        return table.columns
    arrays = table.arrays
    if table.fmt.kind == "npy":
        data = arrays["data"]
        return pa.table({str(j): data[:, j] for j in range(data.shape[1])})
    features, target = table.roles["features"], table.roles["target"]
    Xa = arrays[features]
    n = Xa.shape[0]
    columns = {f"{features}{j}": Xa[:, j] for j in range(Xa.shape[1])}
    columns[target] = arrays[target]
    for key, value in arrays.items():
        if key not in (features, target) and value.shape == (n,):
            columns[key] = value
    return pa.table(columns)


def column_names(table, fmt):
    """The names an output in ``fmt`` already has before new columns are added."""
    if fmt.kind == "npz" and table.arrays is not None:
        return list(table.arrays)
    return list(_row_columns(table).column_names)


def _numpy_column(values, fill_int=None):
    """A pyarrow column as a NumPy array NPZ can hold (no objects, no nulls)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    t = values.type
    if pa.types.is_integer(t) and values.null_count and fill_int is not None:
        values = pc.fill_null(values, fill_int)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return values.to_numpy(zero_copy_only=False)
    text = pc.fill_null(values.cast(pa.string()), "")
    return np.asarray(text.to_pylist(), dtype=str)


class _KeepOpen(io.RawIOBase):
    """A write-only view of a binary file that closing leaves open.

    pyarrow closes the streams it wraps; the caller owns the file (it still
    flushes, syncs and renames it). ``tell`` counts the bytes written, so
    writers that ask for the position work on pipes too.
    """

    def __init__(self, fh):
        self._fh = fh
        self._written = 0

    def writable(self):
        return True

    def write(self, data):
        n = self._fh.write(data)
        n = len(data) if n is None else n
        self._written += n
        return n

    def tell(self):
        return self._written

    def flush(self):
        self._fh.flush()


def _with_new_columns(table, new_columns):
    """The input's columns with ``new_columns`` appended; a column of the same
    name is replaced where it stands."""
    out = _row_columns(table)
    for key, values in new_columns.items():
        if key in out.column_names:
            out = out.set_column(out.column_names.index(key), key, values)
        else:
            out = out.append_column(key, values)
    return out


def _write_jsonl(data, stream):

    for batch in data.to_batches(max_chunksize=_PROGRESS_ROWS):
        fields = []
        for col in batch.columns:
            # JSON has no NaN: a missing float is null.
            if pa.types.is_floating(col.type):
                col = pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col)
            fields.append(col)
        rows = pa.RecordBatch.from_arrays(fields, names=batch.schema.names)
        lines = (
            json.dumps(r, ensure_ascii=False, default=str, allow_nan=False) + "\n"
            for r in rows.to_pylist()
        )
        stream.write("".join(lines).encode("utf-8"))


def _write_csv(data, stream, sep):

    # Quotes only where a cell needs them, as people write CSV by hand:
    # pyarrow's "needed" style quotes every text cell, so it is used only when
    # some text holds the delimiter, a quote or a line break. Empty text is
    # written empty (pyarrow writes "" to tell it from a null, which a CSV
    # reader does not need).
    header = io.StringIO()
    csv.writer(header, delimiter=sep, lineterminator="\n").writerow(data.column_names)
    stream.write(header.getvalue().encode("utf-8"))
    special = f'[{re.escape(sep)}"\r\n]'
    quoting = "none"
    fields = []
    for col in data.columns:
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
            if pc.any(pc.match_substring_regex(col, special)).as_py():
                quoting = "needed"
        fields.append(col)
    data = pa.Table.from_arrays(fields, names=data.column_names)
    options = pacsv.WriteOptions(
        include_header=False, delimiter=sep, quoting_style=quoting
    )
    pacsv.write_csv(data, stream, options)


def write_table(table, new_columns, sink, fmt):
    """Write every row of ``table`` with ``new_columns`` appended to ``sink``.

    Parameters
    ----------
    table : Table
    new_columns : dict of str to pyarrow.Array
        Column name to one value per row, in the input's row order; an input
        column of the same name is replaced. In NPZ,
        which has no missing values, a null in an integer column is written
        as -1 (the unlabeled marker) and in a text column as "".
    sink : binary file object
        Left open.
    fmt : FileFormat
    """
    out = _KeepOpen(sink)
    if fmt.kind == "npz":
        if table.arrays is not None:
            arrays = dict(table.arrays)
        else:
            arrays = {
                k: _numpy_column(v)
                for k, v in zip(
                    table.columns.column_names, table.columns.columns, strict=True
                )
            }
        for key, values in new_columns.items():
            arrays[key] = _numpy_column(values, fill_int=-1)
        np.savez(out, **arrays)
        return
    data = _with_new_columns(table, new_columns)
    if fmt.kind == "parquet":
        pq.write_table(data, out)
        return
    with pa.output_stream(out, compression=fmt.compression) as stream:
        if fmt.kind == "jsonl":
            _write_jsonl(data, stream)
        else:
            _write_csv(data, stream, fmt.sep or ",")
