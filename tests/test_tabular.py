import csv

import numpy as np
import pytest

from skssl._tabular import TableError, check_output_path, read_table, write_table


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


@pytest.fixture
def csv_file(tmp_path):
    path = tmp_path / "data.csv"
    _write_csv(
        path,
        ["a", "b", "species", "note"],
        [
            [1.0, 2.0, "cat", "x"],
            [1.5, 2.5, "", "y"],
            [3.0, 0.5, "dog", "z"],
            [3.1, 0.4, "NaN", "w"],
            [0.9, 2.2, "-1", "v"],
        ],
    )
    return path


def test_csv_roundtrip_keeps_rows_and_appends(csv_file, tmp_path):
    table = read_table(csv_file, "species", drop=["note"])
    assert table.X.dtype == np.float32 and table.X.shape == (5, 2)
    assert table.feature_names == ["a", "b"]
    assert table.y.tolist() == ["cat", -1, "dog", -1, -1]
    out = tmp_path / "out.csv"
    write_table(
        table, out, {"pred": ["cat", "cat", "dog", "dog", "cat"], "c": [1.0] * 5}
    )
    rows = list(csv.reader(open(out)))
    assert rows[0] == ["a", "b", "species", "note", "pred", "c"]
    assert rows[2] == ["1.5", "2.5", "", "y", "cat", "1.0"]
    assert len(rows) == 6


def test_integer_labels_and_custom_unlabeled_value(tmp_path):
    path = tmp_path / "d.csv"
    _write_csv(path, ["x", "y"], [[0, 3], [1, "?"], [2, 7], [3, "7.0"]])
    table = read_table(path, "y", unlabeled_value="?")
    assert table.y.tolist() == [3, -1, 7, 7]


def test_non_numeric_features_named(csv_file):
    with pytest.raises(TableError, match=r"non-numeric feature column\(s\) \['note'\]"):
        read_table(csv_file, "species")


@pytest.mark.parametrize(
    "target, drop, match",
    [
        ("nope", (), "no column named 'nope'"),
        ("species", ["zzz"], "unknown column"),
        ("species", ["species"], "cannot remove the target"),
    ],
)
def test_column_errors(csv_file, target, drop, match):
    with pytest.raises(TableError, match=match):
        read_table(csv_file, target, drop=drop)


def test_unreadable_and_empty_files(tmp_path):
    with pytest.raises(TableError, match="no such file"):
        read_table(tmp_path / "missing.csv", "y")
    with pytest.raises(TableError, match="unsupported file type"):
        read_table(tmp_path / "data.txt", "y")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(TableError, match="empty"):
        read_table(tmp_path / "empty.csv", "y")
    (tmp_path / "head.csv").write_text("a,y\n")
    with pytest.raises(TableError, match="no rows"):
        read_table(tmp_path / "head.csv", "y")
    (tmp_path / "ragged.csv").write_text("a,y\n1,2\n3\n")
    with pytest.raises(TableError, match="line 3 has 1 fields"):
        read_table(tmp_path / "ragged.csv", "y")
    (tmp_path / "bin.npy").write_bytes(b"not numpy")
    with pytest.raises(TableError, match="cannot read"):
        read_table(tmp_path / "bin.npy", "0")


def test_npy_target_by_index(tmp_path):
    arr = np.array([[0.0, 1.0, 0], [1.0, 0.0, -1], [2.0, 2.0, 1]])
    np.save(tmp_path / "a.npy", arr)
    table = read_table(tmp_path / "a.npy", "-1")
    assert table.X.shape == (3, 2) and table.y.tolist() == [0, -1, 1]
    write_table(table, tmp_path / "o.npz", {"pred": [0, 0, 1]})
    out = np.load(tmp_path / "o.npz")
    assert np.array_equal(out["data"], arr) and out["pred"].tolist() == [0, 0, 1]
    with pytest.raises(TableError, match="column index"):
        read_table(tmp_path / "a.npy", "label")
    with pytest.raises(TableError, match="out of range"):
        read_table(tmp_path / "a.npy", "5")


def test_npz_features_and_labels(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 3)), y=np.array([0, -1, 1, -1]))
    table = read_table(tmp_path / "d.npz", "y")
    assert table.X.shape == (4, 3) and table.y.tolist() == [0, -1, 1, -1]
    with pytest.raises(TableError, match="no array named 'labels'"):
        read_table(tmp_path / "d.npz", "labels")
    np.savez(tmp_path / "two.npz", X=np.ones((4, 3)), Z=np.ones((4, 2)), y=np.zeros(4))
    with pytest.raises(TableError, match="--features"):
        read_table(tmp_path / "two.npz", "y")
    assert read_table(tmp_path / "two.npz", "y", features="Z").X.shape == (4, 2)


def test_parquet_roundtrip(tmp_path):
    pa = pytest.importorskip("pyarrow", reason="Parquet support is optional")
    import pyarrow.parquet as pq

    tbl = pa.table({"f": [0.0, 1.0, 2.0], "g": [1, 2, 3], "t": ["a", None, "b"]})
    pq.write_table(tbl, tmp_path / "d.parquet")
    table = read_table(tmp_path / "d.parquet", "t")
    assert table.y.tolist() == ["a", -1, "b"]
    write_table(
        table, tmp_path / "o.parquet", {"pred": np.array(["a", "a", "b"], dtype=object)}
    )
    assert pq.read_table(tmp_path / "o.parquet").column("pred").to_pylist() == [
        "a",
        "a",
        "b",
    ]


def test_output_never_overwrites_input(csv_file, tmp_path):
    table = read_table(csv_file, "species", drop=["note"])
    before = csv_file.read_bytes()
    with pytest.raises(TableError, match="the output is the input"):
        write_table(table, csv_file, {"p": [0] * 5})
    assert csv_file.read_bytes() == before
    with pytest.raises(TableError, match="written as .csv"):
        check_output_path(table, tmp_path / "o.npz")
    with pytest.raises(TableError, match="does not exist"):
        check_output_path(table, tmp_path / "no" / "o.csv")
    with pytest.raises(TableError, match="already exist"):
        write_table(table, tmp_path / "o.csv", {"a": [0] * 5})


def test_failed_write_leaves_nothing(csv_file, tmp_path):
    table = read_table(csv_file, "species", drop=["note"])
    out = tmp_path / "o.csv"
    with pytest.raises(IndexError):
        write_table(table, out, {"p": [0, 1]})  # too short: fails mid-write
    assert not out.exists()
    assert list(tmp_path.glob(".o.csv.*")) == []
