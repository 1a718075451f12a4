"""Deep label propagation and CCLP against their peers on MNIST-1D and digits.

For each number of labels per class and each seed it reports the test accuracy
of, every estimator with its default parameters apart from ``module``:

- ``supervised``: the DLP network trained on the labeled rows only
  (``DeepLabelPropagationClassifier(unlabeled="ignore")``: same module,
  augmentation, batches and number of steps);
- ``label_spreading``: :class:`skssl.LabelSpreadingCG` on the raw features,
  test rows labeled out of sample;
- ``self_training``: scikit-learn's ``SelfTrainingClassifier`` on a
  standardized logistic regression;
- ``dlp``: :class:`skssl.DeepLabelPropagationClassifier`;
- ``cclp_supervised`` and ``cclp``: :class:`skssl.CCLPClassifier` with
  ``unlabeled="ignore"`` and with its unlabeled rows,

plus, per epoch of DLP, the accuracy of its pseudo-labels and of the network's
own predictions on the unlabeled rows (Iscen et al. 2019, Fig. 4) and the test
accuracy. Finally it times the graph step (descriptors, kNN graph, conjugate
gradient) against a training epoch at n = 50,000, for exact search and both
IVF settings, and trains DLP there with exact search and with its ``"auto"``.

``--methods`` re-runs only the listed columns (every label count, seed and
data set) into the existing results, the others keeping theirs: after a
default of one estimator changed. CPU fits with the same seed repeat exactly,
so the columns kept are what a full run would give.

``--ceiling`` adds to the existing results the same network trained with every
MNIST-1D training row labeled, per seed: the most any use of the unlabeled rows
can reach, against which the gain of DLP and CCLP over their supervised network
is read.

Writes ``results/deep.json``, ``results/deep.md`` and
``results/deep_pseudo_label_accuracy.png``.

Examples
--------
    python benchmarks/bench_deep.py              # ~15 min on 2 CPU cores
    python benchmarks/bench_deep.py --quick --out /tmp/deep/deep   # ~1 min
    python benchmarks/bench_deep.py --report     # markdown and plot from json
    python benchmarks/bench_deep.py --ceiling    # + every row labeled (~1 min)
    python benchmarks/bench_deep.py --timing     # only the n = 50,000 section
    python benchmarks/bench_deep.py --methods cclp_supervised cclp   # ~12 min
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import faiss
import numpy as np
import sklearn
import skorch
import torch
from _common import RESULTS, command_line, markdown_table, read_json, write_json
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import SelfTrainingClassifier
from skorch.callbacks import Callback
from threadpoolctl import threadpool_limits

from skssl import CCLPClassifier, DeepLabelPropagationClassifier, LabelSpreadingCG
from skssl.datasets import load_mnist1d, mask_labels
from skssl.deep import CNN1DModule, MLPModule, PseudoLabelAccuracy
from skssl.diffusion import diffuse, label_matrix
from skssl.graph import KNNGraph

METHODS = (
    "supervised",
    "label_spreading",
    "self_training",
    "dlp",
    "cclp_supervised",
    "cclp",
)
LABELS = {
    "supervised": "DLP network, labeled rows only",
    "label_spreading": "LabelSpreadingCG",
    "self_training": "SelfTraining(LR)",
    "dlp": "DLP",
    "cclp_supervised": "CCLP network, labeled rows only",
    "cclp": "CCLP",
}
# CCLP at the other estimators' rate, reported beside its default (a table of
# its own: the rate suits sequences, not tabular rows).
FAST_CCLP = ("cclp_supervised_lr3e-3", "cclp_lr3e-3", "cclp_lr3e-3_dot")
LABELS.update(
    {
        "cclp_supervised_lr3e-3": "CCLP network, labeled rows only, lr=3e-3",
        "cclp_lr3e-3": "CCLP, lr=3e-3",
        "cclp_lr3e-3_dot": "CCLP, lr=3e-3, similarity='dot'",
    }
)
ALL_METHODS = (*METHODS, *FAST_CCLP)
BLOCKS = {"mnist1d": "MNIST-1D, CNN1DModule", "digits": "digits, MLPModule"}


class TestAccuracy(Callback):
    """Record the test accuracy after each epoch (monitoring only)."""

    def __init__(self, X_test, y_test):
        self.X_test = X_test
        self.y_test = y_test

    def on_epoch_end(self, net, **kwargs):
        net.history.record("test_acc", float(net.score(self.X_test, self.y_test)))


def _run_peers(
    X, y, X_test, y_test, *, module, epochs, warmup, seed, y_true, methods=METHODS
):
    """Test accuracy of ``methods`` on one split; DLP's per-epoch curves when
    DLP is among them (else None)."""
    common = dict(module=module, random_state=seed)
    if epochs is not None:
        common["max_epochs"] = epochs
    dlp = dict(common) if warmup is None else dict(common, n_warmup_epochs=warmup)
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    callbacks = [
        ("pseudo_label_acc", PseudoLabelAccuracy(y_true)),
        ("test_acc", TestAccuracy(X_test, y_test)),
    ]
    models = {
        "supervised": DeepLabelPropagationClassifier(unlabeled="ignore", **dlp),
        "label_spreading": LabelSpreadingCG(),
        "self_training": SelfTrainingClassifier(logistic),
        "dlp": DeepLabelPropagationClassifier(callbacks=callbacks, **dlp),
        "cclp_supervised": CCLPClassifier(unlabeled="ignore", **common),
        "cclp": CCLPClassifier(**common),
        "cclp_supervised_lr3e-3": CCLPClassifier(unlabeled="ignore", lr=3e-3, **common),
        "cclp_lr3e-3": CCLPClassifier(lr=3e-3, **common),
        "cclp_lr3e-3_dot": CCLPClassifier(lr=3e-3, similarity="dot", **common),
    }
    accuracy, seconds = {}, {}
    for name in methods:
        model = models[name]
        start = time.perf_counter()
        model.fit(X, y)
        accuracy[name] = float(model.score(X_test, y_test))
        seconds[name] = time.perf_counter() - start
    if "dlp" not in methods:
        return accuracy, seconds, None
    history = models["dlp"].history
    curves = {
        key: [row.get(key) for row in history]
        for key in ("pseudo_label_acc", "network_acc", "test_acc", "graph_dur", "dur")
    }
    return accuracy, seconds, curves


def mnist1d_split(args):
    data = load_mnist1d(args.n_train + args.n_test, random_state=0, test_size=0.0)
    X, y = data.X[: args.n_train], data.y[: args.n_train]
    return X, y, data.X[args.n_train :], data.y[args.n_train :]


def digits_split(args):
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X, X_test, y, y_test = train_test_split(
        X, y, test_size=0.3, stratify=y, random_state=0
    )
    return X, y, X_test, y_test


def bench_block(name, args, previous=None):
    """Every labels-per-class count and seed of one data set, and its summary.

    With ``previous`` (the block's earlier results), only ``args.methods`` are
    fitted; every other column, and DLP's curves unless DLP is re-run, comes
    from the earlier run of the same label count and seed.
    """
    if name == "mnist1d":
        X, y_true, X_test, y_test = mnist1d_split(args)
        module, labels = CNN1DModule, args.labels
    else:
        X, y_true, X_test, y_test = digits_split(args)
        module, labels = MLPModule, [args.digits_labels]
    methods = ALL_METHODS if previous is None else args.methods
    earlier = {(r["per_class"], r["seed"]): r for r in (previous or {}).get("runs", [])}
    runs = []
    for per_class in labels:
        for seed in range(args.seeds):
            y = mask_labels(y_true, per_class=per_class, random_state=seed)
            acc, seconds, curves = _run_peers(
                X,
                y,
                X_test,
                y_test,
                module=module,
                epochs=args.epochs,
                warmup=args.warmup,
                seed=seed,
                y_true=y_true,
                methods=methods,
            )
            if previous is not None:
                kept = earlier.get((per_class, seed))
                if kept is None:
                    raise SystemExit(
                        f"--methods: no earlier {name} run at {per_class} labels "
                        f"per class, seed {seed}; run the whole benchmark first"
                    )
                acc = {**kept["accuracy"], **acc}
                seconds = {**kept["seconds"], **seconds}
                curves = curves if curves is not None else kept["curves"]
            runs.append(
                dict(
                    per_class=per_class,
                    seed=seed,
                    accuracy=acc,
                    seconds=seconds,
                    curves=curves,
                )
            )
            cells = " ".join(f"{m}={acc[m]:.3f} ({seconds[m]:.0f} s)" for m in methods)
            print(f"{name} labels/class={per_class} seed={seed} {cells}", flush=True)
    return dict(n_train=len(X), n_test=len(X_test), runs=runs, summary=_summary(runs))


def bench_timing(args):
    """Graph step (descriptors + kNN graph + CG) against one epoch, at n_timing.

    Times each search on the same embeddings (exact; IVF with the one-off
    graph's defaults; IVF with DLP's own, what ``backend="auto"`` uses from
    20,000 rows), then trains DLP at its defaults with exact search and with
    ``"auto"`` on the same rows and labels, and scores both on held-out rows.
    """
    n_test = 2_000
    data = load_mnist1d(args.n_timing + n_test, random_state=1)
    X, X_test = data.X[: args.n_timing], data.X[args.n_timing :]
    y_true, y_test = data.y[: args.n_timing], data.y[args.n_timing :]
    y = mask_labels(y_true, per_class=50, random_state=0)
    clf = DeepLabelPropagationClassifier(
        module=CNN1DModule, n_warmup_epochs=0, max_epochs=2, random_state=0
    ).fit(X, y)
    rows = [
        dict(epoch=r["epoch"], epoch_s=r["dur"], graph_s=r["graph_dur"])
        for r in clf.history
    ]
    start = time.perf_counter()
    V = clf.embed(X)
    descriptors = time.perf_counter() - start
    Y = label_matrix(y, 10)
    searches = {
        "exact": ("exact", None),
        "ivf, one-off defaults": ("ivf", None),
        "DLP's auto": clf._graph_search(len(X), clf.n_neighbors),
    }
    split, graphs = {}, {}
    for name, (backend, index_params) in searches.items():
        # The graph DLP builds on its descriptors, with its own settings.
        start = time.perf_counter()
        graph = KNNGraph(
            clf.n_neighbors,
            metric="cosine",
            kernel="power",
            gamma=clf.gamma,
            backend=backend,
            index_params=index_params,
            random_state=0,
        ).fit(V)
        knn = time.perf_counter() - start
        start = time.perf_counter()
        diffuse(graph.affinity_, Y, alpha=clf.alpha, max_iter=clf.max_iter, warn=False)
        cg = time.perf_counter() - start
        graphs[name] = graph.affinity_
        split[name] = dict(
            descriptors_s=descriptors,
            knn_s=knn,
            cg_s=cg,
            knn_timings=graph.timings_,
            backend=graph.backend_,
            index_params=graph.index_params_,
        )
    epoch = float(np.mean([r["epoch_s"] for r in rows]))
    exact_edges = graphs["exact"] != 0
    for name, parts in split.items():
        graph_s = parts["descriptors_s"] + parts["knn_s"] + parts["cg_s"]
        parts["graph_s"] = graph_s
        parts["graph_share"] = graph_s / (graph_s + epoch)
        shared = exact_edges.multiply(graphs[name] != 0).sum()
        parts["edges_shared_with_exact"] = float(shared / exact_edges.sum())
    fits = {}
    for backend in ("exact", "auto"):
        model = DeepLabelPropagationClassifier(
            module=CNN1DModule, backend=backend, random_state=0
        )
        start = time.perf_counter()
        model.fit(X, y)
        history = [r for r in model.history if r.get("graph_dur")]
        fits[backend] = dict(
            seconds=time.perf_counter() - start,
            accuracy=float(model.score(X_test, y_test)),
            graph_s=float(np.mean([r["graph_dur"] for r in history])),
            epoch_s=float(np.mean([r["dur"] for r in history])),
            used=model.graph_.backend_,
        )
        print(f"timing fit backend={backend} {fits[backend]}", flush=True)
    return dict(
        command=command_line(),
        n=args.n_timing,
        epochs=rows,
        epoch_s=epoch,
        split=split,
        fits=fits,
    )


def bench_ceiling(args):
    """The DLP network trained on every MNIST-1D training row, labeled."""
    X, y, X_test, y_test = mnist1d_split(args)
    runs = []
    for seed in range(args.seeds):
        model = DeepLabelPropagationClassifier(
            module=CNN1DModule, unlabeled="ignore", random_state=seed
        )
        if args.epochs is not None:
            model.set_params(max_epochs=args.epochs)
        start = time.perf_counter()
        model.fit(X, y)
        runs.append(
            dict(
                seed=seed,
                accuracy=float(model.score(X_test, y_test)),
                seconds=time.perf_counter() - start,
            )
        )
        print(f"ceiling seed={seed} {runs[-1]['accuracy']:.3f}", flush=True)
    return dict(command=command_line(), n_train=len(X), runs=runs)


def _ceiling_lines(results):
    """Every row labeled, and the share of the gap to it each method closes."""
    ceiling = np.mean([r["accuracy"] for r in results["ceiling"]["runs"]])
    spread = np.std([r["accuracy"] for r in results["ceiling"]["runs"]])
    rows = []
    for per_class, row in results["mnist1d"]["summary"].items():
        cells = [per_class]
        for method, reference in (("dlp", "supervised"), ("cclp", "cclp_supervised")):
            gap = ceiling - row[reference][0]
            closed = (row[method][0] - row[reference][0]) / gap if gap > 0 else np.nan
            cells += [f"{100 * gap:.1f}", f"{100 * closed:.0f} %"]
        rows.append(cells)
    headers = [
        "labels/class",
        "ceiling − DLP's supervised (points)",
        "share DLP closes",
        "ceiling − CCLP's supervised",
        "share CCLP closes",
    ]
    return [
        "## MNIST-1D with every training row labeled "
        f"({results['ceiling']['n_train']:,} labels)",
        "",
        f"Command: `{results['ceiling']['command']}`. The DLP network "
        f"(`unlabeled='ignore'`, its defaults) trained on every training row with "
        f"its label: test accuracy {ceiling:.3f} ± {spread:.3f} over "
        f"{len(results['ceiling']['runs'])} seeds. It bounds what the unlabeled rows "
        "can add: the room a semi-supervised method has is the distance "
        "from its supervised network to this ceiling; the share of that room each "
        "method closes (from the means of the table above):",
        "",
        *markdown_table(rows, headers),
        "",
    ]


def _timing_lines(t):
    """The graph step's split against an epoch, and DLP trained with each search."""
    rows = [
        [
            name,
            " ".join(
                [s["backend"]]
                + [f"{k}={v}" for k, v in s.get("index_params", {}).items()]
            ),
            f"{s['descriptors_s']:.2f} s",
            f"{s['knn_s']:.2f} s",
            f"{s['cg_s']:.2f} s",
            f"{s['graph_s']:.2f} s",
            f"{100 * s['graph_share']:.0f} %",
            f"{s['edges_shared_with_exact']:.3f}",
        ]
        for name, s in t["split"].items()
    ]
    headers = ["kNN search", "backend, settings", "descriptors", "kNN graph"]
    headers += ["CG (20 it.)"]
    headers += ["graph step", "share of graph + epoch", "edges shared with exact"]
    lines = [
        f"## Graph step against an epoch, n = {t['n']:,} (MNIST-1D, CNN1DModule)",
        "",
        f"Command: `{t['command']}`.",
        "",
        f"One training epoch (one pass over the unlabeled rows): {t['epoch_s']:.2f} s.",
        "",
        *markdown_table(rows, headers),
        "",
        "The graph step is timed outside training on the network after two "
        "DLP epochs; the epoch time is skorch's `dur` (the graph step "
        "excluded). The exact kNN search costs O(n² d) while an epoch of this "
        "small CNN costs O(n), so on a CPU exact search dominates at this n. "
        "A network's embeddings cluster by class, so IVF finds their "
        "neighbours probing few lists: DLP's `backend='auto'` uses IVF from "
        "20,000 rows with about √n lists, 3 probed (the one-off graph default "
        "probes about 2,000 candidates).",
        "",
    ]
    fit_rows = [
        [
            name,
            f["used"],
            f"{f['accuracy']:.3f}",
            f"{f['seconds']:.0f} s",
            f"{f['graph_s']:.2f} s",
            f"{f['epoch_s']:.2f} s",
            f"{100 * f['graph_s'] / (f['graph_s'] + f['epoch_s']):.0f} %",
        ]
        for name, f in t["fits"].items()
    ]
    lines += [
        f"DLP at its defaults trained on the same {t['n']:,} rows (50 labels "
        "per class, seed 0), test accuracy on 2,000 held-out rows; graph step "
        "and epoch are means over the epochs with a propagation, as training "
        "logs them (`graph_dur`, `dur`):",
        "",
        *markdown_table(
            fit_rows,
            [
                "backend",
                "search used",
                "test accuracy",
                "fit",
                "graph step",
                "epoch",
                "share of graph + epoch",
            ],
        ),
        "",
    ]
    return lines


def _summary(runs):
    table = {}
    for per_class in sorted({r["per_class"] for r in runs}):
        sel = [r for r in runs if r["per_class"] == per_class]
        table[per_class] = {
            m: (
                float(np.mean([r["accuracy"][m] for r in sel])),
                float(np.std([r["accuracy"][m] for r in sel])),
            )
            for m in ALL_METHODS
            if all(m in r["accuracy"] for r in sel)
        }
        # (method, reference, summary key) of each paired gain.
        gains = [
            ("dlp", "supervised", "dlp_minus_supervised"),
            ("cclp", "cclp_supervised", "cclp_minus_supervised"),
            ("cclp_lr3e-3", "cclp_supervised_lr3e-3", "cclp_lr3e-3_minus_supervised"),
            ("cclp_lr3e-3", "cclp", "cclp_lr3e-3_minus_cclp"),
        ]
        for method, reference, key in gains:
            if method not in table[per_class] or reference not in table[per_class]:
                continue
            gain = [r["accuracy"][method] - r["accuracy"][reference] for r in sel]
            table[per_class][key] = (
                float(np.mean(gain)),
                float(np.std(gain)),
            )
        pl, net = _fig4(sel)
        table[per_class]["pseudo_vs_network"] = dict(
            mean_gap=float(np.mean(pl - net)),
            share_of_epochs_pseudo_ahead=float(np.mean(pl >= net)),
            first_propagation=(float(pl[0]), float(net[0])),
            last_propagation=(float(pl[-1]), float(net[-1])),
        )
    return table


def _fig4(runs):
    """Mean pseudo-label and network accuracy over seeds at propagation epochs."""
    pl = np.array([r["curves"]["pseudo_label_acc"] for r in runs], dtype=float)
    net = np.array([r["curves"]["network_acc"] for r in runs], dtype=float)
    keep = ~np.isnan(pl).any(axis=0)
    return pl[:, keep].mean(axis=0), net[:, keep].mean(axis=0)


def _accuracy_rows(summary):
    rows = []
    for per_class, row in summary.items():
        gains = [row[f"{m}_minus_supervised"] for m in ("dlp", "cclp")]
        rows.append(
            [per_class]
            + [f"{row[m][0]:.3f} ± {row[m][1]:.3f}" for m in METHODS if m in row]
            + [f"{100 * g[0]:+.1f} ± {100 * g[1]:.1f}" for g in gains]
        )
    return rows


def _fast_cclp_lines(summary):
    """CCLP at lr=3e-3 beside its default 1e-3, when the runs have it."""
    rows = []
    for per_class, row in summary.items():
        if "cclp_lr3e-3" not in row:
            return []
        shown = [m for m in ("cclp", *FAST_CCLP) if m in row]
        gains = [row["cclp_lr3e-3_minus_cclp"], row["cclp_lr3e-3_minus_supervised"]]
        rows.append(
            [per_class]
            + [f"{row[m][0]:.3f} ± {row[m][1]:.3f}" for m in shown]
            + [f"{100 * g[0]:+.1f} ± {100 * g[1]:.1f}" for g in gains]
        )
    headers = [
        "labels/class",
        "CCLP (default lr=1e-3)",
        *(LABELS[m] for m in shown[1:]),
        "lr=3e-3 − 1e-3 (points)",
        "CCLP lr=3e-3 − its supervised",
    ]
    return [
        "CCLP at the learning rate of the other semi-supervised estimators "
        "(`lr=3e-3`), and there with the paper's dot-product batch graph, on "
        "the same label draws and seeds:",
        "",
        *markdown_table(rows, headers),
        "",
    ]


def _fig4_rows(summary):
    rows = []
    for per_class, row in summary.items():
        f = row["pseudo_vs_network"]
        first, last = f["first_propagation"], f["last_propagation"]
        rows.append(
            [
                per_class,
                f"{first[0]:.3f} / {first[1]:.3f}",
                f"{last[0]:.3f} / {last[1]:.3f}",
                f"{100 * f['mean_gap']:+.2f} points",
                f"{100 * f['share_of_epochs_pseudo_ahead']:.0f} %",
            ]
        )
    return rows


def _markdown(results):
    cfg = results["config"]
    lines = [
        "# Deep label propagation benchmark",
        "",
        f"Machine: {results['machine']}. Command: "
        + ", then ".join(
            f"`{c}`" for c in [results["command"], *results.get("reruns", [])]
        )
        + ".",
        "",
        "Training: "
        + (
            f"{cfg['epochs']} epochs"
            if cfg.get("epochs")
            else "every estimator's default parameters apart from `module` (DLP "
            "30 epochs with 10 supervised warm-up epochs)"
        )
        + f", {cfg['seeds']} seed(s) (label draw and weights), mean ± std of the "
        "test accuracy. The default `augment='auto'` shifts MNIST-1D sequences "
        "(RandomShift) and leaves the digits rows as they are; each supervised "
        "column is the same estimator with `unlabeled='ignore'`.",
        "",
    ]
    for name, title in BLOCKS.items():
        if name not in results:
            continue
        block = results[name]
        headers = ["labels/class", *(LABELS[m] for m in METHODS)]
        headers += ["DLP − its supervised (points)", "CCLP − its supervised"]
        fig4_headers = [
            "labels/class",
            "first propagation (pseudo / network)",
            "last (pseudo / network)",
            "mean gap",
            "epochs with pseudo ≥ network",
        ]
        lines += [
            f"## {title} ({block['n_train']} train / {block['n_test']} test rows)",
            "",
            *markdown_table(_accuracy_rows(block["summary"]), headers),
            "",
            *_fast_cclp_lines(block["summary"]),
            "Pseudo-labels of DLP against the network's own predictions on the "
            "unlabeled rows (Fig. 4 of the paper; mean over seeds, at the epochs "
            "with a propagation):",
            "",
            *markdown_table(_fig4_rows(block["summary"]), fig4_headers),
            "",
        ]
    if "ceiling" in results and "mnist1d" in results:
        lines += _ceiling_lines(results)
    if "timing" in results:
        lines += _timing_lines(results["timing"])
    return "\n".join(lines)


def _plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    blocks = [b for b in BLOCKS if b in results]
    fig, axes = plt.subplots(
        2,
        len(blocks),
        figsize=(5.5 * len(blocks), 6.5),
        sharex="col",
        height_ratios=[2, 1],
        squeeze=False,
    )
    warmup = results["config"]["warmup"] or 10
    for col, name in enumerate(blocks):
        runs = results[name]["runs"]
        per_class = 50 if name == "mnist1d" else results["config"]["digits_labels"]
        sel = [r for r in runs if r["per_class"] == per_class] or runs
        per_class = sel[0]["per_class"]
        epochs = np.arange(1, len(sel[0]["curves"]["network_acc"]) + 1)
        curves = {
            key: np.array([r["curves"][key] for r in sel], dtype=float)
            for key in ("pseudo_label_acc", "network_acc", "test_acc")
        }
        # Warm-up epochs have no pseudo-labels: show them as gaps.
        has_pseudo = ~np.isnan(curves["pseudo_label_acc"]).all(axis=0)
        curves["pseudo_label_acc"][:, ~has_pseudo] = np.nan
        top, bottom = axes[0, col], axes[1, col]
        top.plot(epochs, curves["network_acc"].mean(0), label="network, unlabeled rows")
        pseudo = np.full(epochs.shape, np.nan)
        pseudo[has_pseudo] = np.nanmean(curves["pseudo_label_acc"][:, has_pseudo], 0)
        top.plot(epochs, pseudo, ls="--", label="pseudo-labels, unlabeled rows")
        top.plot(epochs, curves["test_acc"].mean(0), label="DLP, test rows")
        supervised = np.mean([r["accuracy"]["supervised"] for r in sel])
        top.axhline(supervised, color="grey", ls=":", label="labeled rows only, test")
        top.set_title(f"{name}, {per_class} labels/class, {len(sel)} seed(s)")
        top.set_ylabel("accuracy")
        top.set_ylim(max(0.0, supervised - 0.25), None)
        top.legend(loc="lower right", fontsize="small")
        gap = 100 * (curves["pseudo_label_acc"] - curves["network_acc"])[:, has_pseudo]
        mean = np.full(epochs.shape, np.nan)
        std = np.full(epochs.shape, np.nan)
        mean[has_pseudo], std[has_pseudo] = np.nanmean(gap, 0), np.nanstd(gap, 0)
        bottom.axhline(0, color="grey", lw=0.8)
        bottom.plot(epochs, mean, color="C1", marker=".")
        bottom.fill_between(epochs, mean - std, mean + std, color="C1", alpha=0.2)
        bottom.set_ylabel("gap, points")
        bottom.set_title("pseudo-labels minus network (mean ± std)", fontsize="small")
        bottom.set_xlabel("epoch (network scored at its start)")
        for ax in (top, bottom):
            ax.axvline(warmup + 0.5, color="grey", lw=0.8)
            ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write(results, out):
    """The markdown (with the total run time) and the plot beside ``out.json``."""
    markdown = _markdown(results)
    which = " of the first command" if results.get("reruns") else ""
    markdown += f"\nTotal run time{which}: {results['total_seconds'] / 60:.1f} min.\n"
    out.with_suffix(".md").write_text(markdown)
    _plot(results, out.parent / f"{out.name}_pseudo_label_accuracy.png")
    return markdown


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--epochs", type=int, default=None, help="max_epochs (default: each's own)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="DLP n_warmup_epochs (default: 10)"
    )
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--digits-labels", type=int, default=10)
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2_000)
    parser.add_argument("--n-timing", type=int, default=50_000)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (faiss keeps its own)"
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=list(BLOCKS))
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS / "deep",
        help="path stem of the json, markdown and plot (default results/deep; "
        "--quick appends _quick)",
    )
    parser.add_argument(
        "--timing",
        action="store_true",
        help="re-run only the n = 50,000 graph-step section into the json",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(ALL_METHODS),
        help="re-run only these columns into the json (the others keep theirs; "
        "columns the json lacks are added)",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="add the network trained on every MNIST-1D row labeled to the json",
    )
    parser.add_argument(
        "--report",
        "--report-only",
        action="store_true",
        help="rewrite the markdown and plot from the existing json",
    )
    args = parser.parse_args(argv)
    if args.report:
        results = read_json(args.out.with_suffix(".json"))
        if results is None:
            parser.error(f"no results at {args.out.with_suffix('.json')}")
        print(_write(results, args.out))
        return
    if args.quick:
        args.seeds, args.epochs, args.warmup = 1, 6, 2
        args.labels, args.n_train, args.n_test, args.n_timing = [50], 3000, 600, 5000
        args.out = args.out.with_name(args.out.name + "_quick")
    adding = args.ceiling or args.timing or args.methods
    if adding:
        results = read_json(args.out.with_suffix(".json"))
        if results is None:
            parser.error(
                f"--ceiling, --timing and --methods add to "
                f"{args.out.with_suffix('.json')}: run the benchmark first"
            )
        if args.methods:
            cfg = results["config"]
            differ = [
                k
                for k in (
                    "epochs",
                    "warmup",
                    "n_train",
                    "n_test",
                    "seeds",
                    "labels",
                    "digits_labels",
                )
                if cfg.get(k) != vars(args)[k]
            ]
            if differ:
                parser.error(
                    f"--methods re-runs columns of results made with other settings "
                    f"({', '.join(f'{k}={cfg.get(k)}' for k in differ)}); pass the same"
                )
    # Small networks on a shared machine: more threads mostly spin-wait, so
    # torch, faiss (OpenMP) and NumPy/SciPy (BLAS) all get ``--threads``.
    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        markdown = _add(results, args) if adding else _run(args)
    print(markdown)


def _add(results, args):
    """Re-run the ``--ceiling`` and ``--timing`` sections into ``results``."""
    if args.ceiling:
        results["ceiling"] = bench_ceiling(args)
    if args.timing:
        results["timing"] = bench_timing(args)
    if args.methods:
        for name in BLOCKS:
            if name in results and name not in args.skip:
                results[name] = bench_block(name, args, previous=results[name])
        results.setdefault("reruns", []).append(command_line())
    write_json(args.out.with_suffix(".json"), results)
    return _write(results, args.out)


def _run(args):
    started = time.perf_counter()
    results = dict(
        command=command_line(),
        machine=(
            f"{platform.machine()} {os.cpu_count()} CPU cores shared with other "
            f"jobs, torch {torch.__version__}, faiss {faiss.__version__}, "
            f"scikit-learn {sklearn.__version__}, skorch {skorch.__version__}; "
            f"{args.threads} thread(s) for torch, faiss and BLAS"
        ),
        config={k: v for k, v in vars(args).items() if k not in ("out", "report")},
    )
    for name in BLOCKS:
        if name not in args.skip:
            results[name] = bench_block(name, args)
    results["timing"] = bench_timing(args)
    results["total_seconds"] = time.perf_counter() - started
    write_json(args.out.with_suffix(".json"), results)
    return _write(results, args.out)


if __name__ == "__main__":
    main()
