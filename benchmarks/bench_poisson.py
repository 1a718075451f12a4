"""Accuracy of PoissonLearning against GraphLearning, scikit-learn and LabelSpreadingCG.

digits, wine and breast_cancer (standardized), two moons, two circles and
MNIST-1D (``_common.load_dataset``), 1, 3 and 10 labels per class, 10 label
draws (``skssl.datasets.mask_labels(y, per_class=p, random_state=s)``):
accuracy on the unlabeled rows of

- PoissonLearning with its defaults (``method="auto"``: Poisson learning when
  under 1 % of the rows are labeled, mean-shifted Laplace learning from there),
  with each ``method`` forced (the evidence for the rule), and with
  ``n_neighbors`` 5 and 10 (the evidence for that default);
- PoissonLearning with ``mbo=True`` and the true class proportions as
  ``class_prior`` (an oracle: those proportions are rarely known);
- GraphLearning's Laplace and Poisson learning on GraphLearning's own graph
  (``gl.weightmatrix.knn(X, 10)``) and on the graph PoissonLearning builds, and
  GraphLearning's Poisson with ``solver="gradient_descent"`` (the paper's
  random-walk iteration, stopped when the walk from the labels has mixed) on
  that graph, and GraphLearning's Laplace with ``mean_shift=True`` on that
  graph (shown, not a target peer: the brief names GraphLearning's Laplace and
  Poisson as shipped);
- scikit-learn ``LabelSpreading(kernel="knn")`` as shipped;
- LabelSpreadingCG with ``n_neighbors`` 7 (its default) and 5.

The target table compares PoissonLearning with the best of GraphLearning's
Laplace / Poisson (either graph) and scikit-learn's LabelSpreading per data
set and label count. Everything runs on one thread (faiss, BLAS).

``--heldout`` runs the target comparison at 1, 2, 3, 5 and 10 labels per class
on five sets that played no part in choosing the defaults (a noisier two
moons, Gaussian quantiles, anisotropic blobs, a make_classification set and
another MNIST-1D draw) into ``results/poisson_heldout.json``, and adds its
table to the report.

``--rate`` runs the same comparison at 10,000 to 30,000 rows with 1, 3, 10
and 30 labels per class (label rates 0.03 to 3 %) on four sets, into
``results/poisson_rate.json``: whether the auto rule should follow the label
rate or the labels per class, where they disagree.

``--iteration`` adds the study of the paper's random-walk iteration stopped
after T steps (``U <- D^-1 B + D^-1 W U`` from zero, balanced as
PoissonLearning balances) on the same graph, for T = 4 ... 4096 and the
converged solve (T = inf), and of choosing T per fit by holding out one label
per class at a time (up to 5 folds, the most held-out labels right, ties to
the larger T): whether an early-stopped Poisson can be the default.

Results go to ``results/poisson.json`` and ``results/poisson.md``.

Examples
--------
    python benchmarks/bench_poisson.py                        # ~6 min
    python benchmarks/bench_poisson.py --quick --out /tmp/pl  # ~1 min
    python benchmarks/bench_poisson.py --iteration            # + ~4 min
    python benchmarks/bench_poisson.py --heldout              # ~6 min
    python benchmarks/bench_poisson.py --rate                 # ~8 min
    python benchmarks/bench_poisson.py --report
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import (
    RESULTS,
    command_line,
    load_dataset,
    log,
    machine_info,
    markdown_table,
    quiet,
    read_json,
    write_json,
)
from bench_accuracy import gl_graph, label_spreading_cg, sk_spreading
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

JSON = "poisson.json"
HELDOUT_JSON = "poisson_heldout.json"
RATE_JSON = "poisson_rate.json"
MARKDOWN = "poisson.md"
DATASETS = ("digits", "wine", "breast_cancer", "two moons", "two circles", "MNIST-1D")
LABELS_PER_CLASS = (1, 3, 10)
# The peers PoissonLearning is held to (the brief's targets).
TARGET_PEERS = (
    "GL Laplace (gl knn10)",
    "GL Laplace (skssl graph)",
    "GL Poisson (gl knn10)",
    "GL Poisson (skssl graph)",
    "sklearn LabelSpreading(knn)",
)


# --------------------------------------------------------------------------- #
# Methods: each takes (X, y with -1 for unlabeled, graph, y_true) -> labels
# --------------------------------------------------------------------------- #


def poisson_learning(X, y, graph, y_true, **params):
    from skssl.poisson import PoissonLearning

    return PoissonLearning(**params).fit(X, y).transduction_


def poisson_mbo_oracle(X, y, graph, y_true):
    """Poisson MBO held to the true class proportions (known to this oracle only)."""
    from skssl.poisson import PoissonLearning

    prior = np.bincount(y_true) / y_true.size
    return PoissonLearning(mbo=True, class_prior=prior).fit(X, y).transduction_


def gl_model(X, y, graph, y_true, *, model, **params):
    """GraphLearning's ``gl.ssl.<model>`` on a given weight matrix."""
    import graphlearning as gl

    train = np.flatnonzero(y != -1)
    return getattr(gl.ssl, model)(graph, **params).fit_predict(train, y[train])


def skssl_graph(X):
    """The graph PoissonLearning builds with its defaults."""
    from skssl.graph import KNNGraph
    from skssl.poisson import PoissonLearning

    defaults = PoissonLearning().get_params()
    names = ("n_neighbors", "metric", "kernel", "gamma", "symmetrize")
    return KNNGraph(**{name: defaults[name] for name in names}).fit(X).affinity_


def _peer(method, **params):
    return lambda X, y, graph, y_true: method(X, y, graph, **params)


GRAPHS = {"gl": gl_graph, "skssl": skssl_graph}

# name -> (graph the method needs, or None; method)
METHODS = {
    "PoissonLearning": (None, poisson_learning),
    "PoissonLearning(method='poisson')": (
        None,
        lambda X, y, g, t: poisson_learning(X, y, g, t, method="poisson"),
    ),
    "PoissonLearning(method='laplace')": (
        None,
        lambda X, y, g, t: poisson_learning(X, y, g, t, method="laplace"),
    ),
    "PoissonLearning(n_neighbors=5)": (
        None,
        lambda X, y, g, t: poisson_learning(X, y, g, t, n_neighbors=5),
    ),
    "PoissonLearning(n_neighbors=10)": (
        None,
        lambda X, y, g, t: poisson_learning(X, y, g, t, n_neighbors=10),
    ),
    "PoissonLearning(mbo=True, true class_prior)": (None, poisson_mbo_oracle),
    "GL Poisson (gl knn10)": (
        "gl",
        lambda X, y, g, t: gl_model(X, y, g, t, model="poisson"),
    ),
    "GL Poisson (skssl graph)": (
        "skssl",
        lambda X, y, g, t: gl_model(X, y, g, t, model="poisson"),
    ),
    "GL Poisson iteration (skssl graph)": (
        "skssl",
        lambda X, y, g, t: gl_model(
            X, y, g, t, model="poisson", solver="gradient_descent"
        ),
    ),
    "GL Laplace (gl knn10)": (
        "gl",
        lambda X, y, g, t: gl_model(X, y, g, t, model="laplace"),
    ),
    "GL Laplace (skssl graph)": (
        "skssl",
        lambda X, y, g, t: gl_model(X, y, g, t, model="laplace"),
    ),
    "GL Laplace mean shift (skssl graph)": (
        "skssl",
        lambda X, y, g, t: gl_model(X, y, g, t, model="laplace", mean_shift=True),
    ),
    "sklearn LabelSpreading(knn)": (None, _peer(sk_spreading)),
    "LabelSpreadingCG": (None, _peer(label_spreading_cg)),
    "LabelSpreadingCG(n_neighbors=5)": (
        None,
        _peer(label_spreading_cg, n_neighbors=5),
    ),
}


# --------------------------------------------------------------------------- #
# Protocol
# --------------------------------------------------------------------------- #


def evaluate(X, y, per_class, seeds, desc="", methods=None):
    """Accuracy on the unlabeled rows of every method for every label draw."""
    from skssl.datasets import mask_labels

    methods = {name: METHODS[name] for name in methods or METHODS}
    # Fixed graphs are built once per data set, outside the timed fits.
    graphs = {
        kind: GRAPHS[kind](X) for kind in {m[0] for m in methods.values()} if kind
    }
    out = {name: {"accuracy": [], "seconds": []} for name in methods}
    for seed in tqdm(seeds, desc=desc, leave=False):
        ym = mask_labels(y, per_class=per_class, random_state=seed)
        unlabeled = ym == -1
        for name, (kind, method) in methods.items():
            start = time.perf_counter()
            pred = np.asarray(quiet(method, X, ym, graphs.get(kind), y))
            out[name]["seconds"].append(time.perf_counter() - start)
            out[name]["accuracy"].append(
                float(np.mean(pred[unlabeled] == y[unlabeled]))
            )
    for rec in out.values():
        acc = np.asarray(rec["accuracy"])
        rec["mean"] = float(acc.mean())
        rec["std"] = float(acc.std())
        rec["mean_seconds"] = float(np.mean(rec["seconds"]))
    return out


def run(
    seeds,
    quick,
    *,
    sets=DATASETS,
    load=load_dataset,
    labels=LABELS_PER_CLASS,
    methods=None,
):
    """``evaluate`` on every set and label count (the benchmark sets by default)."""
    results = {}
    for name in sets:
        X, y = load(name, quick=quick)
        results[name] = {
            "n_samples": int(X.shape[0]),
            "n_features": int(X.shape[1]),
            "n_classes": int(np.unique(y).size),
        }
        for p in labels:
            results[name][str(p)] = evaluate(
                X, y, p, seeds, desc=f"{name} ({p})", methods=methods
            )
    return results


# --------------------------------------------------------------------------- #
# Held-out sets (--heldout): the target comparison on data the defaults never saw
# --------------------------------------------------------------------------- #

HELDOUT_LABELS = (1, 2, 3, 5, 10)
HELDOUT_METHODS = (
    "PoissonLearning",
    "PoissonLearning(method='poisson')",
    "PoissonLearning(method='laplace')",
    *TARGET_PEERS,
)
HELDOUT_SETS = {
    "two moons noise 0.2": "make_moons(1000, noise=0.2, random_state=3)",
    "gaussian quantiles": (
        "make_gaussian_quantiles(n_samples=1000, n_features=4, n_classes=3, "
        "random_state=5)"
    ),
    "anisotropic blobs": (
        "make_blobs(1000, centers=5, cluster_std=1.5, random_state=21) times a "
        "random 2 x 2 map"
    ),
    "classification": (
        "make_classification(1500, n_features=20, n_informative=6, n_redundant=4, "
        "n_classes=4, class_sep=1.5, random_state=11), standardized"
    ),
    "MNIST-1D draw 11": "load_mnist1d(4000, random_state=11)",
}


def load_heldout(name, quick=False):
    from sklearn.datasets import make_blobs, make_gaussian_quantiles, make_moons

    if name == "two moons noise 0.2":
        return make_moons(1000, noise=0.2, random_state=3)
    if name == "gaussian quantiles":
        return make_gaussian_quantiles(
            n_samples=1000, n_features=4, n_classes=3, random_state=5
        )
    if name == "anisotropic blobs":
        X, y = make_blobs(1000, centers=5, cluster_std=1.5, random_state=21)
        return X @ np.random.default_rng(21).normal(size=(2, 2)), y
    if name == "classification":
        return _classification(1500, random_state=11)
    return _mnist1d(1000 if quick else 4000, random_state=11)


def _classification(n_samples, random_state):
    """The four-class make_classification set of the studies, standardized."""
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(
        n_samples,
        n_features=20,
        n_informative=6,
        n_redundant=4,
        n_classes=4,
        class_sep=1.5,
        random_state=random_state,
    )
    return StandardScaler().fit_transform(X), y


def _mnist1d(n_samples, random_state):
    from skssl.datasets import load_mnist1d

    data = load_mnist1d(n_samples, random_state=random_state)
    return data.X.astype(np.float64), data.y


# --------------------------------------------------------------------------- #
# Larger n (--rate): label rate against labels per class
# --------------------------------------------------------------------------- #

RATE_LABELS = (1, 3, 10, 30)
RATE_SETS = {
    "manifold mixture n=10,000": "make_manifold_mixture(10_000, random_state=0)",
    "manifold mixture n=30,000": "make_manifold_mixture(30_000, random_state=0)",
    "MNIST-1D n=12,000": "load_mnist1d(12_000, random_state=5)",
    "classification n=10,000": (
        "make_classification(10_000, n_features=20, n_informative=6, "
        "n_redundant=4, n_classes=4, class_sep=1.5, random_state=7), standardized"
    ),
}


def load_rate(name, quick=False):
    from _common import make_manifold_mixture

    scale = 10 if quick else 1
    if name.startswith("manifold mixture"):
        n = 10_000 if "10,000" in name else 30_000
        return make_manifold_mixture(n // scale, random_state=0)
    if name.startswith("MNIST-1D"):
        return _mnist1d(12_000 // scale, random_state=5)
    return _classification(10_000 // scale, random_state=7)


# The studies on extra sets: name -> (sets, loader, labels per class), each
# run with the target comparison's methods (HELDOUT_METHODS).
STUDIES = {
    "heldout": (HELDOUT_SETS, load_heldout, HELDOUT_LABELS),
    "rate": (RATE_SETS, load_rate, RATE_LABELS),
}


def study(kind, seeds, quick):
    """``run`` on the sets of one study (``STUDIES``)."""
    sets, load, labels = STUDIES[kind]
    return run(
        seeds, quick, sets=sets, load=load, labels=labels, methods=HELDOUT_METHODS
    )


# --------------------------------------------------------------------------- #
# Early-stopped iteration study (--iteration)
# --------------------------------------------------------------------------- #

ITERATION_STEPS = tuple(4**i for i in range(1, 7))  # 4 ... 4096
HOLDOUT_FOLDS = 5


def _iterates(W, B, component, steps=ITERATION_STEPS):
    """Poisson scores after each number of iteration steps, and converged."""
    from skssl.poisson import solve_poisson

    degree = np.asarray(W.sum(axis=1)).ravel()
    P = W.multiply(1.0 / degree[:, None]).tocsr()
    source = B / degree[:, None]
    U, t, out = np.zeros_like(B), 0, {}
    for T in steps:
        while t < T:
            U = source + P @ U
            t += 1
        out[str(T)] = U.copy()
    out["inf"] = solve_poisson(W, B, components=component, warn=False).solution
    return out


def _predictions(W, y, n_classes):
    """Labels per T, with PoissonLearning's sources, balance and components."""
    from scipy.sparse.csgraph import connected_components

    from skssl.poisson import _single_class_rows, balance_scores, poisson_source

    _, component = connected_components(W, directed=False)
    B = poisson_source(y, n_classes, components=component)
    single = _single_class_rows(component, y)
    preds = {}
    for T, U in _iterates(W, B, component).items():
        pred = balance_scores(U, y, n_classes).argmax(1)
        preds[T] = np.where(single >= 0, single, pred)
    return preds


def _held_out_steps(W, y, n_classes, seed):
    """T with the most held-out labels right (one label per class per fold)."""
    labeled = np.flatnonzero(y >= 0)
    counts = np.bincount(y[labeled], minlength=n_classes)
    n_folds = min(int(counts.min()), HOLDOUT_FOLDS)
    if n_folds < 2:
        return "inf"
    rng = np.random.default_rng(seed)
    fold = np.empty(labeled.size, dtype=int)
    for c in range(n_classes):
        rows = rng.permutation(np.flatnonzero(y[labeled] == c))
        fold[rows] = np.arange(rows.size) % n_folds
    right = {}
    for f in range(n_folds):
        held = labeled[fold == f]
        y_train = y.copy()
        y_train[held] = -1
        for T, pred in _predictions(W, y_train, n_classes).items():
            right[T] = right.get(T, 0) + int(np.sum(pred[held] == y[held]))
    best = max(right.values())
    return max((T for T in right if right[T] == best), key=float)


def iteration_study(seeds, quick):
    from skssl.datasets import mask_labels

    study = {}
    for name in DATASETS:
        X, y = load_dataset(name, quick=quick)
        W = skssl_graph(X)
        n_classes = int(y.max()) + 1
        study[name] = {}
        for p in LABELS_PER_CLASS:
            acc = {}
            for seed in tqdm(seeds, desc=f"iteration {name} ({p})", leave=False):
                ym = mask_labels(y, per_class=p, random_state=seed)
                unlabeled = ym == -1
                preds = _predictions(W, ym, n_classes)
                preds["held-out T"] = preds[_held_out_steps(W, ym, n_classes, seed)]
                for T, pred in preds.items():
                    hit = np.mean(pred[unlabeled] == y[unlabeled])
                    acc.setdefault(T, []).append(float(hit))
            study[name][str(p)] = {T: float(np.mean(a)) for T, a in acc.items()}
    return study


def _iteration_section(payload):
    study = payload.get("iteration")
    if not study:
        return []
    results = payload["results"]
    rows = []
    for s, p in _columns(results):
        if s not in study:
            continue
        best = max(results[s][p][k]["mean"] for k in TARGET_PEERS)
        cells = study[s][p]
        rows.append(
            [f"{s} ({p})", f"{best:.3f}"]
            + [f"{100 * (cells[T] - best):+.1f}" for T in cells]
        )
    headers = ["data (labels/class)", "best peer"]
    headers += [f"T={T}" if T[0].isdigit() or T == "inf" else T for T in cells]
    return [
        "## Early-stopped Poisson iteration",
        "",
        "The paper's iteration `U <- D^-1 B + D^-1 W U` stopped after T steps on "
        "the graph PoissonLearning builds (T=inf: the converged solve), balanced as "
        "PoissonLearning balances, and T chosen per fit by holding out one label "
        f"per class at a time (up to {HOLDOUT_FOLDS} folds; one label per class "
        "leaves nothing to hold out and keeps T=inf). Cells: points against the "
        "best peer of the target table, mean over the same label draws. Command: "
        "`python benchmarks/bench_poisson.py --iteration`.",
        "",
        *markdown_table(rows, headers),
        "",
    ]


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def _columns(results):
    return [(s, p) for s in results for p in map(str, LABELS_PER_CLASS)]


def _cell(res, name):
    cell = f"{res[name]['mean']:.3f} ± {res[name]['std']:.3f}"
    best = max(r["mean"] for r in res.values())
    return f"**{cell}**" if res[name]["mean"] == best else cell


def markdown(payload, heldout=None, rate=None):
    results = payload["results"]
    keys = _columns(results)
    methods = list(results[keys[0][0]][keys[0][1]])
    m = payload["machine"]
    seeds = payload["seeds"]
    n_mnist = results.get("MNIST-1D", {}).get("n_samples", 4000)
    lines = [
        "# PoissonLearning benchmarks",
        "",
        f"Generated by `benchmarks/bench_poisson.py` from `{JSON}`. Machine: "
        f"{m['platform']}, {m['cpu_count']} CPUs, Python {m['python']}, numpy "
        f"{m['numpy']}, scipy {m['scipy']}, scikit-learn {m['scikit-learn']}, "
        f"faiss {m['faiss']}, graphlearning {m['graphlearning']}; one thread for "
        "faiss and BLAS, the machine shared with other jobs. Command: "
        f"`{payload['command']}`.",
        "",
        f"{len(seeds)} label draws (`mask_labels(y, per_class=p, random_state=s)`, "
        f"s = {seeds[0]}..{seeds[-1]}), mean ± std accuracy on the unlabeled rows; "
        "wine and breast_cancer standardized, two moons n=1000 noise 0.1, two "
        f"circles n=1000 noise 0.05 factor 0.5, MNIST-1D `load_mnist1d({n_mnist})`. "
        "`skssl graph` is the graph PoissonLearning builds with its defaults; "
        "`GL Poisson iteration` is GraphLearning's `solver='gradient_descent'`, "
        "the paper's random-walk iteration. The MBO row knows the true class "
        "proportions, which no other method does.",
        "",
    ]
    for name in results:
        cols = [results[name][p] for p in map(str, LABELS_PER_CLASS)]
        rows = [
            [meth, *(_cell(c, meth) for c in cols)]
            + [f"{np.mean([c[meth]['mean_seconds'] for c in cols]):.3f}"]
            for meth in methods
        ]
        n, d = results[name]["n_samples"], results[name]["n_features"]
        headers = [
            "method",
            *(f"{p} label{'s' * (p > 1)}/class" for p in LABELS_PER_CLASS),
        ]
        lines += [
            f"## {name} ({n} × {d})",
            "",
            *markdown_table(rows, [*headers, "mean time (s)"]),
            "",
        ]
    lines += _target_section(results, keys)
    if "PoissonLearning(method='laplace')" in methods:
        lines += _auto_section(results, keys)
    if heldout is not None:
        lines += _heldout_section(heldout)
    if rate is not None:
        lines += _rate_section(rate)
    lines += _iteration_section(payload)
    return lines


def _target_rows(results, keys, extra=()):
    """Per cell: PoissonLearning's defaults against the best target peer.

    Each method in ``extra`` adds its margin to that peer before the verdict.
    """
    rows = []
    for s, p in keys:
        res = results[s][p]
        best_name = max(TARGET_PEERS, key=lambda k: res[k]["mean"])
        best = res[best_name]["mean"]
        ours = res["PoissonLearning"]["mean"]
        margin = ours - best
        rows.append(
            [
                f"{s} ({p})",
                f"{ours:.3f}",
                f"{best:.3f} ({best_name})",
                f"{100 * margin:+.1f}",
                *(f"{100 * (res[m]['mean'] - best):+.1f}" for m in extra),
                "yes" if margin >= -0.005 else "no",
            ]
        )
    mean_ours = np.mean([results[s][p]["PoissonLearning"]["mean"] for s, p in keys])
    mean_best = np.mean(
        [max(results[s][p][k]["mean"] for k in TARGET_PEERS) for s, p in keys]
    )
    return rows, mean_ours, mean_best


TARGET_HEADERS = [
    "data (labels/class)",
    "PoissonLearning",
    "best peer",
    "margin (points)",
    "within 0.5",
]


def _auto_section(results, keys):
    """Each method forced against the best target peer, and what auto picked."""
    from skssl.poisson import AUTO_POISSON_MAX_LABEL_RATE

    rows = []
    for s, p in keys:
        res = results[s][p]
        best = max(res[k]["mean"] for k in TARGET_PEERS)
        poisson = res["PoissonLearning(method='poisson')"]["mean"]
        laplace = res["PoissonLearning(method='laplace')"]["mean"]
        rows.append(
            [
                f"{s} ({p})",
                f"{100 * _label_rate(results[s], p):.2f} %",
                f"{best:.3f}",
                f"{100 * (poisson - best):+.1f}",
                f"{100 * (laplace - best):+.1f}",
                _auto_pick(results[s], p),
            ]
        )
    return [
        "## The auto rule",
        "",
        "`method='auto'` (the default) solves Poisson learning when under "
        f"{100 * AUTO_POISSON_MAX_LABEL_RATE:g} % of the rows are labeled and "
        "Laplace learning with GraphLearning's mean shift from there "
        "(`skssl.poisson.auto_method`). Points against the best target peer "
        "with each method forced:",
        "",
        *markdown_table(rows, AUTO_HEADERS),
        "",
    ]


AUTO_HEADERS = [
    "data (labels/class)",
    "label rate",
    "best peer",
    "method='poisson'",
    "method='laplace'",
    "auto picks",
]


def _n_labeled(entry, per_class):
    """Labeled rows of one set at ``per_class`` labels per class."""
    return int(per_class) * entry["n_classes"]


def _label_rate(entry, per_class):
    return _n_labeled(entry, per_class) / entry["n_samples"]


def _auto_pick(entry, per_class):
    from skssl.poisson import auto_method

    return auto_method(_n_labeled(entry, per_class), entry["n_samples"])


def _rate_section(rate):
    """The larger-n study: each method against the best peer, by label rate."""
    results = rate["results"]
    keys = [(s, str(p)) for s in results for p in RATE_LABELS]
    rows, mean_ours, mean_best = _target_rows(results, keys)
    picks = []
    for (s, p), row in zip(keys, rows, strict=True):
        res = results[s][p]
        poisson = res["PoissonLearning(method='poisson')"]["mean"]
        laplace = res["PoissonLearning(method='laplace')"]["mean"]
        # The former rule: Poisson learning below two labels per class.
        old = "poisson" if int(p) < 2 else "laplace"
        picks.append(
            [
                row[0],
                f"{100 * _label_rate(results[s], p):.2f} %",
                row[2],
                f"{100 * (poisson - laplace):+.1f}",
                _auto_pick(results[s], p),
                old,
                row[3],
                row[4],
            ]
        )
    sets = "; ".join(f"{name}: `{how}`" for name, how in RATE_SETS.items())
    return [
        "## Larger n: label rate, not labels per class",
        "",
        "The same comparison at 10,000 to 30,000 rows, where many labels per "
        f"class are still a low label rate ({sets}), {len(rate['seeds'])} label "
        "draws. `Poisson - Laplace` is method='poisson' minus method='laplace' "
        "in points; `former rule` is what auto picked before it followed the "
        "label rate (Poisson learning below 2 labels per class). These sets "
        "informed the rule. Command: "
        f"`{rate['command']}`.",
        "",
        *markdown_table(
            picks,
            [
                "data (labels/class)",
                "label rate",
                "best peer",
                "Poisson - Laplace",
                "auto picks",
                "former rule",
                "PoissonLearning margin (points)",
                "within 0.5",
            ],
        ),
        "",
        f"Mean over the columns: PoissonLearning {mean_ours:.3f}, column-wise best "
        f"peer {mean_best:.3f}.",
        "",
    ]


def _heldout_section(heldout):
    results = heldout["results"]
    keys = [(s, str(p)) for s in results for p in HELDOUT_LABELS]
    rows, mean_ours, mean_best = _target_rows(
        results,
        keys,
        extra=(
            "PoissonLearning(method='poisson')",
            "PoissonLearning(method='laplace')",
        ),
    )
    sets = "; ".join(f"{name}: `{how}`" for name, how in HELDOUT_SETS.items())
    return [
        "## Held-out sets",
        "",
        "The target comparison on sets that played no part in choosing the "
        "defaults until the auto rule followed the label rate (they informed "
        f"its 1 % threshold; {sets}), {len(heldout['seeds'])} label draws. "
        "Command: "
        f"`{heldout['command']}`.",
        "",
        *markdown_table(
            rows,
            [
                *TARGET_HEADERS[:4],
                "method='poisson'",
                "method='laplace'",
                TARGET_HEADERS[4],
            ],
        ),
        "",
        f"Mean over the columns: PoissonLearning {mean_ours:.3f}, column-wise best "
        f"peer {mean_best:.3f}.",
        "",
    ]


def _target_section(results, keys):
    rows, mean_ours, mean_best = _target_rows(results, keys)
    ls = [
        [
            f"{s} ({p})",
            f"{results[s][p]['LabelSpreadingCG']['mean']:.3f}",
            f"{results[s][p]['LabelSpreadingCG(n_neighbors=5)']['mean']:.3f}",
        ]
        for s, p in keys
    ]
    return [
        "## Targets",
        "",
        "PoissonLearning (defaults) against the best of GraphLearning Laplace / "
        "Poisson (either graph) and scikit-learn LabelSpreading in each column; "
        "the target is a margin of -0.5 points or better everywhere and a mean "
        "at least that of the column-wise best.",
        "",
        *markdown_table(rows, TARGET_HEADERS),
        "",
        f"Mean over the columns: PoissonLearning {mean_ours:.3f}, column-wise best "
        f"peer {mean_best:.3f}.",
        "",
        "## LabelSpreadingCG: n_neighbors 7 (default) against 5",
        "",
        *markdown_table(ls, ["data (labels/class)", "n_neighbors=7", "n_neighbors=5"]),
        "",
    ]


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--report", action="store_true", help="only rebuild poisson.md")
    p.add_argument("--seeds", type=int, default=10, help="label draws (default 10)")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 3 label draws, small MNIST-1D"
    )
    p.add_argument(
        "--heldout",
        action="store_true",
        help=f"only run the held-out sets study (into {HELDOUT_JSON})",
    )
    p.add_argument(
        "--rate",
        action="store_true",
        help=f"only run the larger-n label rate study (into {RATE_JSON})",
    )
    p.add_argument(
        "--iteration",
        action="store_true",
        help="also run the early-stopped iteration study (into the same json)",
    )
    p.add_argument(
        "--iteration-only",
        action="store_true",
        help="run only that study and add it to the existing json",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds = min(args.seeds, 3)
    return args


def main(argv=None):
    import faiss

    args = parse_args(argv)
    if args.iteration_only:
        payload = read_json(args.out / JSON)
        seeds = payload["seeds"]
        faiss.omp_set_num_threads(1)
        with threadpool_limits(limits=1):
            payload["iteration"] = iteration_study(seeds, args.quick)
        payload["iteration_command"] = command_line()
        write_json(args.out / JSON, payload)
    elif args.heldout or args.rate:
        seeds = list(range(args.seeds))
        kind, name = ("heldout", HELDOUT_JSON) if args.heldout else ("rate", RATE_JSON)
        faiss.omp_set_num_threads(1)
        with threadpool_limits(limits=1):
            results = study(kind, seeds, args.quick)
        write_json(
            args.out / name,
            {
                "command": command_line(),
                "machine": machine_info(),
                "seeds": seeds,
                "results": results,
            },
        )
    elif not args.report:
        seeds = list(range(args.seeds))
        faiss.omp_set_num_threads(1)
        log(f"[poisson] {', '.join(DATASETS)}, {len(seeds)} label draws")
        start = time.perf_counter()
        with threadpool_limits(limits=1):
            results = run(seeds, args.quick)
        payload = {
            "command": command_line(),
            "machine": machine_info(),
            "seeds": seeds,
            "wall_seconds": time.perf_counter() - start,
            "results": results,
        }
        if args.iteration:
            with threadpool_limits(limits=1):
                payload["iteration"] = iteration_study(seeds, args.quick)
        write_json(args.out / JSON, payload)
    payload = read_json(args.out / JSON)
    heldout, rate = (
        read_json(args.out / name) if (args.out / name).exists() else None
        for name in (HELDOUT_JSON, RATE_JSON)
    )
    path = args.out / MARKDOWN
    path.write_text("\n".join(markdown(payload, heldout, rate)) + "\n")
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
