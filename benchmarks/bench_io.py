"""Reading CSV files and labeling a large one with ``skssl label``.

Two sections, each configuration in a fresh interpreter (:func:`run_worker`),
so its peak RSS is its own:

``--read`` (default)
    A CSV of ``n`` rows (n = 1e5 and 1e6): ``--n-features`` float columns
    rounded to 4 decimals and a label column (-1 for unlabeled), written once
    and read by every reader in turn: skssl's reader (``read_table``: delimiter
    detection, pyarrow's parser, the float32 feature matrix and the targets),
    ``numpy.loadtxt(dtype=float32)`` and ``pandas.read_csv`` where pandas is
    installed (it is skipped otherwise, and the results say so). Seconds of
    the read call alone (imports excluded), median over ``--repeats`` runs
    below 1e6 rows, one run at 1e6.
``--label``
    The whole ``skssl label big.csv --target y --out labeled.csv`` run on the
    1e6-row file (LabelSpreadingCG, backend auto, default scaling): wall time,
    the read and fit times it logs, peak RSS and accuracy on the unlabeled rows.

The data: ``make_manifold_mixture(n, n_features=16, separation=2.0)`` from
``_common`` (10 classes), 10 labels per class (``mask_labels``). Writes
``results/io.json`` and ``results/io.md``.

Examples
--------
    python benchmarks/bench_io.py                     # read section, ~3 min
    python benchmarks/bench_io.py --read --label      # both, ~8 min on 2 cores
    python benchmarks/bench_io.py --quick --out /tmp/io
    python benchmarks/bench_io.py --report
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import (
    RESULTS,
    command_line,
    emit,
    int_list,
    load_average,
    log,
    machine_info,
    make_manifold_mixture,
    markdown_table,
    peak_rss_mib,
    read_json,
    run_worker,
    write_json,
)

READERS = ("skssl", "numpy.loadtxt", "pandas.read_csv")
SCRIPT = Path(__file__)


# --------------------------------------------------------------------------- data


# In 16 dimensions the manifolds of _common's default separation (0.2, chosen
# for 64) overlap: LabelSpreadingCG scores 0.17 at n = 2e4; 2.0 gives 0.93.
SEPARATION = 2.0


def write_csv(path, n, n_features, seed=0):
    """The benchmark CSV and the true labels of its rows."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from skssl.datasets import mask_labels

    X, y_true = make_manifold_mixture(
        n, n_features=n_features, separation=SEPARATION, random_state=seed
    )
    y = mask_labels(y_true, per_class=10, random_state=seed)
    columns = {
        f"x{j}": np.round(X[:, j].astype(np.float64), 4) for j in range(X.shape[1])
    }
    columns["y"] = y
    pacsv.write_csv(pa.table(columns), path)
    return y_true, y


# ------------------------------------------------------------------------ workers


def own_peak_mib():
    """Peak RSS of this process since it started.

    Linux carries ``ru_maxrss`` over ``fork`` + ``exec``, so a worker started
    by a parent that once held a large data set would report the parent's
    peak; ``VmHWM`` belongs to the worker's own address space.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


def _read(reader, path):
    if reader == "skssl":
        from skssl._tabular import read_table

        return lambda: read_table(path, "y").X.shape[0]
    if reader == "numpy.loadtxt":
        return lambda: np.loadtxt(
            path, delimiter=",", skiprows=1, dtype=np.float32
        ).shape[0]
    import pandas as pd

    return lambda: len(pd.read_csv(path))


def worker_read(reader, path, repeats):
    # A first read of the file's first lines pays for the lazy imports, which
    # are no part of reading.
    head = Path(path).with_suffix(".head.csv")
    with open(path) as src:
        head.write_text("".join(next(src) for _ in range(101)))
    _read(reader, str(head))()
    head.unlink()
    read = _read(reader, path)
    times, rows = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        rows = read()
        times.append(time.perf_counter() - start)
    emit(
        {
            "seconds": float(np.median(times)),
            "rows": rows,
            "peak_rss_mib": own_peak_mib(),
        }
    )


def worker_label(path, out):
    import contextlib
    import io

    from skssl import cli

    log_text = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(log_text):
        status = cli.main(
            ["label", str(path), "--target", "y", "--out", str(out), "-v"]
        )
    seconds = time.perf_counter() - start
    text = log_text.getvalue()

    def logged(pattern):
        found = re.search(pattern, text)
        return float(found.group(1)) if found else None

    emit(
        {
            "status_code": status,
            "seconds": seconds,
            "read_seconds": logged(r"features from .* in ([\d.]+) s"),
            "fit_seconds": logged(r"fitted in ([\d.]+) s"),
            "log": [
                line for line in text.splitlines() if line.startswith(("skssl", "["))
            ],
            "peak_rss_mib": own_peak_mib(),
        }
    )


# ------------------------------------------------------------------------ sections


def run_read(args, folder):
    runs, notes = [], []
    try:
        import pandas  # noqa: F401
    except ImportError:
        notes.append("pandas is not installed here: pandas.read_csv was skipped.")
    readers = [r for r in READERS if r != "pandas.read_csv" or not notes]
    for n in args.sizes:
        path = folder / f"read_{n}.csv"
        write_csv(path, n, args.n_features)
        size_mib = path.stat().st_size / 2**20
        repeats = 1 if n >= 1_000_000 else args.repeats
        for reader in readers:
            log(f"read n={n} ({size_mib:.0f} MiB) with {reader}")
            rec = run_worker(
                SCRIPT, ["read", reader, str(path), str(repeats)], args.timeout
            )
            rec.update(n=n, reader=reader, file_mib=size_mib, repeats=repeats)
            runs.append(rec)
        path.unlink()
    return runs, notes


def run_label(args, folder):
    n = args.label_size
    path, out = folder / f"label_{n}.csv", folder / "labeled.csv"
    y_true, y = write_csv(path, n, args.n_features)
    log(f"label n={n} ({path.stat().st_size / 2**20:.0f} MiB)")
    rec = run_worker(SCRIPT, ["label", str(path), str(out)], args.timeout)
    rec.update(n=n, file_mib=path.stat().st_size / 2**20)
    if rec.get("status") == "ok" and out.exists():
        import pyarrow.csv as pacsv

        predicted = pacsv.read_csv(out).column("predicted_label").to_numpy()
        unlabeled = y == -1
        rec["accuracy"] = float(np.mean(predicted[unlabeled] == y_true[unlabeled]))
        rec["output_mib"] = out.stat().st_size / 2**20
    return rec


# -------------------------------------------------------------------------- report


def _fmt(seconds):
    return "—" if seconds is None else f"{seconds:.2f}"


def report(results):
    machine = results["machine"]
    lines = [
        "# Reading CSV files and labeling a large one",
        "",
        f"Machine: {machine['platform']}, {machine['cpu_count']} CPUs, numpy "
        f"{machine['numpy']}, pyarrow {results.get('pyarrow')}; shared with other "
        "jobs (`others cores` is the CPU time other processes took during each run). "
        f"Command: `{results['command']}`.",
        "",
        f"Data: `make_manifold_mixture(n, n_features={results['n_features']}, "
        f"separation={SEPARATION})`, {results['n_features']} float columns rounded "
        "to 4 decimals and a label column (-1 = unlabeled; 10 labeled rows per "
        "class, 10 classes).",
        "",
    ]
    lines += [f"Note: {note}" for note in results.get("notes", [])]
    if results.get("read"):
        lines += ["", "## Reading the same CSV file", ""]
        lines += [
            "Seconds of the read call alone (median of the repeats), peak RSS of "
            "the process, and the time relative to skssl's reader.",
            "",
        ]
        rows = []
        skssl_time = {
            r["n"]: r.get("seconds") for r in results["read"] if r["reader"] == "skssl"
        }
        for r in results["read"]:
            ok = r.get("status") == "ok"
            base = skssl_time.get(r["n"])
            ratio = f"{r['seconds'] / base:.1f}×" if ok and base else "—"
            rows.append(
                [
                    f"{r['n']:,}",
                    f"{r['file_mib']:.0f}",
                    r["reader"],
                    _fmt(r["seconds"]) if ok else r.get("status"),
                    ratio,
                    f"{r['peak_rss_mib']:.0f}" if ok else "—",
                    r.get("others_cores", "—"),
                ]
            )
        lines += markdown_table(
            rows,
            [
                "rows",
                "MiB",
                "reader",
                "seconds",
                "vs skssl",
                "peak RSS MiB",
                "others cores",
            ],
        )
    label = results.get("label")
    if label:
        lines += ["", "## The whole labeling run", ""]
        lines += [
            f"`skssl label label_{label['n']}.csv --target y --out labeled.csv -v` "
            "(LabelSpreadingCG, backend auto, standardized features) in a fresh "
            "interpreter; read and fit are the times the run logs.",
            "",
        ]
        if label.get("status") == "ok":
            row = [
                f"{label['n']:,}",
                f"{label['file_mib']:.0f}",
                _fmt(label.get("read_seconds")),
                _fmt(label.get("fit_seconds")),
                _fmt(label.get("seconds")),
                f"{label['peak_rss_mib']:.0f}",
                f"{label.get('accuracy', float('nan')):.3f}",
                label.get("others_cores", "—"),
            ]
            lines += markdown_table(
                [row],
                [
                    "rows",
                    "MiB",
                    "read s",
                    "fit s",
                    "whole run s",
                    "peak RSS MiB",
                    "accuracy (unlabeled)",
                    "others cores",
                ],
            )
            lines += ["", "The run's log:", "", "```text", *label.get("log", []), "```"]
        else:
            lines.append(f"The run did not finish: {label.get('status')}.")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--read", action="store_true", help="reader comparison")
    parser.add_argument("--label", action="store_true", help="the 1e6-row labeling run")
    parser.add_argument("--sizes", type=int_list, default=[100_000, 1_000_000])
    parser.add_argument("--label-size", type=int_list, default=[1_000_000])
    parser.add_argument("--n-features", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--quick", action="store_true", help="1e4 rows, one repeat")
    parser.add_argument("--out", type=Path, help="results prefix (default: results/io)")
    parser.add_argument("--report", action="store_true", help="markdown from the json")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, *rest = args.worker
        if kind == "read":
            worker_read(rest[0], rest[1], int(rest[2]))
        else:
            worker_label(*rest)
        return
    args.label_size = args.label_size[0]
    if args.quick:
        args.sizes, args.label_size, args.repeats = [10_000], 10_000, 1
    prefix = args.out or RESULTS / "io"
    json_path, md_path = prefix.with_suffix(".json"), prefix.with_suffix(".md")
    if not args.report:
        import pyarrow

        results = read_json(json_path) or {}
        results.update(
            machine=machine_info(),
            command=command_line(),
            n_features=args.n_features,
            pyarrow=pyarrow.__version__,
            load_before=load_average(),
        )
        folder = Path(tempfile.mkdtemp(prefix="skssl-bench-io-"))
        try:
            if args.read or not args.label:
                results["read"], results["notes"] = run_read(args, folder)
            if args.label:
                results["label"] = run_label(args, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        results["load_after"] = load_average()
        write_json(json_path, results)
    results = read_json(json_path)
    md_path.write_text(report(results))
    log(f"wrote {md_path}")


if __name__ == "__main__":
    sys.exit(main())
