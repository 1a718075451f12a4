"""``skssl label`` end to end, through the real console script."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import make_blobs


def _skssl(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "skssl", "label", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        # Tiny networks run faster on one thread than on a contended team.
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.fixture(scope="module")
def blobs():
    X, y_true = make_blobs(120, centers=3, cluster_std=0.5, random_state=0)
    y = np.full(120, "", dtype=object)
    names = np.array(["red", "green", "blue"])
    for c in range(3):
        first = np.flatnonzero(y_true == c)[:2]
        y[first] = names[c]
    return X, y, names[y_true]


@pytest.fixture
def csv_input(tmp_path, blobs):
    X, y, _ = blobs
    path = tmp_path / "points.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "x0", "x1", "colour"])
        for i, (row, label) in enumerate(zip(X, y, strict=True)):
            w.writerow([f"p{i}", f"{row[0]:.5f}", f"{row[1]:.5f}", label])
    return path


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_labels_every_row(csv_input, tmp_path, blobs):
    _, y, truth = blobs
    out = tmp_path / "labeled.csv"
    before = csv_input.read_bytes()
    res = _skssl(
        csv_input, "--target", "colour", "--out", out, "--drop", "id", "--proba"
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""  # silent without --verbose
    rows = _read(out)
    assert len(rows) == 120
    assert list(rows[0]) == [
        "id", "x0", "x1", "colour", "predicted_label", "certainty",
        "proba_blue", "proba_green", "proba_red",
    ]  # fmt: skip
    predicted = np.array([r["predicted_label"] for r in rows])
    assert (predicted == truth).mean() > 0.95
    for r, given in zip(rows, y, strict=True):
        if given:
            assert r["predicted_label"] == given and float(r["certainty"]) == 1.0
        p = [float(r[f"proba_{c}"]) for c in ("blue", "green", "red")]
        assert sum(p) == pytest.approx(1.0)
    assert csv_input.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labeled.csv", "points.csv"]


def test_verbose_shows_progress(csv_input, tmp_path):
    res = _skssl(
        csv_input, "--target", "colour", "--out", tmp_path / "o.csv", "--drop", "id",
        "--verbose", "--n-neighbors", "5", "--param", "tol=1e-8",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "read 120 rows" in res.stdout and "wrote" in res.stdout


@pytest.mark.parametrize("method", ["dlp", "cclp"])
def test_deep_methods(csv_input, tmp_path, blobs, method):
    _, _, truth = blobs
    out = tmp_path / "o.csv"
    res = _skssl(
        csv_input, "--target", "colour", "--out", out, "--drop", "id",
        "--method", method, "--max-epochs", "15", "--lr", "0.05",
        "--param", "labeled_per_class=2" if method == "cclp" else "n_warmup_epochs=3",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = _read(out)
    predicted = np.array([r["predicted_label"] for r in rows])
    # The CLI plumbing is under test, not the method: well above chance (1/3).
    assert (predicted == truth).mean() > 0.7
    assert all(0 <= float(r["certainty"]) <= 1 for r in rows)
    assert "Traceback" not in res.stderr


def test_npz_and_npy_inputs(tmp_path, blobs):
    X, y, truth = blobs
    codes = np.where(y == "", -1, np.searchsorted(["blue", "green", "red"], y))
    np.savez(tmp_path / "d.npz", X=X, y=codes)
    res = _skssl(tmp_path / "d.npz", "--target", "y", "--out", tmp_path / "o.npz")
    assert res.returncode == 0, res.stderr
    out = np.load(tmp_path / "o.npz")
    assert np.array_equal(out["X"], X)
    truth_codes = np.searchsorted(["blue", "green", "red"], truth)
    assert (out["predicted_label"] == truth_codes).mean() > 0.95
    np.save(tmp_path / "d.npy", np.column_stack([codes, X]))
    res = _skssl(tmp_path / "d.npy", "--target", "0", "--out", tmp_path / "o2.npz")
    assert res.returncode == 0, res.stderr
    assert np.load(tmp_path / "o2.npz")["certainty"].shape == (120,)


def test_parquet_input(tmp_path, blobs):
    pa = pytest.importorskip("pyarrow", reason="Parquet support needs pyarrow")
    import pyarrow.parquet as pq

    X, y, truth = blobs
    labels = [v if v else None for v in y]
    pq.write_table(
        pa.table({"a": X[:, 0], "b": X[:, 1], "t": labels}), tmp_path / "d.parquet"
    )
    res = _skssl(
        tmp_path / "d.parquet", "--target", "t", "--out", tmp_path / "o.parquet"
    )
    assert res.returncode == 0, res.stderr
    pred = pq.read_table(tmp_path / "o.parquet").column("predicted_label").to_pylist()
    assert (np.array(pred) == truth).mean() > 0.95


def test_custom_unlabeled_value(tmp_path):
    path = tmp_path / "q.csv"
    rows = [
        [0, 0, 1],
        [0.1, 0, "?"],
        [5, 5, 2],
        [5.1, 5, "?"],
        [0, 0.1, "?"],
        [5, 5.1, "?"],
    ]
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([["a", "b", "y"], *rows])
    res = _skssl(path, "--target", "y", "--out", tmp_path / "o.csv",
                 "--unlabeled-value", "?", "--n-neighbors", "2")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert [r["predicted_label"] for r in _read(tmp_path / "o.csv")] == [
        "1", "1", "2", "2", "1", "2",
    ]  # fmt: skip


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("a,y\n1,0\n2,1\n", ["--target", "y"], "no unlabeled row"),
        ("a,y\n1,\n2,\n", ["--target", "y"], "no labeled row"),
        ("a,y\n1,0\n2,\n", ["--target", "nope"], "no column named 'nope'"),
        (
            "a,s,y\n1,x,0\n2,z,\n",
            ["--target", "y"],
            "non-numeric feature column(s) ['s']",
        ),
        ("", ["--target", "y"], "empty"),
        ("a,y\n1,0\n2,1\n3,\n", ["--target", "y", "--param", "alpha=5"], "alpha"),
    ],
)
def test_failures_exit_nonzero_with_one_line(tmp_path, content, args, message):
    src = _write(tmp_path / "in.csv", content)
    out = tmp_path / "out.csv"
    res = _skssl(src, "--out", out, *args)
    assert res.returncode != 0
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert message in lines[0] and "Traceback" not in res.stderr
    assert not out.exists()
    assert src.read_text() == content


def test_refuses_to_overwrite_input_and_unreadable_files(csv_input, tmp_path):
    before = csv_input.read_bytes()
    res = _skssl(csv_input, "--target", "colour", "--out", csv_input, "--drop", "id")
    assert res.returncode != 0 and "input" in res.stderr
    assert csv_input.read_bytes() == before
    res = _skssl(tmp_path / "missing.csv", "--target", "y", "--out", tmp_path / "o.csv")
    assert res.returncode != 0 and "no such file" in res.stderr
    binary = _write(tmp_path / "bad.npz", "not a zip")
    res = _skssl(binary, "--target", "y", "--out", tmp_path / "o.npz")
    assert res.returncode != 0 and "cannot read" in res.stderr
    res = _skssl(csv_input, "--target", "colour", "--out", tmp_path / "o.npz")
    assert res.returncode != 0 and "written as .csv" in res.stderr
