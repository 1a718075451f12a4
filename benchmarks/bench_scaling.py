"""Scaling of LabelSpreadingCG to a million rows, against scikit-learn.

Synthetic d = 64 data (:func:`_common.make_manifold_mixture`, 10 labels per
class), n = 1e4 ... 1e6. For every (n, method) a fresh interpreter fits once
and reports the ``fit`` wall time, its split into index build, kNN search,
affinity and diffusion solve (``LabelSpreadingCG.timings_``), conjugate-gradient
iterations, peak RSS, accuracy (mean over label draws on the same graph) and
recall@7 of the approximate backends. Methods: LabelSpreadingCG with the
``exact``, ``hnsw`` and ``ivf`` backends and scikit-learn
``LabelSpreading(kernel="knn")`` as shipped and with ``alpha=0.99,
max_iter=1000``. n <= 1e5 is repeated (interleaved) and the median reported.

Results go to ``results/propagation_scaling.json``, the tables to
``results/propagation.md`` and the log-log plot to
``results/propagation_scaling.png``.

Examples
--------
    python benchmarks/bench_scaling.py                       # n = 1e4 ... 1e6
    python benchmarks/bench_scaling.py --max-n 1e5
    python benchmarks/bench_scaling.py --sizes 1e6 --backends hnsw,ivf \\
        --sklearn-max-n 0 --sklearn-a99-max-n 0 --merge      # one more repeat
    python benchmarks/bench_scaling.py --quick --out /tmp/scaling   # ~2 min
    python benchmarks/bench_scaling.py --report              # tables from json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import (
    MANIFOLD_DATA,
    RESULTS,
    command_line,
    emit,
    exact_neighbours,
    int_float,
    int_list,
    knn_recall,
    load_average,
    machine_info,
    make_manifold_mixture,
    markdown_table,
    peak_rss_mib,
    precomputed_accuracy,
    quiet,
    read_json,
    run_worker,
    sample_rows,
    write_json,
)
from tqdm.auto import tqdm

SCALING_JSON = "propagation_scaling.json"
SCALING_PNG = "propagation_scaling.png"
SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)
SKSSL_BACKENDS = ("exact", "hnsw", "ivf")
# scikit-learn LabelSpreading(kernel="knn") as shipped, and with the diffusion
# strength and iteration budget of LabelSpreadingCG (alpha=0.99): its default
# alpha=0.2 and tol=1e-3 stop after a few hops, which starves most rows of
# label mass when labels are few and n is large.
SKLEARN_VARIANTS = {
    "sklearn": {},
    "sklearn-a99": {"alpha": 0.99, "max_iter": 1000},
}
METHOD_LABELS = {
    "skssl-exact": "LabelSpreadingCG exact",
    "skssl-hnsw": "LabelSpreadingCG hnsw",
    "skssl-ivf": "LabelSpreadingCG ivf",
    "sklearn": "sklearn LabelSpreading(knn)",
    "sklearn-a99": "sklearn LabelSpreading(knn, alpha=0.99, max_iter=1000)",
}


# --------------------------------------------------------------------------- #
# One configuration (runs in its own process)
# --------------------------------------------------------------------------- #


def fit_sklearn(X, y, method, label_seeds, rec):
    """Refit per label draw (the graph is part of its fit); time the first."""
    from sklearn.semi_supervised import LabelSpreading

    from skssl.datasets import mask_labels

    accs = []
    for i, s in enumerate(label_seeds):
        ym = mask_labels(y, per_class=10, random_state=s)
        model = LabelSpreading(kernel="knn", **SKLEARN_VARIANTS[method])
        start = time.perf_counter()
        quiet(model.fit, X, ym)
        if i == 0:
            rec["time_total"] = time.perf_counter() - start
            rec["n_iter"] = int(model.n_iter_)
            rec["rss_peak_mib"] = peak_rss_mib()
        unlabeled = ym == -1
        accs.append(float(np.mean(model.transduction_[unlabeled] == y[unlabeled])))
    return accs


def fit_skssl(X, y, backend, label_seeds, rec):
    """Time one fit, phases from ``timings_``; other draws reuse its graph."""
    from skssl import LabelSpreadingCG
    from skssl.datasets import mask_labels

    seed = label_seeds[0]
    ym = mask_labels(y, per_class=10, random_state=seed)
    model = LabelSpreadingCG(backend=backend, random_state=seed)
    start = time.perf_counter()
    model.fit(X, ym)
    rec["time_total"] = time.perf_counter() - start
    rec["rss_peak_mib"] = peak_rss_mib()
    t = model.timings_
    rec["time_index"] = t["index"]
    rec["time_search"] = t["search"]
    rec["time_affinity"] = t["affinity"]
    rec["time_graph"] = t["index"] + t["search"] + t["affinity"]
    rec["time_solve"] = t["solve"]
    rec["time_other"] = rec["time_total"] - sum(t.values())
    rec["n_iter"] = int(model.n_iter_)
    rec["residual"] = float(model.residuals_[-1])
    rec["backend"] = model.backend_
    rec["edges"] = int(model.graph_.affinity_.nnz)
    unlabeled = ym == -1
    accs = [float(np.mean(model.transduction_[unlabeled] == y[unlabeled]))]
    if backend != "exact":
        rows = sample_rows(X.shape[0], seed=seed)
        truth = exact_neighbours(X, rows, model.graph_.n_neighbors)
        rec["recall_at_7"] = knn_recall(model.graph_, X, rows, truth)
    W = model.graph_.affinity_
    del model
    return accs + precomputed_accuracy(W, y, label_seeds[1:])


def worker(n, method, seed, n_label_seeds):
    """Fit one (n, method) and print its record (label seed ``seed`` is timed)."""
    # Import what the method's fit uses first (faiss, and torch for the float32
    # solve from 20,000 rows, are otherwise imported during the fit: torch
    # alone takes 1 to 2 s), so that the times are the fit's work, "data" holds
    # the data and the libraries, and peak - data is the memory the fit itself
    # adds. Each method imports only its own: with faiss and torch loaded,
    # scikit-learn's fit at 10^5 rows took 65 to 72 s instead of 44 to 47 s.
    if method.startswith("sklearn"):
        import sklearn.semi_supervised  # noqa: F401
    else:
        import faiss  # noqa: F401
        import torch  # noqa: F401

        import skssl.propagation  # noqa: F401

    rec = {"n": n, "method": method, "seed": seed, "load_before": load_average()}
    X, y = make_manifold_mixture(n, random_state=seed)
    rec["rss_data_mib"] = peak_rss_mib()
    label_seeds = [seed + i for i in range(n_label_seeds)]
    if method.startswith("sklearn"):
        accs = fit_sklearn(X, y, method, label_seeds, rec)
    else:
        accs = fit_skssl(X, y, method.split("-", 1)[1], label_seeds, rec)
    rec["accuracy"] = accs[0]
    rec["accuracy_seeds"] = accs
    rec["accuracy_mean"] = float(np.mean(accs))
    rec["load_after"] = load_average()
    emit(rec)


# --------------------------------------------------------------------------- #
# Driver
# --------------------------------------------------------------------------- #


def summarize(runs):
    """Median over repeats of each (n, method); keeps every repeat's time."""
    groups = {}
    for r in runs:
        groups.setdefault((r["n"], r["method"]), []).append(r)
    out = []
    for _key, rs in sorted(groups.items()):
        ok = [r for r in rs if r.get("status") == "ok"]
        if not ok:
            out.append(rs[-1])
            continue
        times = [r["time_total"] for r in ok]
        # median run (the lower middle one for an even count)
        rep = dict(sorted(ok, key=lambda r: r["time_total"])[(len(ok) - 1) // 2])
        rep["repeats"] = len(ok)
        rep["time_total_all"] = times
        rep["time_total_min"] = min(times)
        out.append(rep)
    return out


def plan(args):
    """(n, repeat, method, label draws) in run order: peers back to back."""
    methods = [f"skssl-{b}" for b in args.backends]
    methods += [m for m in SKLEARN_VARIANTS if args.max_n_of[m] > 0]
    todo = []
    for n in (n for n in args.sizes if n <= args.max_n):
        repeats = args.repeats if n <= args.repeat_max_n else 1
        for rep in range(repeats):
            for m in methods:
                if n > args.max_n_of.get(m, np.inf):
                    continue
                # scikit-learn refits (graph included) for every label draw:
                # one draw above --repeat-max-n bounds its time.
                big_sklearn = m.startswith("sklearn") and n > args.repeat_max_n
                todo.append((n, rep, m, 1 if big_sklearn else args.label_seeds))
    return todo


def run(args):
    previous = read_json(args.out / SCALING_JSON) if args.merge else None
    runs = list(previous["runs"]) if previous else []
    # --merge appends: new runs count as further repeats of the earlier ones.
    base = {}
    for r in runs:
        base[r["n"]] = max(base.get(r["n"], -1), r.get("repeat", 0))
    given_up = set()
    bar = tqdm(plan(args), desc="scaling", unit="run")
    for n, rep, method, draws in bar:
        if method in given_up:
            continue
        bar.set_postfix_str(f"n={n:,} {method} repeat {rep + 1}")
        worker_args = [method, "--n", str(n), "--seed", str(args.seed)]
        worker_args += ["--label-seeds", str(draws)]
        rec = run_worker(__file__, worker_args, args.timeout)
        rec = {"n": n, "method": method, **rec}
        rec["repeat"] = base.get(n, -1) + 1 + rep
        rec["command"] = command_line()
        runs.append(rec)
        if rec["status"] == "ok":
            bar.write(
                f"n={n:>9,} {method:<12} total {rec['time_total']:8.2f}s  "
                f"acc {rec['accuracy_mean']:.4f}  "
                f"peak RSS {rec['rss_peak_mib']:6.0f} MiB  "
                f"other jobs {rec.get('others_cores', '?')} cores"
            )
        else:
            bar.write(f"n={n:>9,} {method}: {rec['status']}, larger n skip it")
            given_up.add(method)
    payload = {
        "machine": machine_info(),
        "command": command_line(),
        "data": MANIFOLD_DATA,
        "label_seeds": args.label_seeds,
        "timeout_s": args.timeout,
        "records": summarize(runs),
        "runs": sorted(runs, key=lambda r: (r["n"], r["method"], r.get("repeat", 0))),
    }
    write_json(args.out / SCALING_JSON, payload)


# --------------------------------------------------------------------------- #
# Report: tables and plot
# --------------------------------------------------------------------------- #


def _commands(runs):
    return list(dict.fromkeys(r["command"] for r in runs if "command" in r))


def _ok(records):
    return [r for r in records if r.get("status") == "ok"]


def _solve_seconds(r):
    # Runs recorded before the estimator timed its own phases hold the
    # conjugate gradient alone ("time_cg"); "time_solve" adds normalizing W.
    return r["time_solve"] if "time_solve" in r else r["time_cg"]


def _legacy_note(sc):
    runs = _ok(sc.get("runs", sc["records"]))
    if all("time_solve" in r for r in runs if r["method"].startswith("skssl")):
        return ""
    return (
        " (runs of the former `bench_propagation.py`, which wrapped skssl's "
        "functions to time them, hold the conjugate gradient alone)"
    )


def _record_row(r):
    label = METHOD_LABELS.get(r["method"], r["method"])
    if r.get("status") != "ok":
        status = f"{r['status']} (> {r.get('timeout_s', '?')} s)"
        return [f"{r['n']:,}", label, status] + [""] * 8
    total = f"{r['time_total']:.2f}"
    if r.get("repeats", 1) > 1:
        total += f" (min {r['time_total_min']:.2f}, ×{r['repeats']})"
    if r["method"].startswith("sklearn"):
        phases = ["–", "–", "–", f"– ({r['n_iter']})"]
    else:
        phases = [
            f"{r['time_index']:.2f}",
            f"{r['time_search']:.2f}",
            f"{r['time_affinity']:.2f}",
            f"{_solve_seconds(r):.2f} ({r['n_iter']})",
        ]
    recall = f"{r['recall_at_7']:.3f}" if "recall_at_7" in r else "–"
    return [
        f"{r['n']:,}",
        label,
        total,
        *phases,
        f"{r['rss_data_mib']:.0f} / {r['rss_peak_mib']:.0f}",
        f"{r['accuracy_mean']:.4f}",
        recall,
        r.get("others_cores", "?"),
    ]


def _speedup(runs, n, peer, method):
    """Median within-repeat ratio peer / method, and the ratio of the fastest."""
    times = {}
    for r in runs:
        if r["n"] == n and r["method"] in (peer, method):
            times.setdefault(r.get("repeat", 0), {})[r["method"]] = r["time_total"]
    pairs = [t[peer] / t[method] for t in times.values() if len(t) == 2]
    if not pairs:
        return "–"
    best = min(t[peer] for t in times.values() if peer in t) / min(
        t[method] for t in times.values() if method in t
    )
    return f"{np.median(pairs):.1f}× ({best:.1f}×)"


def markdown(sc):
    """The scaling section of propagation.md: one row per (n, method), ratios."""
    recs = sc["records"]
    runs = _ok(sc.get("runs", recs))
    headers = [
        "n",
        "method",
        "total",
        "index",
        "search",
        "affinity",
        "solve (iters)",
        "RSS data / peak MiB",
        "accuracy",
        "recall@7",
        "others",
    ]
    lines = [
        "## Scaling (synthetic, d = 64, 10 classes, 10 labels per class)",
        "",
        "Data: " + sc["data"] + ". Each (n, method) runs in a fresh subprocess "
        "(peak RSS = `ru_maxrss` of that process, the data and imported libraries "
        "included; `data` = RSS before fitting). Times in seconds: `total` = "
        "`fit` wall time of the median run (the lower middle one for an even "
        "count; min and count in brackets, every run in the json), the other "
        "columns from that run and from `LabelSpreadingCG.timings_`: "
        "`index` = faiss index build (IVF training included), `search` = kNN "
        "search, `affinity` = Gaussian kernel and sparse W, `solve` = the "
        "diffusion solve (normalizing W and conjugate gradient) with its "
        f"iterations{_legacy_note(sc)}. Accuracy on the unlabeled rows, mean over "
        f"{sc.get('label_seeds', 1)} label draws on the same graph. `others` = "
        "average number of cores that other jobs kept busy during the run (the "
        "machine was shared). Commands (json: per run): "
        + ", ".join(f"`{c}`" for c in _commands(sc.get("runs", recs)))
        + ".",
        "",
        *markdown_table([_record_row(r) for r in recs], headers),
        "",
    ]
    by = {(r["n"], r["method"]): r for r in _ok(recs)}
    rows = []
    for n in sorted({r["n"] for r in recs}):
        cells = [
            _speedup(runs, n, peer, f"skssl-{b}")
            for peer in SKLEARN_VARIANTS
            for b in SKSSL_BACKENDS
        ]
        exact = by.get((n, "skssl-exact"))
        for b in ("hnsw", "ivf"):
            r = by.get((n, f"skssl-{b}"))
            delta = (
                f"{100 * (r['accuracy_mean'] - exact['accuracy_mean']):+.2f}"
                if exact and r
                else "–"
            )
            cells.append(delta)
        rows.append([f"{n:,}", *cells])
    headers = [
        "n",
        *(f"{b} ÷ sklearn" for b in SKSSL_BACKENDS),
        *(f"{b} ÷ sklearn α=0.99" for b in SKSSL_BACKENDS),
        "hnsw Δacc vs exact",
        "ivf Δacc vs exact",
    ]
    lines += [
        "### Ratios",
        "",
        "Speed-up = scikit-learn fit time / LabelSpreadingCG fit time at the same "
        "n: the median over repeats of the ratio within one repeat (the two ran "
        "back to back, under similar load), then in brackets the ratio of the "
        "fastest runs (the least disturbed by other jobs). Δacc = accuracy minus "
        "accuracy with the exact graph, in points (same label draws).",
        "",
        *markdown_table(rows, headers),
        "",
    ]
    return lines


def write_plot(sc, path):
    """Fit time and memory added by ``fit`` against n, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = _ok(sc["records"])
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    markers = {
        "skssl-exact": "o",
        "skssl-hnsw": "s",
        "skssl-ivf": "^",
        "sklearn": "x",
        "sklearn-a99": "+",
    }
    for i, (method, marker) in enumerate(markers.items()):
        rs = sorted((r for r in recs if r["method"] == method), key=lambda r: r["n"])
        if not rs:
            continue
        n = [r["n"] for r in rs]
        kw = {"marker": marker, "color": f"C{i}", "label": METHOD_LABELS[method]}
        ax_t.loglog(n, [r["time_total"] for r in rs], **kw)
        fastest = [r.get("time_total_min", r["time_total"]) for r in rs]
        ax_t.loglog(n, fastest, ls=":", color=f"C{i}", lw=1)
        added = [max(r["rss_peak_mib"] - r["rss_data_mib"], 1.0) for r in rs]
        ax_m.loglog(n, added, **kw)
    ns = sorted({r["n"] for r in recs})
    if ns:
        ax_t.axhline(120, color="grey", ls=":", lw=1)
        ax_t.text(ns[0], 135, "2 min", color="grey", fontsize=8)
    m = sc["machine"]
    ax_t.set(
        xlabel="n samples",
        ylabel="fit time (s)",
        title=f"fit time, d = 64 ({m['cpu_count']} CPUs, shared): median, "
        "dotted = fastest run",
    )
    ax_m.set(
        xlabel="n samples",
        ylabel="peak RSS − RSS before fit (MiB)",
        title="memory added by fit",
    )
    for ax in (ax_t, ax_m):
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="only rebuild propagation.md and the plot from the json files",
    )
    p.add_argument(
        "--sizes", type=int_list, default=list(SIZES), help="n values (1e4,3e4,...)"
    )
    p.add_argument("--max-n", type=int_float, default=1_000_000)
    p.add_argument(
        "--backends",
        type=lambda s: [b for b in s.split(",") if b],
        default=list(SKSSL_BACKENDS),
        help="LabelSpreadingCG backends, comma-separated ('' for none)",
    )
    p.add_argument(
        "--exact-max-n",
        type=int_float,
        default=300_000,
        help="largest n for the exact backend (default 3e5)",
    )
    p.add_argument(
        "--sklearn-max-n",
        type=int_float,
        default=300_000,
        help="largest n for scikit-learn LabelSpreading, 0 to skip (default 3e5)",
    )
    p.add_argument(
        "--sklearn-a99-max-n",
        type=int_float,
        default=100_000,
        help="largest n for LabelSpreading(knn, alpha=0.99, max_iter=1000), 0 to "
        "skip (default 1e5)",
    )
    p.add_argument(
        "--timeout", type=float, default=1200.0, help="seconds per run (default 1200)"
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="repeats per (n, method) (default 3)"
    )
    p.add_argument(
        "--repeat-max-n",
        type=int_float,
        default=100_000,
        help="n up to which --repeats applies; larger n run once (default 1e5)",
    )
    p.add_argument(
        "--label-seeds",
        type=int,
        default=3,
        help="label draws averaged per graph, the first one timed (default 3)",
    )
    p.add_argument("--seed", type=int, default=0, help="data and label seed")
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the earlier runs and add these as further repeats",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: n <= 30,000, one repeat, one label draw",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.max_n = min(args.max_n, 30_000)
        args.timeout = min(args.timeout, 300.0)
        args.repeats = 1
        args.label_seeds = 1
    args.max_n_of = {
        "skssl-exact": args.exact_max_n,
        "sklearn": args.sklearn_max_n,
        "sklearn-a99": args.sklearn_a99_max_n,
    }
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        worker(args.n, args.worker, args.seed, args.label_seeds)
        return
    import report

    if not args.report:
        run(args)
    report.write_report(args.out)


if __name__ == "__main__":
    main()
