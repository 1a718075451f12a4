"""Evidence for the kNN search settings of ``skssl.graph``.

On the scaling data (:func:`_common.make_manifold_mixture`), one process per
n, with k = 8 (n_neighbors = 7 plus the self match):

- exact search: ``NeighborIndex.search`` time with the former chunk rule
  (2^26 / n queries per call) against the default ``chunk_size``;
- HNSW ``efSearch`` 16 / 24 / 32 / 64 and IVF ``nprobe`` for probe budgets
  of about 600 / 1,000 / 2,000 rows per query (the lists holding that many),
  each a ``KNNGraph(7, backend=..., index_params=...)`` fit: index build and
  search time from its ``timings_``, recall@7 against exact search and the
  accuracy of LabelSpreadingCG on that graph (n <= 3e5, where an exact graph
  is affordable as the reference).

``--data`` runs the same on other sets than the scaling data (a harder
manifold mixture, 20 overlapping Gaussian blobs, MNIST-1D rows), usually with
``--backends ivf`` (the exact reference graph, then the IVF settings only).
Results go to ``results/propagation_tuning.json`` (runs of other data or n are
kept) and the table to ``results/propagation.md``.

Examples
--------
    python benchmarks/bench_graph.py                   # n = 1e5 and 1e6
    python benchmarks/bench_graph.py --sizes 1e5
    python benchmarks/bench_graph.py --sizes 1e5 --backends ivf \
        --data manifold-hard,blobs,mnist1d      # the IVF budget on other sets
    python benchmarks/bench_graph.py --quick --out /tmp/graph    # ~1 min
    python benchmarks/bench_graph.py --report          # table from json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import (
    RESULTS,
    command_line,
    emit,
    exact_neighbours,
    int_list,
    knn_recall,
    load_average,
    log,
    machine_info,
    make_manifold_mixture,
    markdown_table,
    precomputed_accuracy,
    read_json,
    run_worker,
    sample_rows,
    timed,
    write_json,
)

TUNING_JSON = "propagation_tuning.json"
N_NEIGHBORS = 7
# The settings swept, by faiss's names (index_params of KNNGraph), and how a
# row is labelled from the settings the fit used (index_params_). IVF's are
# probe budgets: rows per query, turned into nprobe at each n (ivf_params).
GRID = {
    "hnsw": [
        {"M": 32, "efConstruction": 40, "efSearch": ef} for ef in (16, 24, 32, 64)
    ],
    "ivf": [{"budget": rows} for rows in (600, 1_000, 2_000)],
}
LABELS = {
    "hnsw": "hnsw M={M} efC={efConstruction} efSearch={efSearch}",
    "ivf": "ivf nlist={nlist} nprobe={nprobe}",
}
# The data sets of --data (loaded by load_data): name -> description.
DATA = {
    "manifold": "manifold mixture (the scaling data)",
    "manifold-hard": "harder manifold mixture (separation 0.15, noise 1.0)",
    "blobs": "20 overlapping Gaussian blobs (d = 64, std 8)",
    "mnist1d": "MNIST-1D rows (d = 40)",
}


def load_data(name, n, seed):
    """The ``--data`` set ``name`` with ``n`` rows, as float32 ``(X, y)``."""
    if name == "manifold":
        return make_manifold_mixture(n, random_state=seed)
    if name == "manifold-hard":
        return make_manifold_mixture(
            n, random_state=seed + 5, separation=0.15, noise=1.0
        )
    if name == "blobs":
        from sklearn.datasets import make_blobs

        X, y = make_blobs(
            n, n_features=64, centers=20, cluster_std=8.0, random_state=seed
        )
        return X.astype(np.float32), y
    if name == "mnist1d":
        from skssl.datasets import load_mnist1d

        data = load_mnist1d(n, random_state=seed + 3)
        return data.X, data.y
    raise ValueError(f"unknown data set {name!r}; choose from {sorted(DATA)}")


def ivf_params(n, budget):
    """IVF settings probing the lists that hold about ``budget`` rows."""
    from skssl.graph import ivf_nlist, ivf_nprobe

    nlist = ivf_nlist(n)
    return {"nlist": nlist, "nprobe": ivf_nprobe(n, nlist, rows_per_query=budget)}


# Above this n an exact graph (the accuracy reference) takes too long.
EXACT_MAX_N = 300_000


def exact_chunks(X, rounds=2):
    """Exact search time, former chunk rule against the default chunk size."""
    from skssl.graph import NeighborIndex

    n = X.shape[0]
    index, build = timed(NeighborIndex, X, metric="euclidean", backend="exact")
    former = int(np.clip(2**26 // n, 256, 65_536))
    settings = {
        f"exact, chunk_size={former} (former rule 2^26/n)": former,
        "exact, chunk_size=None (default)": None,
    }
    times = {name: [] for name in settings}
    for _ in range(rounds):  # interleaved, so both see the same load
        for name, chunk in settings.items():
            _, seconds = timed(index.search, X, N_NEIGHBORS + 1, chunk_size=chunk)
            times[name].append(seconds)
    return [
        {"setting": name, "build_s": build, "search_s": min(ts), "search_s_all": ts}
        for name, ts in times.items()
    ]


def graph_row(X, y, backend, index_params, seed, rows, truth, ref):
    """One KNNGraph fit: its timings, recall and (small n) accuracy."""
    from skssl.graph import KNNGraph, resolve_index_params

    label = ""
    if backend == "ivf":
        budget = index_params["budget"]
        index_params = ivf_params(X.shape[0], budget)
        label = f" (about {budget:,} rows)"
        if index_params == resolve_index_params(None, "ivf", X.shape[0], N_NEIGHBORS):
            label += ", default"
    graph = KNNGraph(
        N_NEIGHBORS, backend=backend, index_params=index_params, random_state=seed
    ).fit(X)
    row = {
        "setting": LABELS[backend].format(**graph.index_params_) + label,
        "index_params": graph.index_params_,
        "build_s": graph.timings_["index"],
        "search_s": graph.timings_["search"],
        "recall_at_7": knn_recall(graph, X, rows, truth),
    }
    if ref is not None:
        row["accuracy_mean"] = float(
            np.mean(precomputed_accuracy(graph.affinity_, y, ref["label_seeds"]))
        )
        row["delta_vs_exact_pts"] = 100 * (row["accuracy_mean"] - ref["accuracy"])
    log(f"[graph] n={X.shape[0]:,} {row['setting']}: {row}")
    return row


def worker(n, seed, n_label_seeds, data, backends):
    """Every setting of ``backends`` at one n of one data set; prints the record."""
    from skssl.graph import KNNGraph

    X, y = load_data(data, n, seed)
    rec = {
        "n": n,
        "data": data,
        "k": N_NEIGHBORS + 1,
        "load_before": load_average(),
        "rows": [],
    }
    rows = sample_rows(n, seed=seed)
    truth = exact_neighbours(X, rows, N_NEIGHBORS)
    ref = None
    if n <= EXACT_MAX_N:
        label_seeds = list(range(seed, seed + n_label_seeds))
        exact = KNNGraph(N_NEIGHBORS, backend="exact").fit(X)
        accuracy = float(np.mean(precomputed_accuracy(exact.affinity_, y, label_seeds)))
        ref = {"label_seeds": label_seeds, "accuracy": accuracy}
        if "exact" in backends:
            for row in exact_chunks(X):
                rec["rows"].append(
                    {**row, "recall_at_7": 1.0, "accuracy_mean": accuracy}
                )
        else:
            rec["rows"].append(
                {
                    "setting": "exact",
                    "build_s": exact.timings_["index"],
                    "search_s": exact.timings_["search"],
                    "recall_at_7": 1.0,
                    "accuracy_mean": accuracy,
                }
            )
        del exact
    for backend, grid in GRID.items():
        if backend not in backends:
            continue
        for params in grid:
            row = graph_row(X, y, backend, params, seed, rows, truth, ref)
            rec["rows"].append(row)
    rec["load_after"] = load_average()
    emit(rec)


def run(args):
    out = read_json(args.out / TUNING_JSON) or {}
    out["machine"] = machine_info()
    results = {(r.get("data", "manifold"), r["n"]): r for r in out.get("results", [])}
    for r in results.values():  # runs before per-run commands: the file's one
        r.setdefault("command", out.get("command"))
    for data in args.data:
        for n in args.sizes:
            log(f"[graph] {data} n={n:,}")
            worker_args = ["settings", "--n", str(n), "--seed", str(args.seed)]
            worker_args += ["--label-seeds", str(args.label_seeds)]
            worker_args += ["--data", data, "--backends", ",".join(args.backends)]
            results[data, n] = {
                "n": n,
                "data": data,
                "command": command_line(),
                **run_worker(__file__, worker_args, args.timeout),
            }
    out.pop("command", None)
    out["results"] = [results[key] for key in sorted(results)]
    write_json(args.out / TUNING_JSON, out)


def markdown(tu):
    """The graph-settings section of propagation.md."""
    rows = []
    for res in tu["results"]:
        data = res.get("data", "manifold")
        if res.get("status") != "ok":
            rows.append([data, f"{res['n']:,}", res.get("status")] + [""] * 6)
            continue
        for row in res["rows"]:
            acc = row.get("accuracy_mean")
            delta = row.get("delta_vs_exact_pts")
            rows.append(
                [
                    data,
                    f"{res['n']:,}",
                    row["setting"],
                    f"{row.get('build_s', 0.0):.2f}",
                    f"{row['search_s']:.2f}",
                    f"{row['recall_at_7']:.3f}",
                    "–" if acc is None else f"{acc:.4f}",
                    "–" if delta is None else f"{delta:+.2f}",
                    res.get("others_cores", "?"),
                ]
            )
    commands = sorted(
        {res.get("command") or tu.get("command") for res in tu["results"]}
    )
    headers = ["data", "n", "setting", "build s", "search s", "recall@7", "accuracy"]
    return [
        "## Backend tuning evidence (skssl.graph settings)",
        "",
        "k = 8 (n_neighbors=7 plus the self match), one process per data set "
        "and n. Data: "
        + "; ".join(f"`{name}` = {text}" for name, text in DATA.items())
        + " (`bench_graph.load_data`). Rows of `bench_propagation.py --tuning` "
        "drove faiss directly with the settings `skssl.graph` used then (IVF "
        "nlist ≈ 4√n); rows of `bench_graph.py` are one `KNNGraph(7, "
        "backend=..., index_params=...)` fit each (build and search from its "
        "`timings_`), IVF at skssl's nlist ≈ 2√n with nprobe for a probe "
        "budget of rows per query (`default` marks skssl's). skssl's HNSW "
        "defaults: M=32, efConstruction=40, efSearch=max(2k, 24) = 24. "
        "`recall@7` against exact search (all rows up to n = 300,000, a "
        "1,000-row sample above); accuracy = LabelSpreadingCG on that graph, "
        "mean over the label draws; Δ vs exact in points. Commands: "
        + ", ".join(f"`{c}`" for c in commands)
        + ".",
        "",
        *markdown_table(rows, [*headers, "Δ vs exact", "others"]),
        "",
    ]


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
        "--sizes",
        type=int_list,
        default=[100_000, 1_000_000],
        help="n values (default 1e5,1e6)",
    )
    p.add_argument("--seed", type=int, default=0, help="data and label seed")
    p.add_argument(
        "--data",
        type=lambda s: [d for d in s.split(",") if d],
        default=["manifold"],
        help=f"data sets, comma-separated, of {sorted(DATA)} (default manifold)",
    )
    p.add_argument(
        "--backends",
        type=lambda s: [b for b in s.split(",") if b],
        default=["exact", "hnsw", "ivf"],
        help="exact (the chunk-size rows), hnsw, ivf; comma-separated",
    )
    p.add_argument(
        "--label-seeds", type=int, default=3, help="label draws for the accuracy"
    )
    p.add_argument(
        "--timeout", type=float, default=2400.0, help="seconds per n (default 2400)"
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: n = 10,000, one label draw"
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.sizes = [n for n in args.sizes if n <= 30_000] or [10_000]
        args.label_seeds = 1
        args.timeout = min(args.timeout, 600.0)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        worker(args.n, args.seed, args.label_seeds, args.data[0], args.backends)
        return
    import report

    if not args.report:
        run(args)
    report.write_report(args.out)


if __name__ == "__main__":
    main()
