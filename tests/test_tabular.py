"""Reading and writing the files of ``skssl label`` (``skssl._tabular``)."""

import bz2
import csv
import gzip
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from skssl._tabular import (
    FileFormat,
    TableError,
    column_names,
    input_format,
    output_format,
    read_table,
    sniff_format,
    write_table,
)

ROWS = [
    ["1.0", "2.0", "cat", "x"],
    ["1.5", "2.5", "", "y"],
    ["3.0", "0.5", "dog", "z"],
    ["3.1", "0.4", "NaN", "w"],
    ["0.9", "2.2", "-1", "v"],
]
HEADER = ["a", "b", "species", "note"]


def _csv_text(header=HEADER, rows=ROWS, sep=","):
    out = io.StringIO()
    csv.writer(out, delimiter=sep, lineterminator="\n").writerows([header, *rows])
    return out.getvalue()


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(_csv_text())
    return path


def _write(table, new_columns, fmt):
    sink = io.BytesIO()
    write_table(table, new_columns, sink, fmt)
    return sink.getvalue()


def test_csv_columns_targets_and_features(csv_file):
    table = read_table(csv_file, "species", drop=["note"])
    assert table.X.dtype == np.float32 and table.X.shape == (5, 2)
    assert table.feature_names == ["a", "b"]
    assert table.y.tolist() == ["cat", -1, "dog", -1, -1]
    assert table.columns.column_names == HEADER
    assert "delimiter ','" in table.details


def test_csv_written_back_unchanged_with_new_columns(csv_file):
    table = read_table(csv_file, "species", drop=["note"])
    labels = pa.array(["cat", "cat", "dog", "dog", None])
    text = _write(table, {"pred": labels}, FileFormat("csv")).decode()
    lines = text.splitlines()
    assert lines[0] == "a,b,species,note,pred"
    # Text cells are not quoted when nothing in them needs it; missing is empty.
    assert lines[2] == "1.5,2.5,,y,cat"
    assert lines[5] == "0.9,2.2,-1,v,"


def test_csv_quotes_only_when_a_cell_needs_it(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('id,a,y\n"p, 1",1,0\nq,2,\n')
    table = read_table(path, "y", drop=["id"])
    text = _write(table, {}, FileFormat("csv")).decode()
    assert text.splitlines()[1].startswith('"p, 1",1,')
    tsv = _write(table, {}, FileFormat("csv", sep="\t")).decode()
    assert tsv.splitlines()[1] == "p, 1\t1\t0"


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiter_is_detected(tmp_path, sep):
    path = tmp_path / "d.csv"
    path.write_text(_csv_text(sep=sep))
    table = read_table(path, "species", drop=["note"])
    assert table.feature_names == ["a", "b"]
    assert table.X[2].tolist() == [3.0, 0.5]


def test_delimiter_detection_prefers_consistent_split(tmp_path):
    # Commas inside quoted text must not win over the real delimiter.
    path = tmp_path / "d.csv"
    path.write_text('a;b;note;y\n1;2;"x, y, z";0\n3;4;"w";\n')
    assert read_table(path, "y", drop=["note"]).feature_names == ["a", "b"]


def test_explicit_separator_and_decimal_comma(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a;b;y\n1,5;2;0\n2,5;3;\n")
    with pytest.raises(TableError, match="--decimal ,"):
        read_table(path, "y")
    table = read_table(path, "y", sep=";", decimal=",")
    assert table.X[:, 0].tolist() == [1.5, 2.5]


def test_single_column_asks_for_sep(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a:b:y\n1:2:0\n")
    with pytest.raises(TableError, match="--sep"):
        read_table(path, "y")


@pytest.mark.parametrize(
    "suffix, opener",
    [(".csv.gz", gzip.open), (".csv.bz2", bz2.open), (".tsv.gz", gzip.open)],
)
def test_compressed_csv(tmp_path, suffix, opener):
    path = tmp_path / f"d{suffix}"
    sep = "\t" if ".tsv" in suffix else ","
    with opener(path, "wt") as fh:
        fh.write(_csv_text(sep=sep))
    table = read_table(path, "species", drop=["note"])
    assert table.X.shape == (5, 2) and table.y.tolist()[0] == "cat"


def test_zstd_csv(tmp_path):
    path = tmp_path / "d.csv.zst"
    with pa.output_stream(str(path), compression="zstd") as out:
        out.write(_csv_text().encode())
    assert read_table(path, "species", drop=["note"]).X.shape == (5, 2)


def test_bom_and_encodings(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text("a,b,y\n1,2,0\n3,4,\n", encoding="utf-8-sig")
    table = read_table(path, "y", drop=["a"])
    assert table.columns.column_names == ["a", "b", "y"]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("café,b,y\n1,2,0\n3,4,\n".encode("latin-1"))
    with pytest.raises(TableError, match="not valid utf-8.*--encoding latin-1"):
        read_table(latin, "y")
    table = read_table(latin, "y", encoding="latin-1")
    assert table.feature_names == ["café", "b"]
    with pytest.raises(TableError, match="--encoding 'klingon'"):
        read_table(latin, "y", encoding="klingon")
    utf16 = tmp_path / "u16.csv"
    utf16.write_text("a,b,y\n1,2,0\n3,4,\n", encoding="utf-16")
    assert read_table(utf16, "y", encoding="utf-16").X.shape == (2, 2)


def test_invalid_utf8_in_a_text_column_later_in_the_file(tmp_path):
    path = tmp_path / "d.csv"
    rows = "".join(f"{i},{i % 2}\n" for i in range(30_000))
    path.write_bytes(f"a,y\n{rows}1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(TableError, match="--encoding latin-1"):
        read_table(path, "y")


def test_na_tokens_are_missing_features(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,NA,0\n,2,1\nnull,N/A,\n4,5,\n")
    table = read_table(path, "y")
    assert np.isnan(table.X).sum(axis=0).tolist() == [2, 2]


@pytest.mark.parametrize(
    "content, match",
    [
        ("a,s,y\n1,x,0\n2,z,\n", r"non-numeric feature column\(s\) 's' \(e.g. 'x'\)"),
        ("a,y,y\n1,0,0\n", "column name 'y' appears 2 times"),
        ("", "empty"),
        ("a,y\n", "no rows"),
    ],
)
def test_ill_formed_csv(tmp_path, content, match):
    path = tmp_path / "d.csv"
    path.write_text(content)
    with pytest.raises(TableError, match=match):
        read_table(path, "y")


def test_ragged_line_is_numbered(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,0\n3,4\n5,6,\n")
    with pytest.raises(TableError, match="line 3 has 2 field"):
        read_table(path, "y")


def test_non_numeric_value_after_the_sample(tmp_path):
    # The first block passes the sample check; pyarrow finds the bad cell.
    path = tmp_path / "d.csv"
    rows = "".join(f"{i},{i % 2}\n" for i in range(40_000))
    path.write_text(f"a,y\n{rows}oops,1\n")
    with pytest.raises(TableError, match="'a' \\(e.g. 'oops'\\)"):
        read_table(path, "y")


def test_quoted_line_breaks(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('note,a,y\n"two\nlines",1,0\nok,2,\n')
    table = read_table(path, "y", drop=["note"])
    assert table.X[:, 0].tolist() == [1.0, 2.0]
    assert table.columns.column("note").to_pylist() == ["two\nlines", "ok"]


def test_integer_labels_and_custom_unlabeled_value(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n0,3\n1,?\n2,7\n3,7.0\n4, NA \n")
    table = read_table(path, "y", unlabeled_value="?")
    assert table.y.dtype == np.int64 and table.y.tolist() == [3, -1, 7, 7, -1]


@pytest.mark.parametrize(
    "target, drop, match",
    [
        ("nope", (), "no column named 'nope' for --target"),
        ("species", ["zzz"], "--drop names no column 'zzz'"),
        ("species", ["species"], "cannot leave out the target"),
        ("species", ["a", "b", "note"], "no feature column"),
    ],
)
def test_column_errors(csv_file, target, drop, match):
    with pytest.raises(TableError, match=match):
        read_table(csv_file, target, drop=drop)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(TableError, match="no such file"):
        read_table(tmp_path / "missing.csv", "y")
    with pytest.raises(TableError, match="unsupported input type '.txt'"):
        read_table(tmp_path / "data.txt", "y")
    with pytest.raises(TableError, match="a folder"):
        read_table(tmp_path, "y", fmt=FileFormat("csv"))
    (tmp_path / "bin.npy").write_bytes(b"not numpy")
    with pytest.raises(TableError, match="cannot read as .npy"):
        read_table(tmp_path / "bin.npy", "0")


def test_npy_target_and_drop_by_index(tmp_path):
    arr = np.array([[0.0, 1.0, 9.0, 0], [1.0, 0.0, 9.0, -1], [2.0, 2.0, 9.0, 1]])
    np.save(tmp_path / "a.npy", arr)
    table = read_table(tmp_path / "a.npy", "-1", drop=["2"])
    assert table.X.shape == (3, 2) and table.y.tolist() == [0, -1, 1]
    out = np.load(
        io.BytesIO(_write(table, {"p": pa.array([0, 0, 1])}, FileFormat("npz")))
    )
    assert np.array_equal(out["data"], arr) and out["p"].tolist() == [0, 0, 1]
    with pytest.raises(TableError, match="--target takes column indices"):
        read_table(tmp_path / "a.npy", "label")
    with pytest.raises(TableError, match="--target 5 is out of range for 4"):
        read_table(tmp_path / "a.npy", "5")
    with pytest.raises(TableError, match="--drop 4 is out of range for 4 columns"):
        read_table(tmp_path / "a.npy", "3", drop=["4"])
    with pytest.raises(TableError, match="--drop takes column indices.*'x'"):
        read_table(tmp_path / "a.npy", "3", drop=["x"])
    with pytest.raises(TableError, match="--drop cannot leave out the target"):
        read_table(tmp_path / "a.npy", "3", drop=["-1"])


def test_npz_features_labels_and_columns(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 3)), y=np.array([0, -1, 1, -1]))
    table = read_table(tmp_path / "d.npz", "y", drop=["1"])
    assert table.X.shape == (4, 2) and table.y.tolist() == [0, -1, 1, -1]
    assert table.feature_names == ["X0", "X2"]
    with pytest.raises(TableError, match="no array named 'labels'"):
        read_table(tmp_path / "d.npz", "labels")
    np.savez(tmp_path / "two.npz", X=np.ones((4, 3)), Z=np.ones((4, 2)), y=np.zeros(4))
    with pytest.raises(TableError, match="--features"):
        read_table(tmp_path / "two.npz", "y")
    assert read_table(tmp_path / "two.npz", "y", features="Z").X.shape == (4, 2)
    # One 1-D array per column reads like a table, --drop by name.
    np.savez(
        tmp_path / "cols.npz",
        a=np.arange(3.0),
        s=np.array(["u", "v", "w"]),
        y=[1, -1, 2],
    )
    table = read_table(tmp_path / "cols.npz", "y", drop=["s"])
    assert table.feature_names == ["a"] and table.y.tolist() == [1, -1, 2]


def test_parquet_and_jsonl(tmp_path):
    tbl = pa.table({"f": [0.0, 1.0, 2.0], "g": [1, None, 3], "t": ["a", None, "b"]})
    pq.write_table(tbl, tmp_path / "d.parquet")
    table = read_table(tmp_path / "d.parquet", "t")
    assert table.y.tolist() == ["a", -1, "b"]
    assert np.isnan(table.X[1, 1])
    rows = [{"f": 0.5, "t": 1}, {"f": 1.5, "t": None}, {"f": 2, "t": 2}]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = read_table(tmp_path / "d.jsonl", "t")
    assert table.y.tolist() == [1, -1, 2] and table.X[:, 0].tolist() == [0.5, 1.5, 2]
    pq.write_table(pa.table({"s": ["x", "y"], "t": [0, 1]}), tmp_path / "s.parquet")
    with pytest.raises(TableError, match="non-numeric feature column"):
        read_table(tmp_path / "s.parquet", "t")


def test_formats_from_names():
    assert input_format("a.csv.gz") == FileFormat("csv", "gzip")
    assert input_format("a.TSV") == FileFormat("csv", None, "\t")
    assert input_format("a.jsonl.zst") == FileFormat("jsonl", "zstd")
    with pytest.raises(TableError, match="compressed parquet"):
        input_format("a.parquet.gz")
    assert output_format("-") == FileFormat("csv")
    assert output_format("-", "parquet") == FileFormat("parquet")
    assert output_format("o.tsv.bz2") == FileFormat("csv", "bz2", "\t")
    with pytest.raises(TableError, match="--out-format"):
        output_format("o.xlsx")
    with pytest.raises(TableError, match="name the output .npz"):
        output_format("o.npy")


@pytest.mark.parametrize(
    "payload, expected",
    [
        (b"a,y\n1,0\n", FileFormat("csv")),
        (b'{"a": 1}\n', FileFormat("jsonl")),
        (gzip.compress(b"a,y\n1,0\n"), FileFormat("csv", "gzip")),
        (gzip.compress(b'{"a": 1}\n'), FileFormat("jsonl", "gzip")),
        (b"PAR1....", FileFormat("parquet")),
        (b"\x93NUMPY..", FileFormat("npy")),
        (b"PK\x03\x04....", FileFormat("npz")),
    ],
)
def test_sniff_format(tmp_path, payload, expected):
    path = tmp_path / "stdin"
    path.write_bytes(payload)
    assert sniff_format(path) == expected


def test_new_column_replaces_one_of_the_same_name(csv_file):
    table = read_table(csv_file, "species", drop=["note"])
    text = _write(table, {"note": pa.array(list("abcde"))}, FileFormat("csv"))
    assert text.decode().splitlines()[1] == "1,2,cat,a"
    assert column_names(table, FileFormat("csv")) == HEADER


def test_npz_output_of_a_table_has_one_array_per_column(csv_file):
    table = read_table(csv_file, "species", drop=["note"])
    labels = pa.array([1, 1, 2, 2, None])
    out = np.load(io.BytesIO(_write(table, {"pred": labels}, FileFormat("npz"))))
    assert list(out) == [*HEADER, "pred"]
    assert out["a"].dtype == np.float64 and out["note"].tolist() == list("xyzwv")
    # No missing values in NPZ: an unlabeled integer label is -1.
    assert out["pred"].tolist() == [1, 1, 2, 2, -1]


def test_jsonl_output_has_null_for_missing(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,,0\n2,3,\n")
    table = read_table(path, "y")
    text = _write(table, {"p": pa.array([0, None])}, FileFormat("jsonl"))
    rows = [json.loads(line) for line in text.decode().splitlines()]
    assert rows == [
        {"a": 1.0, "b": None, "y": "0", "p": 0},
        {"a": 2.0, "b": 3.0, "y": "", "p": None},
    ]


def test_writing_to_a_pipe_like_sink(csv_file):
    # Parquet and NPZ ask the sink for its position; a pipe cannot seek.
    class Pipe(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.data += b
            return len(b)

    table = read_table(csv_file, "species", drop=["note"])
    for kind in ("parquet", "npz"):
        sink = Pipe()
        write_table(table, {"p": pa.array(range(5))}, sink, FileFormat(kind))
        assert not sink.closed and len(sink.data) > 100
