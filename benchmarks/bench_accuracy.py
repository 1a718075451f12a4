"""Accuracy of LabelSpreadingCG against scikit-learn and GraphLearning.

Sections (all three run when none is chosen):

``--accuracy``
    digits, 1 / 3 / 10 labels per class, 10 label draws: accuracy on the
    unlabeled rows of LabelSpreadingCG, scikit-learn LabelSpreading /
    LabelPropagation (knn kernel, as shipped and with k = 7, max_iter = 1000)
    and GraphLearning Laplace / Poisson learning, on GraphLearning's own kNN
    graph and on the graph LabelSpreadingCG builds.
``--robustness``
    The same methods on wine, breast_cancer, two moons, two circles and
    MNIST-1D with 1 and 10 labels per class.
``--sensitivity``
    LabelSpreadingCG with one parameter moved off its default, on digits, two
    moons, wine, breast_cancer and MNIST-1D.

Results go to ``results/propagation_accuracy.json`` (a section run replaces
that section only) and the tables to ``results/propagation.md``.

Examples
--------
    python benchmarks/bench_accuracy.py                      # all sections
    python benchmarks/bench_accuracy.py --accuracy --robustness
    python benchmarks/bench_accuracy.py --quick --out /tmp/acc   # ~1 min
    python benchmarks/bench_accuracy.py --report             # tables from json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import (
    RESULTS,
    ROBUSTNESS_SETS,
    command_line,
    load_dataset,
    log,
    machine_info,
    markdown_table,
    quiet,
    read_json,
    write_json,
)
from tqdm.auto import tqdm

ACCURACY_JSON = "propagation_accuracy.json"


# --------------------------------------------------------------------------- #
# Methods: each takes (X, y with -1 for unlabeled, graph) and returns labels
# --------------------------------------------------------------------------- #


def label_spreading_cg(X, y, graph, **params):
    from skssl import LabelSpreadingCG

    return LabelSpreadingCG(**params).fit(X, y).transduction_


def sk_spreading(X, y, graph, **params):
    from sklearn.semi_supervised import LabelSpreading

    return LabelSpreading(kernel="knn", **params).fit(X, y).transduction_


def sk_propagation(X, y, graph, **params):
    from sklearn.semi_supervised import LabelPropagation

    return LabelPropagation(kernel="knn", **params).fit(X, y).transduction_


def graphlearning(X, y, graph, *, model):
    """GraphLearning's ``gl.ssl.<model>`` on a given weight matrix."""
    import graphlearning as gl

    train = np.flatnonzero(y != -1)
    return getattr(gl.ssl, model)(graph).fit_predict(train, y[train])


def gl_graph(X):
    """GraphLearning's own graph: its 10-NN weight matrix."""
    import graphlearning as gl

    return gl.weightmatrix.knn(X, 10)


def skssl_graph(X):
    """The graph LabelSpreadingCG builds with its defaults."""
    from skssl.graph import KNNGraph

    return KNNGraph(7, metric="euclidean", kernel="gaussian").fit(X).affinity_


GRAPHS = {"gl": gl_graph, "skssl": skssl_graph}
K7 = {"n_neighbors": 7, "max_iter": 1000}

# name -> (graph the method needs, or None; method; its keyword arguments)
METHODS = {
    "LabelSpreadingCG": (None, label_spreading_cg, {}),
    "sklearn LabelSpreading(knn)": (None, sk_spreading, {}),
    "sklearn LabelSpreading(knn, k=7, max_iter=1000)": (None, sk_spreading, K7),
    "sklearn LabelPropagation(knn)": (None, sk_propagation, {}),
    "sklearn LabelPropagation(knn, k=7, max_iter=1000)": (None, sk_propagation, K7),
    "GL Laplace (gl knn10)": ("gl", graphlearning, {"model": "laplace"}),
    "GL Poisson (gl knn10)": ("gl", graphlearning, {"model": "poisson"}),
    "GL Laplace (skssl graph)": ("skssl", graphlearning, {"model": "laplace"}),
    "GL Poisson (skssl graph)": ("skssl", graphlearning, {"model": "poisson"}),
}

SENSITIVITY_DATA = (
    ("digits", 1),
    ("digits", 10),
    ("two moons", 1),
    ("wine", 1),
    ("breast_cancer", 1),
    ("MNIST-1D", 10),
)


def sensitivity_methods():
    """LabelSpreadingCG settings around its defaults (the first entry)."""
    grid = [{}]
    grid += [{"n_neighbors": k} for k in (5, 10, 15)]
    grid += [{"alpha": a} for a in (0.9, 0.999)]
    grid += [{"class_mass_normalization": False}]
    grid += [{"symmetrize": "max"}, {"symmetrize": "mutual"}]
    grid += [{"kernel": "binary"}]
    grid += [{"metric": "cosine", "kernel": "power"}]
    grid += [{"tol": t} for t in (1e-5, 1e-4, 1e-3)]

    def name(params):
        return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "defaults"

    return {name(params): (None, label_spreading_cg, params) for params in grid}


# --------------------------------------------------------------------------- #
# Protocol
# --------------------------------------------------------------------------- #


def evaluate(X, y, per_class, seeds, methods, desc=""):
    """Accuracy on the unlabeled rows of every method for every label draw."""
    from skssl.datasets import mask_labels

    # Fixed graphs are built once per data set, outside the timed fits.
    graphs = {
        kind: GRAPHS[kind](X) for kind in {m[0] for m in methods.values()} if kind
    }
    out = {name: {"accuracy": [], "seconds": []} for name in methods}
    for seed in tqdm(seeds, desc=desc, leave=False):
        ym = mask_labels(y, per_class=per_class, random_state=seed)
        unlabeled = ym == -1
        for name, (kind, method, params) in methods.items():
            start = time.perf_counter()
            pred = np.asarray(quiet(method, X, ym, graphs.get(kind), **params))
            out[name]["seconds"].append(time.perf_counter() - start)
            acc = float(np.mean(pred[unlabeled] == y[unlabeled]))
            out[name]["accuracy"].append(acc)
    for rec in out.values():
        acc = np.asarray(rec["accuracy"])
        rec["mean"] = float(acc.mean())
        rec["std"] = float(acc.std())
        rec["mean_seconds"] = float(np.mean(rec["seconds"]))
    return out


def run_digits(seeds):
    X, y = load_dataset("digits")
    results = {
        str(p): evaluate(X, y, p, seeds, METHODS, desc=f"digits ({p})")
        for p in (1, 3, 10)
    }
    return {
        "command": command_line(),
        "seeds": seeds,
        "protocol": "skssl.datasets.mask_labels(y, per_class=p, random_state=s); "
        "accuracy on the rows whose label was hidden",
        "results": results,
    }


def run_robustness(seeds, quick):
    results = {}
    for name in ROBUSTNESS_SETS:
        X, y = load_dataset(name, quick=quick)
        results[name] = {"n_samples": int(X.shape[0]), "n_features": X.shape[1]}
        for p in (1, 10):
            desc = f"{name} ({p})"
            results[name][str(p)] = evaluate(X, y, p, seeds, METHODS, desc=desc)
    return {"command": command_line(), "seeds": seeds, "results": results}


def run_sensitivity(seeds, quick):
    methods = sensitivity_methods()
    results = {}
    for name, p in SENSITIVITY_DATA:
        X, y = load_dataset(name, quick=quick)
        desc = f"{name} ({p})"
        results[desc] = evaluate(X, y, p, seeds, methods, desc=desc)
    return {"command": command_line(), "seeds": seeds, "results": results}


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def _cells(columns, name):
    """``mean ± std`` of ``name`` in each column, bold where it is the best."""
    cells = []
    for res in columns:
        cell = f"{res[name]['mean']:.3f} ± {res[name]['std']:.3f}"
        best = max(r["mean"] for r in res.values())
        cells.append(f"**{cell}**" if res[name]["mean"] == best else cell)
    return cells


def markdown(payload):
    """The accuracy, robustness and sensitivity sections of propagation.md."""
    lines = []
    if "digits" in payload:
        d = payload["digits"]
        columns = [d["results"][p] for p in ("1", "3", "10")]
        rows = [
            [name, *_cells(columns, name)]
            + [f"{np.mean([c[name]['mean_seconds'] for c in columns]):.3f}"]
            for name in columns[0]
        ]
        headers = ["method", "1 label/class", "3 labels/class", "10 labels/class"]
        lines += [
            "## Accuracy on digits",
            "",
            f"scikit-learn `load_digits` (1797 × 64), {len(d['seeds'])} seeds "
            f"({d['seeds'][0]}..{d['seeds'][-1]}), mean ± std accuracy on the "
            "unlabeled rows. Command: `" + d["command"] + "`.",
            "",
            *markdown_table(rows, [*headers, "mean time (s)"]),
            "",
        ]
    if "robustness" in payload:
        r = payload["robustness"]
        res = r["results"]
        keys = [(s, p) for s in res for p in ("1", "10")]
        columns = [res[s][p] for s, p in keys]
        rows = [[name, *_cells(columns, name)] for name in columns[0]]
        n_mnist = res.get("MNIST-1D", {}).get("n_samples", 4000)
        lines += [
            "## Robustness: other data, 1 and 10 labels per class",
            "",
            f"{len(r['seeds'])} seeds, mean ± std accuracy on the unlabeled rows; "
            "wine and breast_cancer standardized, two moons n=1000 noise 0.1, two "
            "circles n=1000 noise 0.05 factor 0.5, MNIST-1D "
            f"`load_mnist1d({n_mnist})`. Column header: data (labels per class). "
            "Command: `" + r["command"] + "`.",
            "",
            *markdown_table(rows, ["method"] + [f"{s} ({p})" for s, p in keys]),
            "",
        ]
    if "sensitivity" in payload:
        r = payload["sensitivity"]
        res = r["results"]
        columns = list(res.values())
        rows = [[name, *_cells(columns, name)] for name in columns[0]]
        lines += [
            "## LabelSpreadingCG parameter sensitivity",
            "",
            "One parameter moved off the defaults (n_neighbors=7, alpha=0.99, "
            "euclidean, gaussian kernel with local scaling, sum symmetrization, "
            f"class mass normalization); {len(r['seeds'])} seeds, mean ± std "
            "accuracy on the unlabeled rows. Column header: data (labels per "
            "class). Command: `" + r["command"] + "`.",
            "",
            *markdown_table(rows, ["setting", *res]),
            "",
        ]
    return lines


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    sec = p.add_argument_group("sections (default: all three)")
    sec.add_argument("--accuracy", action="store_true", help="digits accuracy")
    sec.add_argument("--robustness", action="store_true", help="other data sets")
    sec.add_argument(
        "--sensitivity",
        action="store_true",
        help="LabelSpreadingCG accuracy when one parameter leaves its default",
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="only rebuild propagation.md and the plot from the json files",
    )
    p.add_argument("--seeds", type=int, default=10, help="label draws (default 10)")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 3 label draws, small MNIST-1D"
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = p.parse_args(argv)
    if not (args.accuracy or args.robustness or args.sensitivity):
        args.accuracy = args.robustness = args.sensitivity = True
    if args.quick:
        args.seeds = min(args.seeds, 3)
    return args


def main(argv=None):
    import report

    args = parse_args(argv)
    if not args.report:
        seeds = list(range(args.seeds))
        payload = read_json(args.out / ACCURACY_JSON) or {}
        payload["machine"] = machine_info()
        if args.accuracy:
            log(f"[accuracy] digits, {len(seeds)} label draws")
            payload["digits"] = run_digits(seeds)
        if args.robustness:
            log(f"[robustness] {', '.join(ROBUSTNESS_SETS)}")
            payload["robustness"] = run_robustness(seeds, args.quick)
        if args.sensitivity:
            log("[sensitivity] LabelSpreadingCG settings")
            payload["sensitivity"] = run_sensitivity(seeds, args.quick)
        write_json(args.out / ACCURACY_JSON, payload)
    report.write_report(args.out)


if __name__ == "__main__":
    main()
