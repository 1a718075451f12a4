"""Deep estimators with their defaults on raw tabular features, against an MLP.

Two sections:

``--targets`` (default)
    wine, breast_cancer, digits and MNIST-1D as plain 40-column rows, 5, 10
    and 20 labels per class, 5 seeds: a stratified 70 / 30 train / test split
    and a label draw per seed. Test accuracy of scikit-learn's
    ``MLPClassifier`` on the labeled rows (standardized, the reference a user
    would try first), :class:`skssl.LabelSpreadingCG` on standardized rows,
    and, with their defaults on the raw rows, ``DeepLabelPropagationClassifier``
    and ``CCLPClassifier`` and each one's supervised reference
    (``unlabeled="ignore"``: the same network and steps on the labeled rows).
    Fit times on digits are reported too.
``--evidence``
    The data the defaults were chosen on, which the targets never saw: iris
    and four synthetic ``make_classification`` sets with columns on scales
    from 1e-2 to 1e3, 5 and 20 labels per class, 3 seeds. One parameter of
    DLP or CCLP moved at a time from the defaults, against the same MLP.
    ``--methods`` and ``--settings`` re-run part of it (e.g. after a default
    of one estimator changed); the other rows are kept from the json.

Writes ``results/tabular.json`` and ``results/tabular.md``.

Examples
--------
    python benchmarks/bench_tabular.py                       # ~10 min
    python benchmarks/bench_tabular.py --evidence            # ~40 min
    python benchmarks/bench_tabular.py --evidence --methods dlp   # ~5 min
    python benchmarks/bench_tabular.py --quick --out /tmp/tabular
    python benchmarks/bench_tabular.py --report
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import (
    RESULTS,
    command_line,
    machine_info,
    markdown_table,
    mean_std,
    read_json,
    write_json,
)
from sklearn.datasets import (
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    make_classification,
)
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skssl import CCLPClassifier, DeepLabelPropagationClassifier, LabelSpreadingCG
from skssl.datasets import load_mnist1d, mask_labels

TARGET_SETS = ("wine", "breast_cancer", "digits", "MNIST-1D rows")
EVIDENCE_SETS = ("iris", "synthetic 0", "synthetic 1", "synthetic 2", "synthetic 3")
METHODS = {
    "mlp": "sklearn MLP, labeled rows (scaled)",
    "label_spreading": "LabelSpreadingCG (scaled)",
    "dlp_supervised": "DLP network, labeled rows only",
    "dlp": "DLP",
    "cclp_supervised": "CCLP network, labeled rows only",
    "cclp": "CCLP",
}
# One parameter moved off the defaults at a time (the earlier defaults first).
EVIDENCE = {
    "dlp": {
        "defaults": {},
        "lr=1e-3 (the base's rate)": dict(lr=1e-3),
        "n_neighbors=50, alpha=0.99 (paper)": dict(n_neighbors=50, alpha=0.99),
        "alpha=0.99": dict(alpha=0.99),
        "alpha=0.8": dict(alpha=0.8),
        "n_neighbors=5": dict(n_neighbors=5),
        "n_neighbors=20": dict(n_neighbors=20),
        "min_batches_per_epoch=1": dict(min_batches_per_epoch=1),
        "module__hidden=(128,)": dict(module__hidden=(128,)),
        "module__normalize=True": dict(module__normalize=True),
        "augment=GaussianNoise(0.1)": "noise",
        "module__dropout=0.3": dict(module__dropout=0.3),
        "consistency_weight=1 (Mean Teacher term)": dict(consistency_weight=1.0),
        "max_epochs=60 (twice the default)": dict(max_epochs=60),
    },
    "cclp": {
        "defaults": {},
        "weight=1, similarity='dot' (paper)": dict(weight=1.0, similarity="dot"),
        "weight=1": dict(weight=1.0),
        "weight=0.3": dict(weight=0.3),
        "similarity='dot'": dict(similarity="dot"),
        "max_epochs=40": dict(max_epochs=40),
        "steps=1": dict(steps=1),
        "min_batches_per_epoch=1": dict(min_batches_per_epoch=1),
        "module__hidden=(128,)": dict(module__hidden=(128,)),
        "labeled_per_class=5": dict(labeled_per_class=5),
        "lr=3e-3 (DLP's rate)": dict(lr=3e-3),
        "weight=0.03": dict(weight=0.03),
        "module__dropout=0.3": dict(module__dropout=0.3),
        "batch_size_unlabeled=200": dict(batch_size_unlabeled=200),
    },
}


def load(name):
    """``(X, y)`` of a data set, features as they come (no scaling)."""
    if name == "wine":
        return load_wine(return_X_y=True)
    if name == "breast_cancer":
        return load_breast_cancer(return_X_y=True)
    if name == "digits":
        return load_digits(return_X_y=True)
    if name == "iris":
        return load_iris(return_X_y=True)
    if name == "MNIST-1D rows":
        data = load_mnist1d(4000, random_state=0)
        return data.X, data.y
    k = int(name.split()[-1])
    X, y = make_classification(
        n_samples=600,
        n_features=(10, 20, 30, 15)[k],
        n_informative=(5, 8, 6, 10)[k],
        n_redundant=2,
        n_classes=(3, 4, 2, 5)[k],
        class_sep=(1.0, 1.5, 0.8, 1.2)[k],
        random_state=k,
    )
    rng = np.random.default_rng(k)
    scales = 10 ** rng.uniform(-2, 3, X.shape[1])
    return X * scales + rng.normal(0, 100, X.shape[1]), y


def split(X, y, per_class, seed):
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=seed
    )
    return (
        X_train,
        mask_labels(y_train, per_class=per_class, random_state=seed),
        (
            X_test,
            y_test,
        ),
    )


def make(method, seed, params=None):
    params = dict(params or {})
    if method == "mlp":
        return make_pipeline(StandardScaler(), MLPClassifier(random_state=seed))
    if method == "label_spreading":
        return make_pipeline(StandardScaler(), LabelSpreadingCG())
    cls = DeepLabelPropagationClassifier if method.startswith("dlp") else CCLPClassifier
    if method.endswith("_supervised"):
        params["unlabeled"] = "ignore"
    return cls(random_state=seed, **params)


def fit_score(method, seed, X, y, test, params=None):
    """Test accuracy and fit seconds; the MLP sees the labeled rows only."""
    model = make(method, seed, params)
    if method == "mlp":
        X, y = X[y != -1], y[y != -1]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    seconds = time.perf_counter() - start
    return float(np.mean(model.predict(test[0]) == test[1])), seconds


def run_targets(args):
    runs = []
    for name in args.sets:
        X, y = load(name)
        for per_class in args.labels:
            for seed in range(args.seeds):
                X_train, y_train, test = split(X, y, per_class, seed)
                for method in METHODS:
                    acc, seconds = fit_score(method, seed, X_train, y_train, test)
                    runs.append(
                        dict(
                            data=name,
                            per_class=per_class,
                            seed=seed,
                            method=method,
                            accuracy=acc,
                            seconds=seconds,
                        )
                    )
                print(f"{name} {per_class}/class seed {seed} done", flush=True)
    return runs


def run_evidence(args):
    from skssl.deep import GaussianNoise

    runs = []
    for name in EVIDENCE_SETS:
        X, y = load(name)
        for per_class in (5, 20):
            for seed in range(args.evidence_seeds):
                X_train, y_train, test = split(X, y, per_class, seed)
                if "mlp" in args.methods:
                    acc, _ = fit_score("mlp", seed, X_train, y_train, test)
                    runs.append(
                        dict(
                            data=name,
                            per_class=per_class,
                            seed=seed,
                            method="mlp",
                            setting="",
                            accuracy=acc,
                        )
                    )
                for method, settings in EVIDENCE.items():
                    if method not in args.methods:
                        continue
                    for setting, params in settings.items():
                        if args.settings and setting not in args.settings:
                            continue
                        if params == "noise":
                            params = dict(augment=GaussianNoise(0.1))
                        acc, _ = fit_score(method, seed, X_train, y_train, test, params)
                        runs.append(
                            dict(
                                data=name,
                                per_class=per_class,
                                seed=seed,
                                method=method,
                                setting=setting,
                                accuracy=acc,
                            )
                        )
                print(f"evidence {name} {per_class}/class seed {seed} done", flush=True)
    return runs


def _cells(runs, **where):
    return [r for r in runs if all(r[k] == v for k, v in where.items())]


def targets_tables(runs, sets, labels):
    rows, gains = [], {m: [] for m in ("dlp", "cclp")}
    for name in sets:
        for per_class in labels:
            acc = {
                m: [
                    r["accuracy"]
                    for r in _cells(runs, data=name, per_class=per_class, method=m)
                ]
                for m in METHODS
            }
            if not acc["mlp"]:
                continue
            row = [f"{name} ({per_class})"] + [mean_std(acc[m]) for m in METHODS]
            for m in gains:
                gains[m].append(np.mean(acc[m]) - np.mean(acc["mlp"]))
            row += [
                f"{100 * (np.mean(acc[m]) - np.mean(acc['mlp'])):+.1f}" for m in gains
            ]
            rows.append(row)
    headers = ["data (labels/class)", *METHODS.values(), "DLP − MLP", "CCLP − MLP"]
    summary = [
        [label, f"{100 * np.mean(g):+.2f}", f"{100 * np.min(g):+.2f}"]
        for label, g in (("DLP", gains["dlp"]), ("CCLP", gains["cclp"]))
    ]
    return rows, headers, summary


def timing_rows(runs):
    rows = []
    for method, label in METHODS.items():
        sel = _cells(runs, data="digits", method=method)
        if sel:
            s = [r["seconds"] for r in sel]
            rows.append([label, f"{np.mean(s):.2f}", f"{np.max(s):.2f}"])
    return rows


def evidence_rows(runs):
    mlp = {
        (r["data"], r["per_class"], r["seed"]): r["accuracy"]
        for r in runs
        if r["method"] == "mlp"
    }
    rows = []
    for method, settings in EVIDENCE.items():
        for setting in settings:
            sel = _cells(runs, method=method, setting=setting)
            if not sel:
                continue
            per_cell = {}
            for r in sel:
                key = (r["data"], r["per_class"])
                per_cell.setdefault(key, []).append(
                    r["accuracy"] - mlp[(r["data"], r["per_class"], r["seed"])]
                )
            means = [np.mean(v) for v in per_cell.values()]
            rows.append(
                [
                    method.upper(),
                    setting,
                    f"{np.mean([r['accuracy'] for r in sel]):.3f}",
                    f"{100 * np.mean(means):+.2f}",
                    f"{100 * np.min(means):+.2f}",
                ]
            )
    return rows


def markdown(results):
    lines = [
        "# Deep estimators with their defaults on tabular data",
        "",
        f"Machine: {results['machine']['platform']}, "
        f"{results['machine']['cpu_count']} CPUs, torch {torch.__version__}; "
        "one torch thread. Shared with other jobs: compare times within a "
        "table.",
        "",
    ]
    if "targets" in results:
        t = results["targets"]
        rows, headers, summary = targets_tables(t["runs"], t["sets"], t["labels"])
        lines += [
            "## Raw features, default parameters",
            "",
            f"Command: `{t['command']}`. Stratified 70 / 30 split and label draw "
            f"per seed ({t['seeds']} seeds), mean ± std test accuracy. DLP and CCLP "
            "get the raw features; the MLP and label spreading get them "
            'standardized (a `StandardScaler` in a pipeline). "labeled rows '
            "only\" is each estimator with `unlabeled='ignore'`.",
            "",
            *markdown_table(rows, headers),
            "",
            "Gain over the MLP in accuracy points, mean over the rows above and "
            "the worst row:",
            "",
            *markdown_table(summary, ["estimator", "mean gain", "worst row"]),
            "",
            "Fit seconds on digits (every label count and seed):",
            "",
            *markdown_table(timing_rows(t["runs"]), ["method", "mean", "max"]),
            "",
        ]
    if "evidence" in results:
        e = results["evidence"]
        commands = ", then ".join(f"`{c}`" for c in e.get("commands", [e["command"]]))
        lines += [
            "## Evidence for the defaults (data the targets never saw)",
            "",
            f"Command: {commands}. iris and four synthetic "
            "`make_classification` sets (600 rows, columns rescaled by factors "
            "from 1e-2 to 1e3 and shifted), 5 and 20 labels per class, "
            f"{e['seeds']} seeds. One parameter moved from the defaults at a "
            "time. Gain over the MLP in points: mean over the 10 cells, and the "
            "worst cell.",
            "",
            *markdown_table(
                evidence_rows(e["runs"]),
                ["estimator", "setting", "mean accuracy", "mean gain", "worst cell"],
            ),
            "",
        ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--targets", action="store_true")
    parser.add_argument("--evidence", action="store_true")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--evidence-seeds", type=int, default=3)
    parser.add_argument("--labels", type=int, nargs="+", default=[5, 10, 20])
    parser.add_argument("--sets", nargs="+", default=list(TARGET_SETS))
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["mlp", *EVIDENCE],
        choices=["mlp", *EVIDENCE],
        help="evidence: re-run only these (the MLP reference is 'mlp')",
    )
    parser.add_argument(
        "--settings", nargs="+", default=None, help="evidence: only these rows"
    )
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--out", type=Path, default=RESULTS / "tabular")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args(argv)
    path = args.out.with_suffix(".json")
    results = read_json(path) or {}
    if not args.report:
        if args.quick:
            args.seeds, args.evidence_seeds, args.labels = 1, 1, [5]
            args.sets = ["wine"]
        torch.set_num_threads(1)
        results["machine"] = machine_info()
        if args.targets or not args.evidence:
            results["targets"] = dict(
                command=command_line(),
                seeds=args.seeds,
                labels=args.labels,
                sets=args.sets,
                runs=run_targets(args),
            )
        if args.evidence:
            if "evidence" not in results and "mlp" not in args.methods:
                args.methods = ["mlp", *args.methods]  # the reference every row needs
            runs = run_evidence(args)
            partial = set(args.methods) != {"mlp", *EVIDENCE} or args.settings
            # A partial run replaces its rows and keeps the rest (and their commands).
            old = results.get("evidence") if partial else None
            fresh = {(r["method"], r["setting"]) for r in runs}
            kept = [
                r
                for r in (old["runs"] if old else [])
                if (r["method"], r["setting"]) not in fresh
            ]
            earlier = old.get("commands", [old["command"]]) if old else []
            commands = [*earlier, command_line()]
            results["evidence"] = dict(
                command=commands[0],
                commands=commands,
                seeds=args.evidence_seeds,
                runs=kept + runs,
            )
        write_json(path, results)
    text = markdown(results)
    path.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
