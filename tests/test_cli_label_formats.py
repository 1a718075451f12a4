"""``skssl label`` from every input format to every output format.

In process through :func:`skssl.cli.main` (the console script's code path
without the interpreter start-up), so the whole grid runs in seconds. Outputs
are read back with pyarrow, :mod:`csv`, :mod:`json` and NumPy directly, not
with skssl's own reader.
"""

import bz2
import csv
import gzip
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import make_blobs

from skssl import cli

N = 30


@pytest.fixture(scope="module")
def data():
    X, y_true = make_blobs(N, centers=3, cluster_std=0.3, random_state=1)
    y = np.full(N, -1)
    for c in range(3):
        y[np.flatnonzero(y_true == c)[:2]] = c
    ids = np.array([f"row {i}" for i in range(N)])
    return X, y, y_true, ids


def _csv_bytes(data, sep=","):
    X, y, _, ids = data
    out = io.StringIO()
    w = csv.writer(out, delimiter=sep, lineterminator="\n")
    w.writerow(["id", "x0", "x1", "y"])
    # Unlabeled rows both ways: an empty cell and -1.
    for i in range(N):
        label = "" if y[i] == -1 and i % 2 else str(y[i])
        w.writerow([ids[i], repr(float(X[i, 0])), repr(float(X[i, 1])), label])
    return out.getvalue().encode()


def _jsonl_bytes(data):
    X, y, _, ids = data
    rows = [
        {
            "id": ids[i],
            "x0": X[i, 0],
            "x1": X[i, 1],
            "y": None if y[i] < 0 else int(y[i]),
        }
        for i in range(N)
    ]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _columns(data):
    X, y, _, ids = data
    return {"id": ids, "x0": X[:, 0], "x1": X[:, 1], "y": y}


def _write_input(kind, path, data):
    """Write ``data`` as ``kind``; returns the options naming target and drop."""
    X, y, _, _ = data
    row_options = ["--target", "y", "--drop", "id"]
    if kind in ("csv", "tsv", "csv.gz", "csv.bz2", "csv.zst"):
        raw = _csv_bytes(data, sep="\t" if kind == "tsv" else ",")
        if kind == "csv.gz":
            raw = gzip.compress(raw)
        elif kind == "csv.bz2":
            raw = bz2.compress(raw)
        elif kind == "csv.zst":
            with pa.output_stream(str(path), compression="zstd") as out:
                out.write(raw)
            return row_options
        path.write_bytes(raw)
        return row_options
    if kind in ("jsonl", "jsonl.gz"):
        raw = _jsonl_bytes(data)
        path.write_bytes(gzip.compress(raw) if kind == "jsonl.gz" else raw)
        return row_options
    if kind == "parquet":
        pq.write_table(pa.table(_columns(data)), path)
        return row_options
    if kind == "npy":
        np.save(path, np.column_stack([X, y]))
        return ["--target", "2"]
    if kind == "npz":
        np.savez(path, X=X, y=y)
        return ["--target", "y"]
    assert kind == "columns.npz"
    np.savez(path, **_columns(data))
    return row_options


# The input's features as the output names them.
FEATURES = {"npy": ["0", "1"], "npz": ["X0", "X1"]}


def _read_output(kind, path):
    """Every column of the output as a list, read without skssl."""
    if kind in ("csv", "tsv", "csv.gz"):
        opener = gzip.open if kind.endswith(".gz") else open
        with opener(path, "rt", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t" if kind == "tsv" else ","))
        return {k: [r[k] for r in rows] for k in rows[0]}
    if kind in ("jsonl", "jsonl.gz"):
        opener = gzip.open if kind.endswith(".gz") else open
        with opener(path, "rt") as fh:
            rows = [json.loads(line) for line in fh]
        return {k: [r[k] for r in rows] for k in rows[0]}
    if kind == "parquet":
        return pq.read_table(path).to_pydict()
    out = dict(np.load(path))
    if "X" in out and out["X"].ndim == 2:
        out.update({f"X{j}": out["X"][:, j] for j in range(out["X"].shape[1])})
    if "data" in out:
        out.update({str(j): out["data"][:, j] for j in range(out["data"].shape[1])})
    return {k: list(v) for k, v in out.items() if v.ndim == 1}


INPUTS = [
    "csv", "tsv", "csv.gz", "csv.bz2", "csv.zst", "jsonl", "jsonl.gz", "parquet",
    "npy", "npz", "columns.npz",
]  # fmt: skip
OUTPUTS = ["csv", "tsv", "csv.gz", "jsonl", "jsonl.gz", "parquet", "npz"]


@pytest.mark.parametrize("out_kind", OUTPUTS)
@pytest.mark.parametrize("in_kind", INPUTS)
def test_round_trip(tmp_path, data, in_kind, out_kind, capsys):
    X, _, y_true, ids = data
    src = tmp_path / f"in.{in_kind}"
    options = _write_input(in_kind, src, data)
    out = tmp_path / f"out.{out_kind}"
    status = cli.main(["label", str(src), *options, "--out", str(out), "--proba"])
    assert status == 0, capsys.readouterr().err
    columns = _read_output(out_kind, out)
    assert [int(v) for v in columns["predicted_label"]] == y_true.tolist()
    certainty = np.array(columns["certainty"], dtype=float)
    assert np.all((certainty >= 0) & (certainty <= 1))
    proba = np.column_stack([np.array(columns[f"proba_{c}"], float) for c in range(3)])
    assert np.allclose(proba.sum(axis=1), 1.0)
    # The input's features come back as they went in.
    names = FEATURES.get(in_kind.split(".")[-1] if in_kind != "columns.npz" else "")
    for j, name in enumerate(names or ["x0", "x1"]):
        assert np.array_equal(np.array(columns[name], dtype=float), X[:, j])
    if in_kind not in ("npy", "npz"):
        assert list(columns["id"]) == ids.tolist()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, out.name])
