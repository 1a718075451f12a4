"""The ``skssl`` command line.

A few tests start the real console script (and ``python -m skssl``) as a
process; the rest call :func:`skssl.cli.main` in process, which is the same code
path minus the interpreter start-up, to keep the file fast.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import skssl
from skssl import cli


def _script():
    # The console script pip installed next to this interpreter; fall back to
    # ``python -m skssl`` where it is missing (e.g. a non-editable checkout).
    name = "skssl.exe" if os.name == "nt" else "skssl"
    path = Path(sys.executable).parent / name
    return [str(path)] if path.exists() else [sys.executable, "-m", "skssl"]


def run(*args, entry="module"):
    command = [sys.executable, "-m", "skssl"] if entry == "module" else _script()
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=120, check=False
    )


def table_rows(stdout):
    return [
        line.split()
        for line in stdout.splitlines()
        if line.startswith(("digits", "mnist1d"))
    ]


def test_version_from_console_script():
    result = run("--version", entry="script")
    assert result.returncode == 0
    assert result.stdout.strip() == f"skssl {skssl.__version__}"


def test_unknown_command_fails_cleanly():
    result = run("frobnicate")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "invalid choice: 'frobnicate'" in result.stderr
    assert "demo" in result.stderr


def test_demo_quick_prints_table():
    pytest.importorskip("mnist1d")
    result = run("demo", "--quick", "--seed", "1", entry="script")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    header = next(
        line for line in result.stdout.splitlines() if line.startswith("dataset")
    )
    for column in ("labels/class", "method", "accuracy", "time (s)"):
        assert column in header
    rows = table_rows(result.stdout)
    # digits at 1 and 10 labels per class, MNIST-1D at 10, two methods each.
    assert len(rows) == 6
    assert {(r[0], r[2]) for r in rows} == {
        ("digits", "1"),
        ("digits", "10"),
        ("mnist1d", "10"),
    }
    assert sum(r[3] == "LabelSpreadingCG" for r in rows) == 3
    for row in rows:
        accuracy, seconds = float(row[-2]), float(row[-1])
        assert 0.0 <= accuracy <= 1.0
        assert seconds >= 0.0
    # --quick generates 1000 MNIST-1D rows.
    assert all(r[1] == "1000" for r in rows if r[0] == "mnist1d")


def test_demo_is_seeded():
    pytest.importorskip("mnist1d")
    first, _ = cli._run_demo_rows(3, 200)
    second, _ = cli._run_demo_rows(3, 200)
    assert [r.accuracy for r in first] == [r.accuracy for r in second]


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: skssl")
    assert "demo" in out


def test_demo_help_documents_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--seed", "--quick", "--mnist1d-samples"):
        assert option in out


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "the following arguments are required: COMMAND"),
        (["demo", "--seed", "-3"], "--seed: must be 0 or more, got -3"),
        (["demo", "--seed", "abc"], "--seed: expected an integer, got 'abc'"),
        (["demo", "--mnist1d-samples", "50"], "must be at least 200, got 50"),
    ],
)
def test_usage_error_is_one_clear_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err.splitlines()[-1]


def test_failure_inside_a_command_is_one_line(monkeypatch, capsys):
    def broken(seed, mnist1d_samples):
        raise ValueError("per_class=10 exceeds the 3 samples of class 0")

    monkeypatch.setattr(cli, "_run_demo_rows", broken)
    assert cli.main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err == "skssl demo: error: per_class=10 exceeds the 3 samples of class 0\n"


def test_unexpected_failure_points_to_traceback(monkeypatch, capsys):
    def broken(seed, mnist1d_samples):
        raise KeyError("x")

    monkeypatch.setattr(cli, "_run_demo_rows", broken)
    assert cli.main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("skssl demo: internal error: KeyError")
    assert "--traceback" in err
    with pytest.raises(KeyError):
        cli.main(["--traceback", "demo"])


def test_missing_mnist1d_skips_it_with_a_note(monkeypatch, capsys):
    import skssl.datasets

    def no_mnist1d(*args, **kwargs):
        raise ImportError("load_mnist1d needs the mnist1d package")

    monkeypatch.setattr(skssl.datasets, "load_mnist1d", no_mnist1d)
    assert cli.main(["demo", "--quick"]) == 0
    captured = capsys.readouterr()
    rows = table_rows(captured.out)
    assert {r[0] for r in rows} == {"digits"}
    assert "mnist1d skipped" in captured.err
