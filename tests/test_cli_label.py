"""``skssl label`` end to end, each case through the console script in a process.

The files are tiny so a run costs the interpreter start-up and little else.
Round trips over every pair of formats run in process in
``test_cli_label_formats.py``.
"""

import csv
import gzip
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_wine, make_blobs

from skssl import cli
from skssl._label import list_methods

ENV = {
    **os.environ,
    # Tiny networks run faster on one thread than on a contended team.
    "OMP_NUM_THREADS": "1",
    "NO_COLOR": "",
}


def _command():
    # The console script pip installed next to this interpreter; ``python -m
    # skssl`` where it is missing (e.g. a checkout that is not installed).
    script = Path(sys.executable).parent / ("skssl.exe" if os.name == "nt" else "skssl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "skssl"]


def skssl(*args, cwd=None, stdin=None, umask=-1, text=True):
    return subprocess.run(
        [*_command(), "label", *map(str, args)],
        capture_output=True,
        input=stdin,
        text=text,
        cwd=cwd,
        env=ENV,
        timeout=300,
        umask=umask,
        check=False,
    )


def error_line(result):
    """The one line a failure prints, checked to be one line without a trace."""
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("skssl label: error: ")
    return lines[0]


def in_process(capsys, *args):
    """``skssl label`` through :func:`skssl.cli.main` in this process: the same
    code minus the interpreter start-up, for the many small failure cases."""
    status = cli.main(["label", *map(str, args)])
    return status, capsys.readouterr()


def error_in_process(capsys, *args):
    status, captured = in_process(capsys, *args)
    assert status == 1
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("skssl label: error: ")
    return captured.err.strip()


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def blobs():
    X, y_true = make_blobs(60, centers=3, cluster_std=0.5, random_state=0)
    names = np.array(["red", "green", "blue"])
    y = np.full(60, "", dtype=object)
    for c in range(3):
        y[np.flatnonzero(y_true == c)[:2]] = names[c]
    return X, y, names[y_true]


def write_points(path, blobs, sep=",", encoding="utf-8"):
    X, y, _ = blobs
    with open(path, "w", newline="", encoding=encoding) as fh:
        w = csv.writer(fh, delimiter=sep)
        w.writerow(["id", "x0", "x1", "colour"])
        for i, (row, label) in enumerate(zip(X, y, strict=True)):
            w.writerow([f"p{i}", f"{row[0]:.5f}", f"{row[1]:.5f}", label])
    return path


@pytest.fixture
def points(tmp_path, blobs):
    return write_points(tmp_path / "points.csv", blobs)


def predicted(rows):
    return np.array([r["predicted_label"] for r in rows])


def test_labels_every_row_and_reports_one_line(points, tmp_path, blobs):
    _, y, truth = blobs
    out = tmp_path / "labeled.csv"
    before = points.read_bytes()
    res = skssl(points, "--target", "colour", "--out", out, "--drop", "id", "--proba")
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    summary = res.stderr.strip()
    assert "\n" not in summary
    for part in (
        "60 rows: 6 labeled in the input, 54 labeled now",
        "per class",
        "red: ",
        "certainty of the 54 unlabeled rows: quartiles",
        " s -> ",
    ):
        assert part in summary
    rows = read_csv(out)
    assert list(rows[0]) == [
        "id", "x0", "x1", "colour", "predicted_label", "certainty",
        "proba_blue", "proba_green", "proba_red",
    ]  # fmt: skip
    assert (predicted(rows) == truth).mean() > 0.95
    for r, given in zip(rows, y, strict=True):
        if given:
            assert r["predicted_label"] == given and float(r["certainty"]) == 1.0
    assert points.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labeled.csv", "points.csv"]


@pytest.fixture(scope="module")
def wine_csv(tmp_path_factory):
    X, y = load_wine(return_X_y=True)
    rng = np.random.default_rng(0)
    target = np.full(len(y), "", dtype=object)
    for c in range(3):
        target[rng.choice(np.flatnonzero(y == c), 3, replace=False)] = str(c)
    path = tmp_path_factory.mktemp("wine") / "wine.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([f"f{j}" for j in range(X.shape[1])] + ["class"])
        w.writerows([*row, t] for row, t in zip(X, target, strict=True))
    return path, y


def test_graph_methods_standardize_by_default(wine_csv, tmp_path):
    path, truth = wine_csv

    def accuracy(*options):
        out = tmp_path / "o.csv"
        res = skssl(path, "--target", "class", "--out", out, *options)
        assert res.returncode == 0, res.stderr
        return (predicted(read_csv(out)).astype(int) == truth).mean()

    # Wine's columns range over 0.1 to 1000: raw distances follow one column.
    assert accuracy() > accuracy("--scale", "none") + 0.1


def test_semicolon_delimiter_is_detected(tmp_path, blobs):
    src = write_points(tmp_path / "points.csv", blobs, sep=";")
    res = skssl(src, "--target", "colour", "--out", tmp_path / "o.csv", "--drop", "id")
    assert res.returncode == 0, res.stderr
    assert (predicted(read_csv(tmp_path / "o.csv")) == blobs[2]).mean() > 0.95


@pytest.mark.parametrize("sep", ["\t", "|"])
def test_other_delimiters_are_detected(tmp_path, blobs, sep, capsys):
    src = write_points(tmp_path / "points.csv", blobs, sep=sep)
    out = tmp_path / "o.csv"
    assert (
        in_process(capsys, src, "--target", "colour", "--out", out, "--drop", "id")[0]
        == 0
    )
    assert (predicted(read_csv(out)) == blobs[2]).mean() > 0.95


def test_explicit_separator(tmp_path, capsys):
    src = tmp_path / "d.csv"
    src.write_text("a:b:y\n0:0:0\n0.1:0:\n5:5:1\n5:5.1:\n")
    out = tmp_path / "o.csv"
    assert "--sep" in error_in_process(capsys, src, "--target", "y", "--out", out)
    status, _ = in_process(capsys, src, "--target", "y", "--out", out, "--sep", ":",
                           "--n-neighbors", "1")  # fmt: skip
    assert status == 0
    assert predicted(read_csv(out)).tolist() == ["0", "0", "1", "1"]


def test_compressed_input(tmp_path, blobs):
    plain = write_points(tmp_path / "points.csv", blobs)
    src = tmp_path / "points.csv.gz"
    src.write_bytes(gzip.compress(plain.read_bytes()))
    res = skssl(
        src, "--target", "colour", "--out", tmp_path / "o.csv.gz", "--drop", "id"
    )
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(gzip.open(tmp_path / "o.csv.gz", "rt")))
    assert (predicted(rows) == blobs[2]).mean() > 0.95


TINY = "a,b,y\n0,0,0\n0.1,0,\n5,5,1\n5,5.1,\n"


def test_missing_feature_values(tmp_path):
    src = tmp_path / "na.csv"
    src.write_text("a,b,y\n0,0,0\n0.1,,\n5,NA,1\n5,5.1,\n")
    line = error_line(skssl(src, "--target", "y", "--out", tmp_path / "o.csv"))
    assert "missing values in feature column(s) 'b' (2 rows)" in line
    assert "--impute" in line
    res = skssl(src, "--target", "y", "--out", tmp_path / "o.csv", "--impute", "mean",
                "--n-neighbors", "1")  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = read_csv(tmp_path / "o.csv")
    assert predicted(rows).tolist() == ["0", "0", "1", "1"]
    # The output repeats the input's cells, not the imputed values.
    assert [r["b"] for r in rows] == ["0", "", "", "5.1"]


def test_byte_order_mark(tmp_path):
    src = tmp_path / "bom.csv"
    src.write_text(TINY, encoding="utf-8-sig")
    res = skssl(src, "--target", "y", "--drop", "a", "--out", tmp_path / "o.csv",
                "--n-neighbors", "1")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "o.csv").read_bytes().startswith(b"a,b,y,predicted_label")


def test_encoding(tmp_path):
    src = tmp_path / "latin.csv"
    src.write_bytes(TINY.replace("a,b", "café,b").encode("latin-1"))
    line = error_line(skssl(src, "--target", "y", "--out", tmp_path / "o.csv"))
    assert "not valid utf-8" in line and "--encoding latin-1" in line
    res = skssl(src, "--target", "y", "--out", tmp_path / "o.csv",
                "--encoding", "latin-1", "--n-neighbors", "1")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert read_csv(tmp_path / "o.csv")[0]["café"] == "0"


def test_duplicate_column_names(tmp_path):
    src = tmp_path / "dup.csv"
    src.write_text("a,y,y\n0,0,0\n0.1,,0\n5,1,1\n5.1,,1\n")
    line = error_line(skssl(src, "--target", "y", "--out", tmp_path / "o.csv"))
    assert "column name 'y' appears 2 times (columns 2, 3)" in line
    assert not (tmp_path / "o.csv").exists()


def test_drop_out_of_range_on_an_array(tmp_path):
    src = tmp_path / "d.npy"
    np.save(src, np.array([[0, 0.0, 0], [0.1, 0, -1], [5, 5, 1], [5.1, 5, -1]]))
    res = skssl(src, "--target", "2", "--drop", "4", "--out", tmp_path / "o.npz")
    assert "--drop 4 is out of range for 3 columns" in error_line(res)


@pytest.mark.parametrize(
    "drop, message",
    [
        ("-4", "--drop -4 is out of range for 3 columns"),
        ("x", "--drop takes column indices"),
        ("1.5", "--drop takes column indices"),
        ("2", "--drop cannot leave out the target column 2"),
    ],
)
def test_drop_on_arrays(tmp_path, drop, message, capsys):
    src = tmp_path / "d.npy"
    np.save(src, np.array([[0, 0.0, 0], [0.1, 0, -1], [5, 5, 1], [5.1, 5, -1]]))
    line = error_in_process(
        capsys, src, "--target", "2", "--drop", drop, "--out", tmp_path / "o.npz"
    )
    assert message in line


# A run whose write blocks after its first bytes, so a signal lands mid-write.
SLOW_WRITE = """
import sys, time
from skssl import _tabular, cli

def slow_write(table, columns, sink, fmt):
    sink.write(b"partial")
    sink.flush()
    print("writing", file=sys.stderr, flush=True)
    time.sleep(120)

_tabular.write_table = slow_write
sys.exit(cli.main(sys.argv[1:]))
"""


def _default_signals():
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
@pytest.mark.parametrize(
    "signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)]
)
def test_signal_while_writing_leaves_no_temporary_file(tmp_path, signum, status):
    src = tmp_path / "in.csv"
    src.write_text(TINY)
    out = tmp_path / "out.csv"
    out.write_text("the previous output\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SLOW_WRITE,
            "label",
            src,
            "--target",
            "y",
            "--out",
            out,
            "--n-neighbors",
            "1",
        ],  # fmt: skip
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        # As from an interactive shell: a job started in the background of a
        # script inherits SIGINT ignored, and Python then never raises
        # KeyboardInterrupt.
        preexec_fn=_default_signals,
    )
    try:
        for line in proc.stderr:
            if line.strip() == "writing":
                break
        assert len(list(tmp_path.glob(".out.csv.*.tmp"))) == 1
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == status
    finally:
        proc.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]
    assert out.read_text() == "the previous output\n"


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_output_permissions_and_replacement(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(TINY)
    args = ("--target", "y", "--n-neighbors", "1", "--out")
    res = skssl(src, *args, tmp_path / "shared.csv", umask=0o022)
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE((tmp_path / "shared.csv").stat().st_mode) == 0o644
    assert "replacing" not in res.stderr
    res = skssl(src, *args, tmp_path / "private.csv", umask=0o077)
    assert stat.S_IMODE((tmp_path / "private.csv").stat().st_mode) == 0o600
    existing = tmp_path / "existing.csv"
    existing.write_text("old\n")
    existing.chmod(0o640)
    res = skssl(src, *args, existing, umask=0o022)
    assert res.returncode == 0, res.stderr
    assert f"skssl label: replacing the existing {existing}" in res.stderr
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    assert existing.read_text().startswith("a,b,y,predicted_label")


def test_never_overwrites_the_input(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text(TINY)
    line = error_line(skssl(src, "--target", "y", "--out", src))
    assert "the output is the input file" in line
    link = tmp_path / "link.csv"
    link.symlink_to(src)
    line = error_in_process(capsys, src, "--target", "y", "--out", link)
    assert "the output is the input file" in line
    assert src.read_text() == TINY


@pytest.mark.parametrize(
    "content, args, message",
    [
        (TINY, ["--target", "nope"], "no column named 'nope' for --target"),
        ("a,y\n1,0\n2,1\n", ["--target", "y"], "no unlabeled row"),
        ("a,y\n1,\n2,\n", ["--target", "y"], "no labeled row"),
        (
            "a,s,y\n1,x,0\n2,z,\n",
            ["--target", "y"],
            "non-numeric feature column(s) 's'",
        ),
        ("", ["--target", "y"], "the file is empty"),
        ("a,y\n1,0\n2\n3,\n", ["--target", "y"], "line 3 has 1 field(s)"),
        (TINY, ["--target", "y", "--drop", "zz"], "--drop names no column 'zz'"),
        (TINY, ["--target", "y", "--param", "alpha=5"], "--param alpha=5: The 'alpha'"),
        (TINY, ["--target", "y", "--alpha", "2"], "--alpha: The 'alpha' parameter"),
        (TINY, ["--target", "y", "--param", "nope=1"], "has no parameter 'nope'"),
        (
            TINY,
            ["--target", "y", "--max-epochs", "3"],
            "--max-epochs: LabelSpreadingCG",
        ),
        (TINY, ["--target", "y", "--method", "zz"], "--method 'zz' names no method"),
        (TINY, ["--target", "y", "--n-neighbors", "9"], "n_neighbors=9"),
        (TINY, ["--target", "y", "--encoding", "zz"], "--encoding 'zz' is not"),
        (
            TINY,
            ["--target", "y", "--method", "dlp", "--param", "module=5"],
            "--param module=5: module takes a class",
        ),
        (
            "a,b,predicted_label,y\n0,0,1,0\n1,1,1,\n",
            ["--target", "y"],
            "the input has columns named predicted_label",
        ),
    ],
)
def test_failures_are_one_line(tmp_path, content, args, message, capsys):
    src = tmp_path / "in.csv"
    src.write_text(content)
    out = tmp_path / "out.csv"
    line = error_in_process(capsys, src, "--out", out, *args)
    assert message in line
    assert not out.exists()
    assert src.read_text() == content


def test_output_problems_fail_before_reading(tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text(TINY)
    (tmp_path / "folder.csv").mkdir()
    for out, message in [
        (tmp_path / "no" / "o.csv", "does not exist"),
        (tmp_path / "folder.csv", "is a folder"),
        (tmp_path / "o.xlsx", "--out-format"),
    ]:
        assert message in error_in_process(capsys, src, "--target", "y", "--out", out)


def test_stdin_and_stdout(tmp_path):
    res = skssl("-", "--target", "y", "--out", "-", "--n-neighbors", "1", "--verbose",
                stdin=TINY)  # fmt: skip
    assert res.returncode == 0, res.stderr
    # Standard output carries the data only; the log is on standard error.
    assert res.stdout.splitlines() == [
        "a,b,y,predicted_label,certainty",
        "0,0,0,0,1",
        "0.1,0,,0,1",
        "5,5,1,1,1",
        "5,5.1,,1,1",
    ]
    assert "standard input holds CSV" in res.stderr and "4 rows" in res.stderr
    packed = gzip.compress(TINY.encode())
    res = skssl("-", "--target", "y", "--out", "-", "--out-format", "jsonl",
                "--n-neighbors", "1", stdin=packed, text=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode().splitlines()[1] == (
        '{"a": 0.1, "b": 0.0, "y": "", "predicted_label": 0, "certainty": 1.0}'
    )


def test_min_certainty_leaves_rows_unlabeled(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a,y\n0,0\n1,\n2,\n3,\n4,\n5,1\n")
    out = tmp_path / "o.csv"
    res = skssl(src, "--target", "y", "--out", out, "--min-certainty", "0.5",
                "--n-neighbors", "2")  # fmt: skip
    assert res.returncode == 0, res.stderr
    rows = read_csv(out)
    left = [r for r in rows if r["predicted_label"] == ""]
    assert left and all(float(r["certainty"]) < 0.5 for r in left)
    assert all(float(r["certainty"]) >= 0.5 for r in rows if r["predicted_label"])
    assert f"{len(left)} left unlabeled (certainty under --min-certainty 0.5)" in (
        res.stderr
    )
    assert "between 0 and 1" in skssl(src, "--target", "y", "--out", out,
                                      "--min-certainty", "2").stderr  # fmt: skip


def test_help_lists_every_method():
    res = subprocess.run(
        [*_command(), "label", "--help"], capture_output=True, text=True, env=ENV
    )
    assert res.returncode == 0
    flat = " ".join(res.stdout.split())
    for name, cls in list_methods().items():
        assert f"{name}" in flat and cls.__name__ in flat


def test_deep_method_log_has_no_colour_off_a_terminal(tmp_path, blobs):
    src = write_points(tmp_path / "points.csv", blobs)
    res = skssl(src, "--target", "colour", "--drop", "id", "--out", "-",
                "--method", "cclp", "--max-epochs", "3", "-v")  # fmt: skip
    assert res.returncode == 0, res.stderr
    # skorch's epoch table colours its best values; not in a log file.
    assert "train_loss" in res.stderr and "\x1b[" not in res.stderr
    assert "features as read" in res.stderr
    assert res.stdout.startswith("id,x0,x1,colour,predicted_label,certainty\n")


# ------------------------------------------------- every estimator, in process


@pytest.fixture
def one_torch_thread():
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(list_methods()))
def test_every_exported_estimator_labels(
    name, points, tmp_path, blobs, one_torch_thread
):
    cls = list_methods()[name]
    quick = []
    if "max_epochs" in cls().get_params():
        quick = ["--max-epochs", "2", "--param", "min_batches_per_epoch=2"]
    out = tmp_path / "o.csv"
    status = cli.main(
        [
            "label",
            str(points),
            "--target",
            "colour",
            "--drop",
            "id",
            "--out",
            str(out),
            "--method",
            name,
            *quick,
        ]  # fmt: skip
    )
    assert status == 0
    rows = read_csv(out)
    assert len(rows) == 60 and all(0 <= float(r["certainty"]) <= 1 for r in rows)
    given = [r for r in rows if r["colour"]]
    assert all(r["predicted_label"] == r["colour"] for r in given)


def test_methods_are_found_by_several_names():
    from skssl import LabelSpreadingCG
    from skssl._label import find_method

    for text in ("label-spreading-cg", "LabelSpreadingCG", "lsc", "label-spreading"):
        assert find_method(text) is LabelSpreadingCG
    assert find_method("dlp").__name__ == "DeepLabelPropagationClassifier"


def test_a_method_that_fails_to_import_is_left_out(monkeypatch):
    import skssl
    from skssl import _label

    monkeypatch.setattr(skssl, "__all__", [*skssl.__all__, "BrokenClassifier"])
    monkeypatch.setitem(skssl._LAZY, "BrokenClassifier", ".does_not_exist")
    assert "broken" not in _label.list_methods()
    assert "label-spreading-cg" in _label.list_methods()
    with pytest.raises(_label.LabelError, match="BrokenClassifier cannot be loaded"):
        _label.find_method("broken")


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_signals_raise_keeps_an_ignored_hangup_ignored():
    from skssl._io import Terminated, signals_raise

    before = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM)}
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        with signals_raise():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)  # ignored: the job goes on
            with pytest.raises(Terminated, match="SIGTERM"):
                os.kill(os.getpid(), signal.SIGTERM)
                signal.sigtimedwait([], 0)  # let the handler run
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is before[signal.SIGTERM]
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
