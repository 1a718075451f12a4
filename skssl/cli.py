"""The ``skssl`` command line.

``skssl demo`` compares :class:`~skssl.LabelSpreadingCG` with scikit-learn's
:class:`~sklearn.semi_supervised.LabelSpreading` on offline data and prints a
table. ``skssl label`` labels the unlabeled rows of a CSV, Parquet, JSON Lines
or NumPy file with any of skssl's estimators and writes every row with its
predicted label and certainty; the file formats are in :mod:`skssl._tabular`,
the steps between reading and writing in :mod:`skssl._label`, safe outputs and
signals in :mod:`skssl._io`.

Each subcommand is one ``_add_<name>_parser`` function that registers its
arguments and sets ``func`` to the ``_run_<name>`` function it dispatches to, so
a new subcommand is one more entry in ``_SUBCOMMANDS``.

Exit status: 0 on success, 1 when a command fails (one line on standard
error), 2 for a usage error (as :mod:`argparse`), 130 when interrupted (Ctrl-C),
128 + the signal's number for SIGTERM and SIGHUP.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
import warnings
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__

__all__ = ["main"]

PROG = "skssl"


class CLIError(Exception):
    """A failure the user can fix; ``main`` prints its message on one line."""


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _at_least(minimum):
    def parse(text):
        value = _non_negative_int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


# --------------------------------------------------------------------------- demo

_MNIST1D_LABELS = 10
# Twenty rows per class: the labeled ten and at least as many unlabeled ones.
_MNIST1D_MIN_SAMPLES = 200


@dataclass
class _Row:
    dataset: str
    n_samples: int
    labels_per_class: int
    method: str
    accuracy: float
    seconds: float


def _demo_methods(seed):
    from sklearn.semi_supervised import LabelSpreading

    from .propagation import LabelSpreadingCG

    return [
        ("LabelSpreadingCG", lambda: LabelSpreadingCG(random_state=seed)),
        ("sklearn LabelSpreading(knn)", lambda: LabelSpreading(kernel="knn")),
    ]


def _demo_problems(seed, mnist1d_samples):
    """``(name, X, y_true, labels_per_class)`` tuples, and notes on skipped data."""
    from sklearn.datasets import load_digits

    from .datasets import load_mnist1d

    X, y_true = load_digits(return_X_y=True)
    problems = [("digits", X, y_true, labels) for labels in (1, 10)]
    notes = []
    try:
        data = load_mnist1d(mnist1d_samples, random_state=seed)
    except ImportError as exc:
        notes.append(f"mnist1d skipped: {exc}")
    else:
        problems.append(("mnist1d", data.X, data.y, _MNIST1D_LABELS))
    return problems, notes


def _warm_up(methods):
    # The first fit pays for lazy imports and thread-pool start-up; without this
    # the first timed row would measure them instead of the method.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    y = np.full(60, -1)
    y[:2] = [0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _, make in methods:
            make().fit(X, y)


def _run_demo_rows(seed, mnist1d_samples):
    from .datasets import mask_labels

    methods = _demo_methods(seed)
    _warm_up(methods)
    problems, notes = _demo_problems(seed, mnist1d_samples)
    rows = []
    for name, X, y_true, labels in problems:
        y = mask_labels(y_true, per_class=labels, random_state=seed)
        unlabeled = y == -1
        for method, make in methods:
            model = make()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                start = time.perf_counter()
                model.fit(X, y)
                seconds = time.perf_counter() - start
            for w in caught:
                notes.append(f"{method} on {name}: {w.category.__name__}: {w.message}")
            accuracy = float(
                np.mean(model.transduction_[unlabeled] == y_true[unlabeled])
            )
            rows.append(_Row(name, X.shape[0], labels, method, accuracy, seconds))
    return rows, notes


def _format_table(rows):
    from tabulate import tabulate

    header = ("dataset", "n", "labels/class", "method", "accuracy", "time (s)")
    cells = [
        (r.dataset, r.n_samples, r.labels_per_class, r.method, r.accuracy, r.seconds)
        for r in rows
    ]
    return tabulate(cells, header, floatfmt=".3f")


def _run_demo(args):
    mnist1d_samples = 1000 if args.quick else args.mnist1d_samples
    rows, notes = _run_demo_rows(args.seed, mnist1d_samples)
    cores = os.cpu_count() or 1
    print(
        f"skssl {__version__} demo: accuracy on the unlabeled points and fit wall "
        f"time\n(seed {args.seed}, {cores} CPU cores, default parameters)\n"
    )
    print(_format_table(rows))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _add_demo_parser(subparsers):
    parser = subparsers.add_parser(
        "demo",
        help="compare LabelSpreadingCG with scikit-learn's LabelSpreading",
        description=(
            "Fit LabelSpreadingCG and scikit-learn's LabelSpreading(kernel='knn') "
            "with default parameters on scikit-learn's digits (1 and 10 labels per "
            f"class) and on MNIST-1D ({_MNIST1D_LABELS} labels per class), and "
            "print the accuracy on the unlabeled points and the fit wall time. "
            "Nothing is downloaded; MNIST-1D is generated locally and needs "
            "`pip install skssl[datasets]` (it is skipped otherwise)."
        ),
    )
    parser.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="seed for choosing the labeled points and generating MNIST-1D "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--mnist1d-samples",
        type=_at_least(_MNIST1D_MIN_SAMPLES),
        default=4000,
        metavar="N",
        help="rows of MNIST-1D to generate (default: %(default)s)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a faster, smaller run (1000 MNIST-1D rows)",
    )
    parser.set_defaults(func=_run_demo)


# ------------------------------------------------------------------------- label

# Options that set an estimator parameter of the same name, when it has one.
_PARAM_OPTIONS = {
    "n_neighbors": "--n-neighbors",
    "alpha": "--alpha",
    "backend": "--backend",
    "max_epochs": "--max-epochs",
    "lr": "--lr",
}
_DEFAULT_METHOD = "label-spreading-cg"


def _parse_param(text):
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return text, key, parsed


def _separator(text):
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    sep = named.get(text.lower(), text)
    if len(sep) != 1:
        raise argparse.ArgumentTypeError(
            f"expected one character (or tab), got {text!r}"
        )
    return sep


def _fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value:g}")
    return value


def _estimator_options(args, cls):
    """``(option, parameter, value)`` from the command line, in order.

    The seed and the verbosity go to every estimator that has them; the named
    options (``--alpha``) must fit the estimator; ``--param`` comes last, so it
    overrides both.
    """
    defaults = cls().get_params(deep=False)
    shared = (
        ("--seed", "random_state", args.seed),
        ("--verbose", "verbose", args.verbose),
    )
    given = [(flag, name, value) for flag, name, value in shared if name in defaults]
    given += [
        (flag, name, getattr(args, name))
        for name, flag in _PARAM_OPTIONS.items()
        if getattr(args, name) is not None
    ]
    given += [(f"--param {text}", key, value) for text, key, value in args.param]
    return given


class _Say:
    """Messages of ``skssl label`` on standard error, one line each."""

    def __init__(self, stream, verbose):
        self.stream = stream
        self.verbose = verbose

    def __call__(self, message):
        print(f"{PROG} label: {message}", file=self.stream, flush=True)

    def detail(self, message):
        if self.verbose:
            self(message)


def _check_output(args, out_fmt):
    """Fail before any work on an output that cannot be written."""
    from ._io import same_file

    if args.out == "-":
        if out_fmt.kind in ("parquet", "npz") and sys.stdout.isatty():
            raise CLIError(
                f"--out -: {out_fmt.describe()} is binary and standard output is a "
                "terminal; redirect it to a file (> out.parquet) or name the file "
                "with --out."
            )
        return
    out = Path(args.out)
    if out.is_dir():
        raise CLIError(f"{out}: is a folder; give --out a file name inside it.")
    if args.input != "-" and same_file(args.input, out):
        raise CLIError(
            f"{out}: the output is the input file; choose another --out so the "
            "input stays untouched."
        )
    folder = out.resolve().parent
    if not folder.is_dir():
        raise CLIError(f"{out}: the folder {folder} does not exist; create it first.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CLIError(
            f"{out}: no permission to write in {folder}; choose another --out."
        )


def _read_input(args, say):
    from ._io import spooled_stdin
    from ._tabular import read_table, sniff_format

    options = dict(
        unlabeled_value=args.unlabeled_value,
        drop=args.drop,
        features=args.features,
        sep=args.sep,
        encoding=args.encoding,
        decimal=args.decimal,
        # A progress bar in a log file is noise: only on a terminal.
        progress=args.verbose > 0 and sys.stderr.isatty(),
    )
    if args.input != "-":
        return read_table(args.input, args.target, **options)
    if sys.stdin.isatty():
        raise CLIError(
            "INPUT is '-' but standard input is a terminal; pipe the data in "
            f"({PROG} label - --target y --out out.csv < data.csv)."
        )
    with spooled_stdin() as path:
        fmt = sniff_format(path)
        say.detail(f"standard input holds {fmt.describe()}")
        return read_table(path, args.target, fmt=fmt, name="<stdin>", **options)


def _targets(table, args):
    y = table.y
    unlabeled = np.asarray(y == -1, dtype=bool)
    n_unlabeled = int(unlabeled.sum())
    if n_unlabeled == len(y):
        raise CLIError(
            f"{table.name}: --target {args.target!r} has no labeled row; label at "
            "least one row of each class."
        )
    if n_unlabeled == 0:
        raise CLIError(
            f"{table.name}: --target {args.target!r} has no unlabeled row (an empty "
            "cell, NA, NaN, -1 or --unlabeled-value); there is nothing to label."
        )
    return y, unlabeled


def _check_new_columns(table, y, unlabeled, args, out_fmt, say):
    """Refuse an input column the output would overwrite, unless dropped.

    A dropped ``predicted_label`` (say, from an earlier run) is replaced; one
    that is a feature would feed the model the answer of another.
    """
    from ._tabular import column_names

    new = ["predicted_label", "certainty"]
    if args.proba:
        new += [f"proba_{c}" for c in np.unique(y[~unlabeled].astype(str))]
    clash = set(new) & set(column_names(table, out_fmt))
    kept = sorted(clash - set(args.drop))
    if kept:
        raise CLIError(
            f"{table.name}: the input has columns named {', '.join(kept)}, which the "
            "output adds; rename them, or leave them out of the features with "
            "--drop and the output replaces them."
        )
    if clash:
        say(f"replacing the input's {', '.join(sorted(clash))} in the output")


def _new_columns(labels, certainty, proba, classes, left, with_proba):
    import pyarrow as pa

    values = labels.tolist() if labels.dtype == object else labels
    columns = {
        "predicted_label": pa.array(values, mask=left),
        "certainty": pa.array(certainty),
    }
    if with_proba:
        for j, c in enumerate(classes.tolist()):
            columns[f"proba_{c}"] = pa.array(proba[:, j])
    return columns


def _fit(model, X, y, given, log):
    """:func:`_label.fit_and_label` with warnings collected and stdout on stderr.

    A failure that is not a ``ValueError`` (the estimators' word for a bad
    input) most often comes from a parameter given on the command line, so
    the message names them.
    """
    from ._label import fit_and_label

    with warnings.catch_warnings(record=True) as caught, redirect_stdout(log):
        warnings.simplefilter("always")
        try:
            result = fit_and_label(model, X, y)
        except (ValueError, MemoryError, KeyboardInterrupt):
            raise
        except Exception as exc:
            options = [flag for flag, *_ in given if flag.startswith("--param")]
            hint = f"; check {', '.join(options)}" if options else ""
            raise CLIError(
                f"{type(model).__name__} failed to fit: {type(exc).__name__}: "
                f"{exc}{hint} (rerun with --traceback for details)"
            ) from exc
    messages = dict.fromkeys(" ".join(str(w.message).split()) for w in caught)
    return result, list(messages)


def _write_output(args, table, columns, out_fmt, say):
    from ._io import atomic_output
    from ._tabular import write_table

    if args.out == "-":
        write_table(table, columns, sys.stdout.buffer, out_fmt)
        sys.stdout.buffer.flush()
        return
    if Path(args.out).exists():
        say(f"replacing the existing {args.out}")
    with atomic_output(args.out) as fh:
        write_table(table, columns, fh, out_fmt)


def _run_label(args):
    from . import _label
    from ._io import log_stream
    from ._tabular import TableError, output_format

    start = time.perf_counter()
    log = log_stream()
    say = _Say(log, args.verbose)
    try:
        cls = _label.find_method(args.method)
        given = _estimator_options(args, cls)
        model = cls(**_label.estimator_params(cls, given))
        out_fmt = output_format(args.out, args.out_format)
        _check_output(args, out_fmt)
        read_start = time.perf_counter()
        table = _read_input(args, say)
        say.detail(
            f"read {table.X.shape[0]} rows, {table.X.shape[1]} features from "
            f"{table.name} ({table.details}) in "
            f"{time.perf_counter() - read_start:.1f} s"
        )
        y, unlabeled = _targets(table, args)
        _check_new_columns(table, y, unlabeled, args, out_fmt, say)
    except (TableError, _label.LabelError) as exc:
        raise CLIError(str(exc)) from None
    scale = _label.default_scale(model) if args.scale == "auto" else args.scale
    try:
        X = _label.prepare_features(
            table.X, table.feature_names, impute=args.impute, scale=scale
        )
    except _label.LabelError as exc:
        raise CLIError(f"{table.name}: {exc}") from None
    say.detail(
        f"fitting {_label.describe_estimator(model)} on {len(y)} rows "
        f"({int((~unlabeled).sum())} labeled), features "
        f"{'standardized' if scale == 'standard' else 'as read'}"
        f"{f', missing values imputed ({args.impute})' if args.impute else ''}"
    )
    fit_start = time.perf_counter()
    (labels, certainty, proba, classes), notes = _fit(model, X, y, given, log)
    say.detail(f"fitted in {time.perf_counter() - fit_start:.1f} s")
    if args.min_certainty is None:
        left = np.zeros(len(y), dtype=bool)
    else:
        left = unlabeled & (certainty < args.min_certainty)
    columns = _new_columns(labels, certainty, proba, classes, left, args.proba)
    _write_output(args, table, columns, out_fmt, say)
    for note in notes:
        say(f"warning: {note}")
    say(
        _label.summary(
            rows=len(y),
            labeled=int((~unlabeled).sum()),
            labels=labels,
            certainty=certainty[unlabeled],
            left=left,
            min_certainty=args.min_certainty,
            seconds=time.perf_counter() - start,
        )
        + ("" if args.out == "-" else f" -> {args.out}")
    )
    return 0


class _LabelHelpFormatter(argparse.HelpFormatter):
    """Lists the methods in ``--method``'s help only when help is shown.

    Finding them imports every estimator (torch for the deep ones), which
    ``skssl demo`` or a plain ``skssl label`` run should not pay for.
    """

    def _get_help_string(self, action):
        if action.dest == "method":
            from ._label import describe_methods

            return f"{action.help}; one of {', '.join(describe_methods())}"
        return action.help


def _add_label_parser(subparsers):
    parser = subparsers.add_parser(
        "label",
        help="label the unlabeled rows of a CSV, Parquet, JSON Lines or NumPy file",
        formatter_class=_LabelHelpFormatter,
        description=(
            "Fit a semi-supervised estimator on every row of INPUT and write every "
            "row, with its predicted label and certainty, to OUTPUT. Unlabeled rows "
            "are those whose target is empty, NA, NaN or -1. The features are "
            "standardized for the graph methods. INPUT is never modified; OUTPUT "
            "appears only once complete. A one-line summary goes to standard "
            "error."
        ),
        epilog=(
            "example: skssl label wine.csv --target class --out labeled.csv "
            "--drop id --min-certainty 0.5"
        ),
    )
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="a .csv/.tsv (also .gz, .bz2, .zst), .parquet, .jsonl, .npy or .npz "
        "file, or - for standard input (format told from its content)",
    )
    parser.add_argument(
        "--target",
        required=True,
        metavar="COLUMN",
        help="the label column (CSV, Parquet, JSON Lines), array name (NPZ) or "
        "column index (NPY)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="OUTPUT",
        help="file to write, its format from the extension (.csv, .tsv, .csv.gz, "
        ".parquet, .jsonl, .npz), or - for standard output (CSV)",
    )

    reading = parser.add_argument_group("reading INPUT")
    reading.add_argument(
        "--sep",
        type=_separator,
        metavar="CHAR",
        help="CSV delimiter (default: detected among , ; tab |; 'tab' for a tab)",
    )
    reading.add_argument(
        "--encoding",
        default="utf-8",
        metavar="NAME",
        help="text encoding of a CSV file, e.g. latin-1 or cp1252 "
        "(default: %(default)s)",
    )
    reading.add_argument(
        "--decimal",
        default=".",
        choices=[".", ","],
        metavar="CHAR",
        help="decimal mark of CSV numbers, . or , (default: %(default)s)",
    )
    reading.add_argument(
        "--unlabeled-value",
        metavar="VALUE",
        help="one more target value that marks unlabeled rows (e.g. '?')",
    )
    reading.add_argument(
        "--drop",
        nargs="+",
        action="extend",
        default=[],
        metavar="COLUMN",
        help="columns to leave out of the features, e.g. ids or text (column "
        "indices for NPY and NPZ)",
    )
    reading.add_argument(
        "--features",
        metavar="NAME",
        help="NPZ only: the features array (default: the only other 2-D array)",
    )

    features = parser.add_argument_group("features")
    features.add_argument(
        "--impute",
        choices=["mean", "median"],
        help="fill missing feature values with the column's mean or median over "
        "every row (default: missing values are an error)",
    )
    features.add_argument(
        "--scale",
        choices=["auto", "standard", "none"],
        default="auto",
        help="standardize every feature with its mean and standard deviation over "
        "every row; auto: standard for graph methods, none for the deep ones, "
        "whose networks standardize their input (default: %(default)s)",
    )

    method = parser.add_argument_group("method")
    method.add_argument(
        "--method",
        default=_DEFAULT_METHOD,
        metavar="NAME",
        help=f"the estimator (default: {_DEFAULT_METHOD}), by name, short name or "
        "class name",
    )
    method.add_argument(
        "--n-neighbors",
        type=_at_least(1),
        metavar="K",
        help="graph methods: neighbours per row in the kNN graph",
    )
    method.add_argument(
        "--alpha",
        type=float,
        metavar="A",
        help="graph methods: diffusion strength in [0, 1)",
    )
    method.add_argument(
        "--backend",
        metavar="NAME",
        help="graph methods: kNN search, auto, exact, hnsw, ivf, gpu or sklearn",
    )
    method.add_argument(
        "--max-epochs",
        type=_at_least(1),
        metavar="N",
        help="deep methods: training epochs",
    )
    method.add_argument(
        "--lr", type=float, metavar="RATE", help="deep methods: learning rate"
    )
    method.add_argument(
        "--param",
        type=_parse_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other estimator parameter, e.g. --param tol=1e-4 (repeatable; "
        "a Python literal, or a text; a class by its import path)",
    )
    method.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="random seed (default: %(default)s)",
    )

    output = parser.add_argument_group("writing OUTPUT")
    output.add_argument(
        "--out-format",
        choices=["csv", "tsv", "parquet", "jsonl", "npz"],
        help="the output format whatever the extension (and for --out -)",
    )
    output.add_argument(
        "--proba", action="store_true", help="also write proba_<class> columns"
    )
    output.add_argument(
        "--min-certainty",
        type=_fraction,
        metavar="C",
        help="leave the label of an unlabeled row empty when its certainty is "
        "under C (0 to 1)",
    )
    parser.add_argument(
        "--verbose",
        "-v",
        action="count",
        default=0,
        help="report each step and show progress on standard error",
    )
    parser.set_defaults(func=_run_label)


# ------------------------------------------------------------------------ parser

_SUBCOMMANDS = (_add_demo_parser, _add_label_parser)


def build_parser():
    """The ``skssl`` argument parser with every subcommand registered.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Semi-supervised learning estimators for scikit-learn.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        "--traceback",
        action="store_true",
        help="show the full traceback when a command fails",
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands"
    )
    subparsers.required = True
    for add in _SUBCOMMANDS:
        add(subparsers)
    return parser


def _one_line(text):
    return " ".join(str(text).split())


def main(argv=None):
    """Run the ``skssl`` command line.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    status : int
        The process exit status.
    """
    from ._io import Terminated, signals_raise

    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"{PROG} {args.command}"
    try:
        with signals_raise():
            return args.func(args)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except Terminated as exc:
        print(f"{prefix}: stopped by {exc}", file=sys.stderr)
        return 128 + exc.signum
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; silence the second error Python
        # would raise while flushing stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except MemoryError:
        if args.traceback:
            raise
        print(
            f"{prefix}: error: out of memory; try a smaller input or a method "
            "with a smaller footprint",
            file=sys.stderr,
        )
        return 1
    except (CLIError, ValueError, ImportError, OSError) as exc:
        if args.traceback:
            raise
        print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.traceback:
            raise
        print(
            f"{prefix}: internal error: {type(exc).__name__}: {_one_line(exc)} "
            "(rerun with --traceback for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
