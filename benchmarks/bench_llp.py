"""Local label propagation: accuracy, density weighting, ablations and scale.

Four sections:

``--compare`` (default)
    MNIST-1D (10,000 training / 2,000 test rows, ``module=CNN1DModule``, the
    default ``augment='auto'``), 10 / 50 / 100 labels per class, 5 seeds
    (label draw and weights), every estimator at its defaults:

    - ``supervised``: ``LocalLabelPropagationClassifier(unlabeled="ignore")``,
      the same network, batches and steps on the labeled rows only;
    - ``llp``: ``LocalLabelPropagationClassifier()``;
    - ``dlp``: ``DeepLabelPropagationClassifier()``;
    - ``mean_teacher``: ``MeanTeacherClassifier()``.

``--density``
    A class-imbalanced labeled set (labels per class from 5 to 100,
    geometrically spaced), LLP with and without density weighting: per
    epoch the Pearson correlation between each class's mean labeled density
    and its number of pseudo-labels (Zhuang et al., Fig. 3d) and the
    pseudo-label accuracy; the final pseudo-label counts and test accuracy.
    Draws ``<out>_density.png``.

``--ablation``
    50 labels per class, seeds 0-2 (``--ablation-seeds``): the paper's
    Table 6 on MNIST-1D, i.e. no confidence weighting (NoC), no density
    weighting (NoDW) and ``n_voters`` = 5 / 20 / 50 beside the defaults (10),
    each against the defaults on the same seed.

``--scale``
    One propagation on N = 10^4, 10^5, 10^6 synthetic 128-d unit vectors
    (10 noisy directions): ``local_label_propagation`` with 1 % of the rows
    labeled and with a fixed 1,000 (its cost is O(N M d): quadratic in N at a
    fixed share, linear at a fixed M), against one DLP graph step,
    ``KNNGraph(10, metric="cosine", kernel="power")`` plus 20
    conjugate-gradient iterations of the diffusion (what
    ``DeepLabelPropagationClassifier`` runs per propagation; the graph's
    ``backend="auto"`` is exact below 10^5 rows, IVF from there). Each (N,
    method, M) runs in a fresh interpreter (``_common.run_worker``): the
    memory is its peak RSS during the step minus the RSS with the data
    loaded (the kernel's peak counter restarts once the data is made). Draws
    ``<out>_scale.png`` (log-log).

Runs are merged into ``results/llp.json`` by (section, labels, seed, method,
setting), so a section or a label count can be run on its own. Writes
``results/llp.md``.

Examples
--------
    python benchmarks/bench_llp.py                       # --compare
    python benchmarks/bench_llp.py --labels 50 --seeds 2
    python benchmarks/bench_llp.py --density --ablation --scale
    python benchmarks/bench_llp.py --quick --out /tmp/llpq/llp   # ~1.5 min
    python benchmarks/bench_llp.py --report
"""

from __future__ import annotations

import argparse
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import torch
from _common import (
    RESULTS,
    command_line,
    emit,
    int_list,
    load_average,
    machine_info,
    markdown_table,
    mean_fit_times,
    mean_std,
    paired_accuracies,
    paired_gain,
    peak_rss_mib,
    read_json,
    run_worker,
    write_json,
)

from skssl import (
    DeepLabelPropagationClassifier,
    LocalLabelPropagationClassifier,
    MeanTeacherClassifier,
)
from skssl.datasets import load_mnist1d, mask_labels
from skssl.deep import CNN1DModule, PseudoLabelAccuracy

METHODS = ("supervised", "llp", "dlp", "mean_teacher")
LABELS = {
    "supervised": "same network, labeled rows only",
    "llp": "LLP",
    "dlp": "DLP",
    "mean_teacher": "Mean Teacher",
}
ESTIMATORS = {
    "supervised": LocalLabelPropagationClassifier,
    "llp": LocalLabelPropagationClassifier,
    "dlp": DeepLabelPropagationClassifier,
    "mean_teacher": MeanTeacherClassifier,
}
ABLATION = {
    "defaults": {},
    "NoC": dict(confidence_weighting=False),
    "NoDW": dict(density_weighting=False),
    "K=5": dict(n_voters=5),
    "K=20": dict(n_voters=20),
    "K=50": dict(n_voters=50),
}
DENSITY_SETTINGS = {
    "LLP": dict(density_weighting=True),
    "NoDW": dict(density_weighting=False),
}
# (method, labeled rows): None is 1 % of N, a number a fixed count. LLP's
# step costs O(N M d), so it grows as N^2 at 1 % and as N at a fixed M; a DLP
# graph step does not depend on M.
SCALE_RUNS = (("llp", None), ("llp", 1000), ("dlp_graph", None))
SCALE_DIM = 128
SCALE_CLASSES = 10


# --------------------------------------------------------------------------- #
# Fits on MNIST-1D
# --------------------------------------------------------------------------- #


def make(method, seed, **params):
    """The estimator of one method at its defaults, apart from ``params``.

    Parameters an estimator does not have (``n_warmup_epochs`` for the Mean
    Teacher, ``n_voters`` for DLP) are left out for it.
    """
    clf = ESTIMATORS[method](module=CNN1DModule, random_state=seed)
    if method == "supervised":
        clf.set_params(unlabeled="ignore")
    own = clf.get_params()
    return clf.set_params(
        **{k: v for k, v in params.items() if k in own or k.startswith("module__")}
    )


def fit_one(method, X, y, X_test, y_test, seed, y_true=None, **params):
    """Test accuracy, seconds and the propagation statistics of one fit."""
    clf = make(method, seed, **params)
    if y_true is not None and method in ("llp", "dlp"):
        clf.set_params(callbacks=[("acc", PseudoLabelAccuracy(y_true, network=False))])
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf.fit(X, y)
    seconds = time.perf_counter() - start
    history = clf.history
    labeled_counts = np.bincount(y[y >= 0], minlength=len(clf.classes_))
    last_counts = history[-1].get("pseudo_label_counts")
    return dict(
        accuracy=float(clf.score(X_test, y_test)),
        seconds=seconds,
        pseudo_label_acc=[row.get("pseudo_label_acc") for row in history],
        density_count_corr=[row.get("density_count_corr") for row in history],
        pseudo_counts=(
            (np.asarray(last_counts) - labeled_counts).tolist()
            if last_counts is not None
            else None
        ),
        labeled_counts=labeled_counts.tolist(),
    )


def split(args):
    data = load_mnist1d(args.n_train + args.n_test, random_state=0, test_size=0.0)
    n = args.n_train
    return data.X[:n], data.y[:n], data.X[n:], data.y[n:]


def imbalanced_labels(y, counts, seed):
    """Keep ``counts[c]`` labels of class ``c``, -1 elsewhere."""
    rng = np.random.default_rng(seed)
    out = np.full_like(y, -1)
    for c, k in enumerate(counts):
        rows = np.flatnonzero(y == c)
        out[rng.choice(rows, min(k, rows.size), replace=False)] = c
    return out


def merge(results, run):
    """Replace the run with the same key, or add it."""
    key = ("section", "per_class", "seed", "method", "setting")
    runs = [r for r in results["runs"] if any(r.get(k) != run.get(k) for k in key)]
    results["runs"] = [*runs, run]


def save(path, results):
    """Write ``results``, keeping the runs another process wrote meanwhile.

    Sections may run in parallel processes; each re-reads the file before it
    writes, so no section's runs overwrite another's.
    """
    on_disk = read_json(path) or dict(runs=[])
    key = ("section", "per_class", "seed", "method", "setting", "n")
    mine = {tuple(r.get(k) for k in key) for r in results["runs"]}
    others = [r for r in on_disk["runs"] if tuple(r.get(k) for k in key) not in mine]
    results["runs"] = [*others, *results["runs"]]
    write_json(path, results)


def compare(args, results):
    X, y_true, X_test, y_test = split(args)
    for per_class in args.labels:
        for seed in range(args.seeds):
            y = mask_labels(y_true, per_class=per_class, random_state=seed)
            for method in METHODS:
                run = fit_one(method, X, y, X_test, y_test, seed, y_true, **args.extra)
                run.update(section="compare", per_class=per_class, seed=seed)
                run.update(method=method, setting="defaults")
                merge(results, run)
                print(
                    f"{per_class}/class seed {seed} {method}: "
                    f"{run['accuracy']:.3f} ({run['seconds']:.0f} s)",
                    flush=True,
                )
            save(args.out.with_suffix(".json"), results)


def _fit_settings(args, results, section, settings, data, y, seed, per_class):
    """Fit LLP once per setting on one label draw; merge and yield each run."""
    X, y_true, X_test, y_test = data
    for setting, params in settings.items():
        run = fit_one("llp", X, y, X_test, y_test, seed, y_true, **params, **args.extra)
        run.update(section=section, per_class=per_class, seed=seed)
        run.update(method="llp", setting=setting)
        merge(results, run)
        yield setting, run
        save(args.out.with_suffix(".json"), results)


def density(args, results):
    data = split(args)
    counts = np.geomspace(*args.imbalance, SCALE_CLASSES).round().astype(int)
    for seed in range(args.seeds):
        y = imbalanced_labels(data[1], counts, seed)
        runs = _fit_settings(
            args, results, "density", DENSITY_SETTINGS, data, y, seed, None
        )
        for setting, run in runs:
            corr = [c for c in run["density_count_corr"] if c is not None]
            print(
                f"density seed {seed} {setting}: {run['accuracy']:.3f}, final "
                f"corr {corr[-1] if corr else float('nan'):+.2f}",
                flush=True,
            )


def ablation(args, results):
    data = split(args)
    per_class = args.ablation_labels
    for seed in range(args.ablation_seeds):
        y = mask_labels(data[1], per_class=per_class, random_state=seed)
        runs = _fit_settings(
            args, results, "ablation", ABLATION, data, y, seed, per_class
        )
        for setting, run in runs:
            print(f"ablation seed {seed} {setting}: {run['accuracy']:.3f}", flush=True)


# --------------------------------------------------------------------------- #
# Scale: one propagation per fresh interpreter
# --------------------------------------------------------------------------- #


def synthetic_embeddings(n, seed, n_labeled=None):
    """``n`` unit vectors around 10 random directions in 128-d.

    ``n_labeled`` rows are labeled (1 % of ``n`` when None, at least one
    per class on average).
    """
    directions = np.random.default_rng(12345).standard_normal(
        (SCALE_CLASSES, SCALE_DIM), dtype=np.float32
    )
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    y_true = rng.integers(SCALE_CLASSES, size=n)
    V = rng.standard_normal((n, SCALE_DIM), dtype=np.float32)
    V *= np.float32(2.0 / np.sqrt(SCALE_DIM))
    V += directions[y_true]
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    y = np.full(n, -1)
    n_labeled = n // 100 if n_labeled is None else min(n_labeled, n)
    labeled = rng.choice(n, max(n_labeled, SCALE_CLASSES), replace=False)
    y[labeled] = y_true[labeled]
    return V, y, y_true


def _status_mib(field):
    """``VmRSS`` or ``VmHWM`` (peak) of this process from /proc, in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in /proc/self/status")


def _reset_peak_rss():
    """Restart the kernel's peak-RSS counter at the current RSS (Linux >= 4.0).

    Generating the data has transient copies larger than what a small
    propagation adds, so a peak taken since the start would hide the step.
    """
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def worker(method, n, seed, threads, n_labeled=None):
    """Time one propagation and print its record."""
    # Imported before the data, so the data RSS holds the libraries too.
    import faiss
    from threadpoolctl import threadpool_limits

    from skssl.diffusion import diffuse, label_matrix
    from skssl.graph import KNNGraph
    from skssl.local_propagation import local_label_propagation

    faiss.omp_set_num_threads(threads)
    rec = {"n": n, "method": method, "threads": threads, "load_before": load_average()}
    V, y, y_true = synthetic_embeddings(n, seed, n_labeled)
    rec["n_labeled"] = int((y >= 0).sum())
    try:
        _reset_peak_rss()
        rec["rss_data_mib"] = _status_mib("VmRSS")
        peak = partial(_status_mib, "VmHWM")
    except OSError:  # no /proc: the peak since the start, data included
        rec["rss_data_mib"] = peak_rss_mib()
        peak = peak_rss_mib
    with threadpool_limits(threads):
        start = time.perf_counter()
        if method == "llp":
            P, _ = local_label_propagation(V, y)
        else:
            graph = KNNGraph(10, metric="cosine", kernel="power", gamma=3.0).fit(V)
            rec["time_graph"] = time.perf_counter() - start
            rec["backend"] = graph.backend_
            result = diffuse(
                graph.affinity_,
                label_matrix(y, SCALE_CLASSES),
                alpha=0.9,
                max_iter=20,
                warn=False,
            )
            P = result.solution
        rec["seconds"] = time.perf_counter() - start
    rec["rss_peak_mib"] = peak()
    rec["rss_step_mib"] = rec["rss_peak_mib"] - rec["rss_data_mib"]
    unlabeled = y < 0
    rec["accuracy"] = float(np.mean(P[unlabeled].argmax(1) == y_true[unlabeled]))
    rec["load_after"] = load_average()
    emit(rec)


def _labeled_name(n_labeled):
    return "1 %" if n_labeled is None else f"M = {n_labeled:,}"


def scale(args, results):
    for n in args.sizes:
        for method, n_labeled in SCALE_RUNS:
            worker_args = [method, "--n", str(n), "--threads", str(args.threads)]
            if n_labeled is not None:
                worker_args += ["--n-labeled", str(n_labeled)]
            rec = run_worker(__file__, worker_args, args.timeout)
            run = {"n": n, **rec, "method": method, "labeled": n_labeled}
            setting = f"N={n}, {_labeled_name(n_labeled)}"
            run.update(section="scale", per_class=None, seed=0, setting=setting)
            merge(results, run)
            name = f"scale N={n:,} {method} {_labeled_name(n_labeled)}"
            if rec["status"] == "ok":
                print(
                    f"{name}: {rec['seconds']:.2f} s, +{rec['rss_step_mib']:.0f} MiB",
                    flush=True,
                )
            else:
                print(f"{name}: {rec['status']}", flush=True)
            save(args.out.with_suffix(".json"), results)


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def _section(results, name):
    return [r for r in results["runs"] if r["section"] == name]


def _compare_lines(runs):
    lines = [
        "MNIST-1D, 10,000 training / 2,000 test rows, `module=CNN1DModule`, every "
        "estimator at its defaults (`augment='auto'`). Test accuracy, mean ± std "
        "over the seeds; the supervised column is "
        "`LocalLabelPropagationClassifier(unlabeled='ignore')`.",
        "",
    ]
    rows, gains = [], []
    for per_class in sorted({r["per_class"] for r in runs}):
        acc, n_seeds = paired_accuracies(runs, per_class, METHODS)
        if n_seeds == 0:
            continue
        rows.append([per_class, n_seeds, *(mean_std(acc[m]) for m in METHODS)])
        helps = (acc["llp"] > acc["supervised"]).sum()
        gains.append(
            [
                per_class,
                paired_gain(acc["llp"], acc["supervised"]),
                paired_gain(acc["llp"], acc["dlp"]),
                f"{helps} of {n_seeds}",
            ]
        )
    lines += markdown_table(
        rows, ["labels/class", "seeds", *(LABELS[m] for m in METHODS)]
    )
    lines += ["", "Gains in accuracy points, per seed:", ""]
    lines += markdown_table(
        gains, ["labels/class", "LLP − supervised", "LLP − DLP", "seeds LLP helps"]
    )
    lines += ["", mean_fit_times(runs, METHODS, LABELS), ""]
    return lines


def _last(values):
    kept = [v for v in values if v is not None]
    return kept[-1] if kept else float("nan")


def _density_lines(runs):
    lines = [
        "## Density weighting on an imbalanced labeled set",
        "",
        "Labels per class "
        f"{runs[0]['labeled_counts']} (class 0 to 9); LLP with and without density "
        "weighting (NoDW). corr: Pearson correlation between each class's mean "
        "labeled density and its number of pseudo-labeled rows, at the last "
        "propagation (Zhuang et al., Fig. 3). Pseudo-labels: accuracy on the "
        "unlabeled training rows; spread: largest over smallest pseudo-label count.",
        "",
    ]
    rows = []
    for setting in DENSITY_SETTINGS:
        sel = [r for r in runs if r["setting"] == setting]
        if not sel:
            continue
        corr = [_last(r["density_count_corr"]) for r in sel]
        pl = [_last(r["pseudo_label_acc"]) for r in sel]
        spread = [
            max(r["pseudo_counts"]) / max(min(r["pseudo_counts"]), 1) for r in sel
        ]
        rows.append(
            [
                setting,
                len(sel),
                mean_std([r["accuracy"] for r in sel]),
                mean_std(pl),
                f"{np.mean(corr):+.2f} ± {np.std(corr):.2f}",
                f"{np.mean(spread):.1f}",
            ]
        )
    lines += markdown_table(
        rows,
        ["setting", "seeds", "test accuracy", "pseudo-labels", "corr", "spread"],
    )
    return [*lines, ""]


def _ablation_lines(runs):
    seeds = sorted({r["seed"] for r in runs})
    lines = [
        f"## Ablations ({runs[0]['per_class']} labels per class, {len(seeds)} seed(s))",
        "",
        "The paper's Table 6: NoC gives every pseudo-labeled row weight 1, NoDW "
        "drops the density weighting, K is `n_voters` (default 10). Change: the "
        "setting's test accuracy minus the defaults' on the same seed (label "
        "draw and weights), in points; pseudo-labels and corr as in the density "
        "section, at the last propagation.",
        "",
    ]
    defaults = {r["seed"]: r["accuracy"] for r in runs if r["setting"] == "defaults"}
    rows = []
    for setting in ABLATION:
        sel = [r for r in runs if r["setting"] == setting]
        if not sel:
            continue
        change = [
            100 * (r["accuracy"] - defaults[r["seed"]])
            for r in sel
            if r["seed"] in defaults
        ]
        corr = [_last(r["density_count_corr"]) for r in sel]
        rows.append(
            [
                setting,
                len(sel),
                mean_std([r["accuracy"] for r in sel]),
                f"{np.mean(change):+.1f} ± {np.std(change):.1f}"
                if setting != "defaults" and change
                else "",
                mean_std([_last(r["pseudo_label_acc"]) for r in sel]),
                f"{np.mean(corr):+.2f}",
            ]
        )
    lines += markdown_table(
        rows,
        [
            "setting",
            "seeds",
            "test accuracy",
            "change, points",
            "pseudo-labels",
            "density-count corr",
        ],
    )
    return [*lines, ""]


def _growth(sel):
    """``log(t2 / t1) / log(N2 / N1)`` to each run from the previous N."""
    out, previous = [], None
    for r in sel:
        ok = r.get("status") == "ok"
        if ok and previous is not None:
            ratio = r["seconds"] / previous["seconds"]
            out.append(f"{np.log(ratio) / np.log(r['n'] / previous['n']):.2f}")
        else:
            out.append("")
        previous = r if ok else None
    return out


def _scale_groups(runs):
    """``(method, labeled, runs by N)`` in :data:`SCALE_RUNS` order."""
    for method, n_labeled in SCALE_RUNS:
        sel = [
            r for r in runs if r["method"] == method and r.get("labeled") == n_labeled
        ]
        if sel:
            yield method, n_labeled, sorted(sel, key=lambda r: r["n"])


def _scale_lines(runs):
    lines = [
        "## One propagation against one DLP graph step",
        "",
        f"Synthetic {SCALE_DIM}-d unit vectors (10 noisy directions), M labeled "
        "rows (1 % of N, or a fixed 1,000); one fresh interpreter per (N, "
        f"method), {runs[0].get('threads', 1)} thread(s). LLP: "
        "`local_label_propagation(V, y)`, O(N M d); DLP: `KNNGraph(10, "
        "metric='cosine', kernel='power').fit(V)` (its `backend='auto'`) and 20 "
        "CG iterations, which do not depend on M. Growth: the exponent of N "
        "from the previous size (1 linear, 2 quadratic). Memory: peak RSS "
        "minus the RSS with the data loaded (the kernel's peak counter "
        "restarted after the data was made).",
        "",
    ]
    rows = []
    for method, n_labeled, sel in _scale_groups(runs):
        for r, growth in zip(sel, _growth(sel), strict=True):
            name = method + (f" ({r['backend']})" if r.get("backend") else "")
            labeled = _labeled_name(n_labeled)
            if r.get("status") != "ok":
                rows.append([f"{r['n']:,}", name, labeled, r.get("status")])
                rows[-1] += [""] * 5
                continue
            rows.append(
                [
                    f"{r['n']:,}",
                    name,
                    labeled,
                    f"{r['seconds']:.2f}",
                    growth,
                    f"{r['rss_step_mib']:.0f}",
                    f"{r['accuracy']:.3f}",
                    r.get("others_cores", ""),
                ]
            )
    lines += markdown_table(
        rows,
        [
            "N",
            "method",
            "labeled",
            "seconds",
            "growth",
            "memory, MiB",
            "accuracy",
            "other jobs, cores",
        ],
    )
    return [*lines, ""]


def _markdown(results):
    lines = [
        "# Local label propagation",
        "",
        f"Machine: {results['machine']['platform']}, "
        f"{results['machine']['cpu_count']} CPUs, torch {torch.__version__}; one "
        "torch thread, shared with other jobs: compare times within a table. "
        "Commands: "
        + ", ".join(f"`{c}`" for c in results.get("commands", [results.get("command")]))
        + ".",
        "",
    ]
    sections = (
        ("compare", _compare_lines),
        ("density", _density_lines),
        ("ablation", _ablation_lines),
        ("scale", _scale_lines),
    )
    for name, render in sections:
        runs = _section(results, name)
        if runs:
            lines += render(runs)
    return "\n".join(lines)


def _plot_density(results, path):
    runs = _section(results, "density")
    if not runs:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, setting in enumerate(DENSITY_SETTINGS):
        curves = np.array(
            [
                [np.nan if c is None else c for c in r["density_count_corr"]]
                for r in runs
                if r["setting"] == setting
            ],
            dtype=float,
        )
        if curves.size == 0:
            continue
        epochs = np.arange(1, curves.shape[1] + 1)
        for curve in curves:
            ax.plot(epochs, curve, color=f"C{i}", alpha=0.3, lw=0.8)
        with warnings.catch_warnings():  # warm-up epochs have no correlation
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(curves, 0)
        ax.plot(epochs, mean, color=f"C{i}", lw=2, label=setting)
    ax.axhline(0, color="grey", lw=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("corr(class density, pseudo-label count)")
    ax.set_title("Density weighting on an imbalanced labeled set")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_scale(results, path):
    runs = [r for r in _section(results, "scale") if r.get("status") == "ok"]
    if not runs:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (t_ax, m_ax) = plt.subplots(1, 2, figsize=(10, 4))
    names = {"llp": "LLP propagation", "dlp_graph": "DLP graph + diffusion"}
    for i, (method, n_labeled, sel) in enumerate(_scale_groups(runs)):
        n = [r["n"] for r in sel]
        label = f"{names[method]}, {_labeled_name(n_labeled)} labeled"
        kw = dict(color=f"C{i}", marker="o", label=label)
        t_ax.loglog(n, [r["seconds"] for r in sel], **kw)
        m_ax.loglog(n, [max(r["rss_step_mib"], 1) for r in sel], **kw)
    t_ax.set(xlabel="rows N", ylabel="seconds", title="one step")
    m_ax.set(xlabel="rows N", ylabel="MiB", title="memory added")
    t_ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--density", action="store_true")
    parser.add_argument("--ablation", action="store_true")
    parser.add_argument("--scale", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--ablation-labels", type=int, default=50)
    parser.add_argument(
        "--ablation-seeds", type=int, default=3, help="label draws in --ablation"
    )
    parser.add_argument(
        "--imbalance",
        type=int,
        nargs=2,
        default=[5, 100],
        help="fewest and most labels per class in --density",
    )
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=2_000)
    parser.add_argument("--sizes", type=int_list, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--threads", type=int, default=1, help="for --scale")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "llp")
    parser.add_argument("--report", action="store_true", help="markdown from json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n-labeled", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(
            args.worker, args.n, seed=0, threads=args.threads, n_labeled=args.n_labeled
        )
        return
    args.extra = {}
    if args.quick:
        args.seeds, args.labels, args.n_train, args.n_test = 1, [10], 600, 200
        args.ablation_labels, args.imbalance = 10, [2, 20]
        args.ablation_seeds = 1
        args.extra = dict(max_epochs=3, n_warmup_epochs=1)
        args.sizes, args.timeout = [2_000, 20_000], 120.0
    torch.set_num_threads(1)
    path = args.out.with_suffix(".json")
    results = read_json(path) or dict(runs=[])
    if not args.report:
        results.update(machine=machine_info(), command=command_line())
        # Sections run by separate commands: the report names each of them.
        commands = results.setdefault("commands", [])
        if command_line() not in commands:
            commands.append(command_line())
        chosen = args.compare or args.density or args.ablation or args.scale
        if args.compare or not chosen:
            compare(args, results)
        if args.density:
            density(args, results)
        if args.ablation:
            ablation(args, results)
        if args.scale:
            scale(args, results)
        save(path, results)
    markdown = _markdown(results)
    args.out.with_suffix(".md").write_text(markdown)
    _plot_density(results, args.out.with_name(args.out.name + "_density.png"))
    _plot_scale(results, args.out.with_name(args.out.name + "_scale.png"))
    print(markdown)


if __name__ == "__main__":
    main()
