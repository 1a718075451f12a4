"""The ``skssl`` command line.

``skssl demo`` compares :class:`~skssl.LabelSpreadingCG` with scikit-learn's
:class:`~sklearn.semi_supervised.LabelSpreading` on offline data and prints a
table. ``skssl label`` labels the unlabeled rows of a CSV, NPY/NPZ or Parquet
file and writes every row with its predicted label and certainty.

Each subcommand is one ``_add_<name>_parser`` function that registers its
arguments and sets ``func`` to the ``_run_<name>`` function it dispatches to, so
a new subcommand is one more entry in ``_SUBCOMMANDS``.

Exit status: 0 on success, 1 when a command fails, 2 for a usage error (as
:mod:`argparse`), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass

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


def _given(args, names):
    """The options among ``names`` that the user set."""
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


# Options shared by the graph methods, and by the deep ones.
_GRAPH_OPTIONS = ("n_neighbors", "alpha", "backend")
_DEEP_OPTIONS = ("max_epochs", "lr")


def _label_spreading(args):
    from .propagation import LabelSpreadingCG

    return LabelSpreadingCG(
        random_state=args.seed, verbose=args.verbose, **_given(args, _GRAPH_OPTIONS)
    )


def _deep_params(args):
    return dict(
        random_state=args.seed, verbose=args.verbose, **_given(args, _DEEP_OPTIONS)
    )


def _dlp(args):
    from .deep import DeepLabelPropagationClassifier

    return DeepLabelPropagationClassifier(
        **_deep_params(args), **_given(args, _GRAPH_OPTIONS)
    )


def _cclp(args):
    from .deep import CCLPClassifier

    return CCLPClassifier(**_deep_params(args))


# Method name -> factory building the estimator from the parsed options. A new
# method is one entry here; the estimator must follow the skssl fit(X, y) API.
_LABEL_METHODS = {"label-spreading": _label_spreading, "dlp": _dlp, "cclp": _cclp}


def _parse_param(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    import ast

    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return key.strip(), parsed


def _fit_and_label(model, X, y):
    """Labels, certainty and class distributions for every row."""
    from .diffusion import certainty, clamp_labeled

    model.fit(X, y)
    if hasattr(model, "transduction_"):
        proba = model.label_distributions_
    else:
        position = {c: i for i, c in enumerate(model.classes_.tolist())}
        y_encoded = np.array([position.get(v, -1) for v in y.tolist()])
        proba = clamp_labeled(model.predict_proba(X), y_encoded)
    labels = model.classes_[proba.argmax(axis=1)]
    return labels, certainty(proba), proba, model.classes_


def _run_label(args):
    from ._tabular import TableError, check_output_path, read_table, write_table

    try:
        check_output_path(args.input, args.out)
        table = read_table(
            args.input,
            args.target,
            unlabeled_value=args.unlabeled_value,
            drop=args.drop,
            features=args.features,
            verbose=args.verbose,
        )
    except TableError as exc:
        raise CLIError(str(exc)) from None
    y = table.y
    unlabeled = y == -1
    n_unlabeled = int(unlabeled.sum())
    if n_unlabeled == len(y):
        raise CLIError(
            f"{args.input}: column {args.target!r} has no labeled row; label at "
            "least one row of each class."
        )
    if n_unlabeled == 0:
        raise CLIError(
            f"{args.input}: column {args.target!r} has no unlabeled row (empty, NaN "
            "or -1, or --unlabeled-value); there is nothing to label."
        )
    labeled_values = y[~unlabeled]
    if all(isinstance(v, int) for v in labeled_values):
        y = y.astype(np.int64)
    model = _LABEL_METHODS[args.method](args)
    if args.param:
        try:
            model.set_params(**dict(args.param))
        except ValueError as exc:
            raise CLIError(f"--param: {exc}") from None
    if args.verbose:
        print(
            f"[skssl label] {len(y)} rows, {table.X.shape[1]} features, "
            f"{len(y) - n_unlabeled} labeled; fitting {type(model).__name__}",
            flush=True,
        )
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels, cert, proba, classes = _fit_and_label(model, table.X, y)
    for message in dict.fromkeys(str(w.message) for w in caught):
        print(f"{PROG} label: warning: {message}", file=sys.stderr)
    columns = {"predicted_label": labels, "certainty": cert}
    if args.proba:
        for j, c in enumerate(classes):
            columns[f"proba_{c}"] = proba[:, j]
    try:
        write_table(table, args.out, columns)
    except TableError as exc:
        raise CLIError(str(exc)) from None
    if args.verbose:
        print(
            f"[skssl label] wrote {args.out} in {time.perf_counter() - start:.1f}s",
            flush=True,
        )
    return 0


def _add_label_parser(subparsers):
    parser = subparsers.add_parser(
        "label",
        help="label the unlabeled rows of a CSV, NPY/NPZ or Parquet file",
        description=(
            "Fit a semi-supervised estimator on every row of INPUT and write every "
            "row, with its predicted label and certainty, to OUTPUT (same format: "
            "CSV -> .csv, Parquet -> .parquet, NPY/NPZ -> .npz). Unlabeled rows are "
            "those whose target is empty, NaN or -1. INPUT is never modified; "
            "OUTPUT appears only once complete."
        ),
    )
    parser.add_argument(
        "input", metavar="INPUT", help="CSV (header row), .npy, .npz or .parquet file"
    )
    parser.add_argument(
        "--target",
        required=True,
        metavar="COLUMN",
        help="the label column (CSV/Parquet), array name (NPZ) or column index (NPY)",
    )
    parser.add_argument("--out", required=True, metavar="OUTPUT", help="file to write")
    parser.add_argument(
        "--method",
        choices=sorted(_LABEL_METHODS),
        default="label-spreading",
        help="estimator (default: %(default)s)",
    )
    parser.add_argument(
        "--unlabeled-value",
        metavar="VALUE",
        help="an extra target value that marks unlabeled rows (e.g. '?')",
    )
    parser.add_argument(
        "--drop",
        nargs="+",
        default=[],
        metavar="COLUMN",
        help="columns to leave out of the features (e.g. ids or text)",
    )
    parser.add_argument(
        "--features",
        metavar="NAME",
        help="NPZ only: the features array (default: the only other 2-D array)",
    )
    parser.add_argument(
        "--proba", action="store_true", help="also write proba_<class> columns"
    )
    parser.add_argument(
        "--n-neighbors", type=_at_least(1), help="label-spreading, dlp: kNN graph size"
    )
    parser.add_argument(
        "--alpha", type=float, help="label-spreading, dlp: diffusion strength in [0, 1)"
    )
    parser.add_argument(
        "--backend",
        choices=["auto", "exact", "hnsw", "ivf", "gpu", "sklearn"],
        help="kNN search backend (default: auto)",
    )
    parser.add_argument(
        "--max-epochs", type=_at_least(1), help="dlp, cclp: training epochs"
    )
    parser.add_argument("--lr", type=float, help="dlp, cclp: learning rate")
    parser.add_argument(
        "--param",
        type=_parse_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other estimator parameter, e.g. --param tol=1e-4 (repeatable)",
    )
    parser.add_argument("--seed", type=_non_negative_int, default=0, help="random seed")
    parser.add_argument(
        "--verbose", "-v", action="count", default=0, help="show progress"
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
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; silence the second error Python
        # would raise while flushing stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (CLIError, ValueError, ImportError, OSError, MemoryError) as exc:
        if args.traceback:
            raise
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.traceback:
            raise
        print(
            f"{PROG} {args.command}: internal error: {type(exc).__name__}: {exc} "
            "(rerun with --traceback for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
