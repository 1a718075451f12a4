"""Manifold ranking: retrieval quality, query cost, and mining on manifolds.

Three sections:

``--retrieval`` (default)
    digits (1797 × 64) and MNIST-1D (``load_mnist1d(4000)``), raw features.
    Every row is a query against all others; a row's class defines the rows
    relevant to it. mAP (over the full ranking) and R@1 of:

    - ``euclidean`` / ``cosine``: feature-space kNN ranking;
    - ``exact``: the closed form ``(1 - α)(I - α W)^-1`` of the graph of
      ``ManifoldRanking()`` (dense solve, the reference);
    - ``cg``: ``ManifoldRanking()`` at its defaults (mutual 50-NN, s^3,
      α = 0.99, 20 CG iterations);
    - ``spectral r``: ``ManifoldRanking(solver="spectral", n_components=r)``,
      r in {50, 200, 1000} (r < n), on the same graph.

    Agreement: the share of each method's top-10 list found in the exact
    top-10. Offline (graph, eigenpairs) and online (ranking) seconds.

``--cost``
    Synthetic data (:func:`_common.make_manifold_mixture`, d = 64) at
    n = 1e4, 1e5, 1e6 (``--skip-1e6`` leaves the last out): one graph per n
    (``ManifoldRanking()``, whose ``backend="auto"`` searches exactly below
    10⁵ rows and with IVF from there), then
    the online time per new query of CG and of the spectral filter
    (r = 100, eigenpairs of the same affinity through ``backend="precomputed"``),
    and the offline eigendecomposition time separately. ``--spectral-max-n``
    leaves the spectral filter out above that many rows (CG and the graph are
    still measured there): the 10^6 eigenpairs did not finish in 2 hours.

``--mining``
    digits (1,400 training / 397 test rows, ``MLPModule``) and MNIST-1D
    (4,000 / 1,000, ``CNN1DModule``). A network trained on 5 labels per class
    (``SemiSupervisedNet``) gives the original embeddings;
    ``ManifoldMiningEmbedder`` fine-tunes it on the training rows without
    labels, at its defaults and with the released code's neighbourhoods
    (k = 50 for E and M). R@1 (leave-one-out cosine kNN) and NMI (k-means,
    10 clusters) on both sets, and the transductive accuracy of
    ``LabelSpreadingCG(metric="cosine", kernel="power")`` with the same 5
    labels per class, for the raw features, the original embeddings, the
    original network with the embedder's untrained projection, and the
    fine-tuned ones; the purity of the mined pools (labels used for this
    diagnostic only).

Each section run replaces its part of ``results/ranking.json``; writes
``results/ranking.md``. One thread for torch, faiss and BLAS.

Examples
--------
    python benchmarks/bench_ranking.py                 # --retrieval, ~5 min
    python benchmarks/bench_ranking.py --cost          # n = 1e6: over 2 h (eigenpairs)
    python benchmarks/bench_ranking.py --cost --skip-1e6
    python benchmarks/bench_ranking.py --cost --spectral-max-n 1e5  # ~6 min
    python benchmarks/bench_ranking.py --mining        # ~8 min
    python benchmarks/bench_ranking.py --retrieval --cost --mining --quick \\
        --out /tmp/rankq/ranking
    python benchmarks/bench_ranking.py --report
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from _common import (
    RESULTS,
    command_line,
    load_dataset,
    log,
    machine_info,
    make_manifold_mixture,
    markdown_table,
    quiet,
    read_json,
    write_json,
)

from skssl.ranking import ManifoldRanking

RANKS = (50, 200, 1000)
COST_RANK = 100


# --------------------------------------------------------------------------- #
# Retrieval
# --------------------------------------------------------------------------- #


def evaluate(indices, y, reference=None):
    """mAP over each query's full ranking (its own row left out), R@1, and the
    share of the top 10 found in the ``reference`` top 10."""
    relevant = y[indices] == y[:, None]
    hits = np.cumsum(relevant, axis=1)
    precision = hits / np.arange(1, indices.shape[1] + 1)
    n_relevant = np.maximum(relevant.sum(axis=1), 1)
    ap = (precision * relevant).sum(axis=1) / n_relevant
    scores = dict(map=float(ap.mean()), r1=float(relevant[:, 0].mean()))
    if reference is not None:
        top, ref = indices[:, :10], reference[:, :10]
        agreement = (top[:, :, None] == ref[:, None, :]).any(axis=2).mean()
        scores["top10_agreement"] = float(agreement)
    return scores


def feature_ranking(X, metric):
    """Every other row by increasing distance (or decreasing cosine)."""
    if metric == "cosine":
        U = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        D = -(U @ U.T)
    else:
        sq = (X**2).sum(axis=1)
        D = sq[:, None] + sq[None, :] - 2 * X @ X.T
    np.fill_diagonal(D, np.inf)
    return np.argsort(D, axis=1, kind="stable")[:, :-1]


def exact_scores(ranking):
    """The dense closed form ``(1 - alpha)(I - alpha W)^-1`` on the graph of
    ``ranking``, diagonal zeroed; symmetric, row i holds query i's scores."""
    from scipy.linalg import solve

    W = ranking.normalized_affinity_.toarray()
    n = W.shape[0]
    F = solve(np.eye(n) - ranking.alpha * W, np.eye(n), assume_a="pos")
    F *= 1 - ranking.alpha
    np.fill_diagonal(F, 0.0)
    return F


def full_ranking(F):
    """Every other row by decreasing score (the diagonal is the query)."""
    F = F.copy()
    np.fill_diagonal(F, -np.inf)
    return np.argsort(-F, axis=1, kind="stable")[:, :-1]


def spectral_error(spectral, F):
    """Relative Frobenius error of the low-rank scores, diagonal left out."""
    lam, U = spectral.eigenvalues_, spectral.eigenvectors_
    F_r = (1 - spectral.alpha) * (U / (1 - spectral.alpha * lam)) @ U.T
    np.fill_diagonal(F_r, 0.0)
    return float(np.linalg.norm(F_r - F) / np.linalg.norm(F))


def retrieval(args, results):
    section = results["retrieval"] = {}
    for name in args.datasets:
        X, y = load_dataset(name, quick=args.quick)
        X = np.asarray(X, dtype=np.float64)
        n = X.shape[0]
        log(f"retrieval: {name} ({n} x {X.shape[1]})")
        rows = {}
        start = time.perf_counter()
        cg = ManifoldRanking().fit(X)
        graph_seconds = time.perf_counter() - start
        start = time.perf_counter()
        F = exact_scores(cg)
        reference = full_ranking(F)
        rows["exact"] = dict(offline_s=time.perf_counter() - start)
        rows["exact"].update(evaluate(reference, y))
        for metric in ("euclidean", "cosine"):
            rows[metric] = evaluate(feature_ranking(X, metric), y, reference)
        start = time.perf_counter()
        _, indices = cg.rank(n_results=n - 1)
        rows["cg"] = dict(online_s=time.perf_counter() - start)
        rows["cg"].update(evaluate(indices, y, reference))
        for r in (r for r in args.ranks if r < n):
            spectral = ManifoldRanking(
                backend="precomputed", solver="spectral", n_components=r
            ).fit(cg.graph_.affinity_)
            start = time.perf_counter()
            _, indices = spectral.rank(n_results=n - 1)
            key = f"spectral r={r}"
            rows[key] = dict(
                offline_s=spectral.timings_["eigenpairs"],
                online_s=time.perf_counter() - start,
            )
            rows[key].update(evaluate(indices, y, reference))
            rows[key]["score_error"] = spectral_error(spectral, F)
            log(f"  {key}: mAP {rows[key]['map']:.3f}")
        section[name] = dict(
            n=n,
            d=X.shape[1],
            graph_s=graph_seconds,
            edges=int(cg.graph_.affinity_.nnz),
            components=int(cg.component_labels_.max() + 1),
            methods=rows,
        )
        write_json(args.out.with_suffix(".json"), results)


# --------------------------------------------------------------------------- #
# Cost
# --------------------------------------------------------------------------- #


def _class_precision(indices, y, y_query):
    """Share of the ranked database rows in their query's class."""
    return float((y[indices] == y_query[:, None]).mean())


def cost(args, results):
    runs = []
    for n in args.sizes:
        X, y = make_manifold_mixture(n + args.n_queries, random_state=0)
        X, Q, y, y_query = X[:n], X[n:], y[:n], y[n:]
        log(f"cost: n = {n}")
        cg = ManifoldRanking().fit(X)
        start = time.perf_counter()
        _, indices = cg.rank(Q, n_results=100)
        cg_query = (time.perf_counter() - start) / args.n_queries
        cg_precision = _class_precision(indices, y, y_query)
        rank = min(COST_RANK, n - 1)
        eigenpairs_s = spectral_ms = spectral_precision = None
        if args.spectral_max_n is None or n <= args.spectral_max_n:
            spectral = ManifoldRanking(
                backend="precomputed", solver="spectral", n_components=rank
            ).fit(cg.graph_.affinity_)
            neighbours, weights = cg.graph_.query(Q, n_neighbors=cg.n_query_neighbors)
            rows = np.repeat(np.arange(len(Q)), neighbours.shape[1])
            shape = (len(Q), n)
            A = sp.csr_matrix((weights.ravel(), (rows, neighbours.ravel())), shape)
            start = time.perf_counter()
            _, indices = spectral.rank(A, n_results=100)
            spectral_ms = 1000 * (time.perf_counter() - start) / args.n_queries
            spectral_precision = _class_precision(indices, y, y_query)
            eigenpairs_s = spectral.timings_["eigenpairs"]
        timings = cg.timings_
        sizes = np.bincount(cg.component_labels_)
        runs.append(
            dict(
                n=n,
                backend=cg.graph_.backend_,
                edges=int(cg.graph_.affinity_.nnz),
                components=int((sizes > 1).sum()),
                isolated=int((sizes == 1).sum()),
                graph_s=timings["index"] + timings["search"] + timings["affinity"],
                eigenpairs_s=eigenpairs_s,
                n_components=rank,
                cg_ms_per_query=1000 * cg_query,
                spectral_ms_per_query=spectral_ms,
                cg_precision=cg_precision,
                spectral_precision=spectral_precision,
                n_queries=args.n_queries,
            )
        )
        log(
            f"  graph {runs[-1]['graph_s']:.1f} s, eigenpairs "
            f"{_measured(eigenpairs_s)} s, per query: cg "
            f"{runs[-1]['cg_ms_per_query']:.1f} ms, spectral "
            f"{_measured(spectral_ms)} ms"
        )
        results["cost"] = runs
        write_json(args.out.with_suffix(".json"), results)


# --------------------------------------------------------------------------- #
# Mining
# --------------------------------------------------------------------------- #


def recall_at_1(Z, y):
    """Leave-one-out R@1 of cosine kNN."""
    U = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
    S = U @ U.T
    np.fill_diagonal(S, -np.inf)
    return float((y[S.argmax(axis=1)] == y).mean())


def nmi(Z, y, seed=0):
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    U = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
    labels = KMeans(10, n_init=10, random_state=seed).fit_predict(U)
    return float(normalized_mutual_info_score(y, labels))


def spreading_accuracy(Z, y, y_masked, raw):
    from skssl import LabelSpreadingCG

    params = {} if raw else dict(metric="cosine", kernel="power")
    model = quiet(LabelSpreadingCG(**params).fit, Z, y_masked)
    unlabeled = y_masked == -1
    return float((model.transduction_[unlabeled] == y[unlabeled]).mean())


def mining_data(name, args):
    """Training and test rows, labels, and the network class of one data set."""
    from skssl.datasets import load_mnist1d
    from skssl.deep import CNN1DModule, MLPModule

    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        order = np.random.default_rng(0).permutation(len(y))
        X, y = X[order].astype(np.float32), y[order]
        n_train, module = 1400, MLPModule
    else:
        data = load_mnist1d(args.n_train + args.n_test, random_state=0)
        X, y = data.X, data.y
        n_train, module = args.n_train, CNN1DModule
    return X[:n_train], y[:n_train], X[n_train:], y[n_train:], module


def pool_purity(Z, y, embedder):
    """Share of positives of the anchor's class and of negatives of another.

    The pools of a mining with the embedder's settings on ``Z`` (labels are
    used for this diagnostic only), beside the share of the Euclidean
    neighbours ``E`` of the anchor's class.
    """
    ranking = ManifoldRanking(
        embedder.n_neighbors,
        alpha=embedder.alpha,
        gamma=embedder.gamma,
        max_iter=embedder.max_iter,
    ).fit(Z)
    pairs = ranking.mine_pairs(
        n_positives=embedder.n_positives,
        n_negatives=embedder.n_negatives,
        k_euclidean=embedder.k_euclidean,
        k_manifold=embedder.k_manifold,
    )
    index = ranking.graph_.index_
    _, euclid = index.search(index.data, embedder.k_euclidean + 1)
    same = y[pairs.anchors][:, None]
    pos, neg = pairs.positives, pairs.negatives
    return dict(
        positives_same_class=float((y[pos] == same)[pos >= 0].mean()),
        negatives_other_class=float((y[neg] != same)[neg >= 0].mean()),
        euclidean_same_class=float((y[euclid[:, 1:]] == same).mean()),
        positives=int((pos >= 0).sum()),
        negatives=int((neg >= 0).sum()),
    )


def mining(args, results):
    import torch

    from skssl.datasets import mask_labels
    from skssl.deep import SemiSupervisedNet
    from skssl.deep.mining import ManifoldMiningEmbedder

    section = results["mining"] = {}
    for name in args.datasets:
        X, y, X_test, y_test, module = mining_data(name, args)
        y_masked = mask_labels(y, per_class=args.labels, random_state=0)
        log(f"mining: {name}, pre-training on {args.labels} labels per class")
        start = time.perf_counter()
        network = SemiSupervisedNet(module=module, random_state=0, **args.pretrain)
        network.fit(X, y_masked)
        pretrain_s = time.perf_counter() - start
        params = dict(module=network.module_, random_state=0, **args.embedder)
        projected = ManifoldMiningEmbedder(**{**params, "max_epochs": 0}).fit(X)
        embeddings = {
            "raw features": (X, X_test),
            "pre-trained network": (network.embed(X), network.embed(X_test)),
            "+ untrained projection": (
                projected.transform(X),
                projected.transform(X_test),
            ),
        }
        purity, seconds = {}, {}
        for label, extra in (("fine-tuned by mining", {}), *args.variants):
            log(f"mining: {name}, {label}")
            tuned = ManifoldMiningEmbedder(**{**params, **extra})
            purity[label] = pool_purity(
                embeddings["+ untrained projection"][0], y, tuned
            )
            start = time.perf_counter()
            quiet(tuned.fit, X)
            seconds[label] = time.perf_counter() - start
            embeddings[label] = (tuned.transform(X), tuned.transform(X_test))
        rows = {}
        for label, (Z, Z_test) in embeddings.items():
            rows[label] = dict(
                dim=int(Z.shape[1]),
                r1_train=recall_at_1(Z, y),
                r1_test=recall_at_1(Z_test, y_test),
                nmi_train=nmi(Z, y),
                nmi_test=nmi(Z_test, y_test),
                spreading_accuracy=spreading_accuracy(
                    Z, y, y_masked, raw=label == "raw features"
                ),
            )
            log(f"  {label}: {rows[label]}")
        section[name] = dict(
            n_train=len(y),
            n_test=len(y_test),
            module=module.__name__,
            labels_per_class=args.labels,
            pretrain=dict(args.pretrain),
            embedder={
                k: v
                for k, v in ManifoldMiningEmbedder(**params).get_params().items()
                if k in args.shown
            },
            variants={label: extra for label, extra in args.variants},
            pretrain_s=pretrain_s,
            tune_s=seconds,
            pool_purity=purity,
            embeddings=rows,
            torch=torch.__version__,
        )
        write_json(args.out.with_suffix(".json"), results)


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def _measured(value, spec=".2f"):
    """A time or precision for the tables; '–' where it was not measured (None)."""
    return "–" if value is None else format(value, spec)


def _components(run):
    """Components with an edge / rows without one, '–' for older runs."""
    if "components" not in run:
        return "–"
    return f"{run['components']:,} / {run['isolated']:,}"


def _commands(results):
    """The command of each section in the json (one per section run)."""
    commands = results.get("commands") or {"all": results.get("command")}
    return ", ".join(f"`{c}`" for c in dict.fromkeys(commands.values()))


def _markdown(results):
    machine = results.get("machine", {})
    lines = [
        "# Manifold ranking",
        "",
        f"Machine: {machine.get('platform')}, {machine.get('cpu_count')} CPUs, one "
        "thread for BLAS, faiss and torch, shared with other jobs: compare times "
        f"within a table. Commands: {_commands(results)}.",
        "",
    ]
    section = results.get("retrieval")
    if section:
        lines += [
            "## Retrieval",
            "",
            "Every row queries all others (left out of its own list); relevant "
            "rows share its class. `ManifoldRanking()` defaults: mutual 50-NN "
            "graph, cosine similarities cubed, α = 0.99, CG with 20 iterations. "
            "`exact` is the dense closed form on the same graph; `spectral r` "
            "filters with the top r eigenpairs of the same graph. Agreement: "
            "share of the top 10 also in the exact top 10. Score error: relative "
            "Frobenius distance of the spectral scores to the exact ones, the "
            "query's own entry left out. Offline: the "
            "eigendecomposition (or the dense solve); online: ranking every row "
            "(in blocks of queries).",
            "",
        ]
        for name, entry in section.items():
            lines += [
                f"**{name}** ({entry['n']} × {entry['d']}; graph {entry['edges']} "
                f"edges, {entry['components']} components, built in "
                f"{entry['graph_s']:.1f} s)",
                "",
            ]
            table = []
            for method, row in entry["methods"].items():
                table.append(
                    [
                        method,
                        f"{row['map']:.3f}",
                        f"{row['r1']:.3f}",
                        f"{row['top10_agreement']:.3f}"
                        if "top10_agreement" in row
                        else "1",
                        f"{row['score_error']:.3f}" if "score_error" in row else "",
                        f"{row['offline_s']:.1f}" if "offline_s" in row else "",
                        f"{row['online_s']:.1f}" if "online_s" in row else "",
                    ]
                )
            lines += markdown_table(
                table,
                [
                    "method",
                    "mAP",
                    "R@1",
                    "top-10 agreement",
                    "score error",
                    "offline s",
                    "online s",
                ],
            )
            lines.append("")
    runs = results.get("cost")
    if runs:
        lines += [
            "## Cost per query",
            "",
            "Synthetic d = 64 data, `ManifoldRanking()` graph; new queries join "
            "through their 10 nearest rows; 100 results each, and P@100 is the share "
            "of them in the query's class. Spectral: "
            "`n_components` eigenpairs of the same affinity, computed once "
            "(offline) by `skssl.solvers.spectral_eigenpairs`: ARPACK for a "
            "connected graph of up to 50,000 rows, else Chebyshev-filtered "
            "subspace iteration (the mutual 50-NN graphs here split into many "
            "components from 10^5 rows, whose repeated eigenvalue 1 Lanczos "
            "does not return in full). Components: connected components with "
            "an edge, and rows without any (mutual neighbours of no row). Each "
            "component adds an eigenvalue 1 to the spectrum, so where they "
            "outnumber r the top r eigenvectors all lie in the span of the "
            "components' degree vectors, and a rank-r filter orders the rows of "
            "a component by their degree alone, whatever the query.",
            "",
        ]
        skipped = [r["n"] for r in runs if r["eigenpairs_s"] is None]
        if skipped:
            lines[-1:-1] = [
                "",
                "Spectral not run (–) at n = "
                + ", ".join(f"{n:,}" for n in skipped)
                + " (`--spectral-max-n`, which the 10^6 eigenpairs call for: "
                "they did not finish in 2 hours on this machine); CG needs no "
                "offline step.",
            ]
        table = [
            [
                f"{r['n']:,}",
                r["backend"],
                f"{r['edges']:,}",
                _components(r),
                f"{r['graph_s']:.1f}",
                r["n_components"],
                _measured(r["eigenpairs_s"], ".1f"),
                f"{r['cg_ms_per_query']:.2f}",
                _measured(r["spectral_ms_per_query"]),
                _measured(r.get("cg_precision"), ".3f"),
                _measured(r.get("spectral_precision"), ".3f"),
            ]
            for r in runs
        ]
        lines += markdown_table(
            table,
            [
                "n",
                "kNN",
                "edges",
                "components / isolated rows",
                "graph s",
                "r",
                "eigenpairs s",
                "CG ms/query",
                "spectral ms/query",
                "CG P@100",
                "spectral P@100",
            ],
        )
        lines.append("")
    section = results.get("mining")
    if section:
        lines += [
            "## Mining on manifolds",
            "",
            "A network pre-trained on a few labels per class (`SemiSupervisedNet`) "
            "gives the original embeddings; `ManifoldMiningEmbedder` fine-tunes it "
            "on the training rows without labels. R@1: leave-one-out cosine kNN; "
            "NMI: k-means with 10 clusters; label spreading: `LabelSpreadingCG` "
            "(cosine, power kernel; its defaults on raw features) with the same "
            "labels, accuracy on the unlabeled training rows. Pool purity (labels "
            "used for this diagnostic only): share of mined positives of the "
            "anchor's class and of negatives of another class, for the first "
            "mining (original network and projection), beside the share of the "
            "anchor's class among its Euclidean neighbours E.",
            "",
        ]
        for name, entry in section.items():
            variants = "; ".join(
                f"{label}: {extra}" for label, extra in entry["variants"].items()
            )
            lines += [
                f"**{name}** ({entry['n_train']:,} training / {entry['n_test']:,} "
                f"test rows, `{entry['module']}` pre-trained on "
                f"{entry['labels_per_class']} labels per class in "
                f"{entry['pretrain_s']:.0f} s; embedder {entry['embedder']}"
                + (f"; {variants}" if variants else "")
                + ")",
                "",
            ]
            table = [
                [
                    label,
                    row["dim"],
                    f"{row['r1_train']:.3f}",
                    f"{row['r1_test']:.3f}",
                    f"{row['nmi_train']:.3f}",
                    f"{row['nmi_test']:.3f}",
                    f"{row['spreading_accuracy']:.3f}",
                ]
                for label, row in entry["embeddings"].items()
            ]
            lines += markdown_table(
                table,
                [
                    "embedding",
                    "dim",
                    "R@1 train",
                    "R@1 test",
                    "NMI train",
                    "NMI test",
                    "label spreading acc.",
                ],
            )
            lines.append("")
            table = [
                [
                    label,
                    f"{p['positives_same_class']:.3f}",
                    f"{p['negatives_other_class']:.3f}",
                    f"{p['euclidean_same_class']:.3f}",
                    f"{p['positives']:,} / {p['negatives']:,}",
                    f"{entry['tune_s'][label]:.0f}",
                ]
                for label, p in entry["pool_purity"].items()
            ]
            lines += markdown_table(
                table,
                [
                    "fine-tuning",
                    "positives of the class",
                    "negatives of another class",
                    "E of the class",
                    "pooled positives / negatives",
                    "seconds",
                ],
            )
            lines.append("")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--retrieval", action="store_true")
    parser.add_argument("--cost", action="store_true")
    parser.add_argument("--mining", action="store_true")
    parser.add_argument("--skip-1e6", action="store_true", help="cost: n <= 1e5")
    parser.add_argument(
        "--spectral-max-n",
        type=float,
        default=None,
        help="cost: the spectral filter only up to this many rows (CG at all n)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--out", type=Path, default=RESULTS / "ranking")
    parser.add_argument("--report", action="store_true", help="markdown from json")
    args = parser.parse_args(argv)
    args.datasets = ["digits", "MNIST-1D"]
    args.ranks = RANKS
    args.sizes = [10_000, 100_000] if args.skip_1e6 else [10_000, 100_000, 1_000_000]
    args.n_queries = 100
    args.n_train, args.n_test, args.labels = 4000, 1000, 5
    args.pretrain = {}
    args.embedder = {}
    args.shown = (
        "n_components",
        "margin",
        "lr",
        "max_epochs",
        "mine_every",
        "k_euclidean",
        "k_manifold",
    )
    # The released code's neighbourhoods (k = 50 for E and M).
    args.variants = (("released k = 50", dict(k_euclidean=50, k_manifold=50)),)
    if args.quick:
        args.ranks = (50, 200)
        args.sizes, args.n_queries = [3_000, 10_000], 20
        args.n_train, args.n_test = 1000, 500
        args.pretrain = dict(max_epochs=5)
        args.embedder = dict(max_epochs=2, mine_every=1)

    import faiss
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    path = args.out.with_suffix(".json")
    results = read_json(path) or {}
    if not args.report:
        results.update(machine=machine_info())
        results.pop("command", None)
        commands = results.setdefault("commands", {})
        with threadpool_limits(1):
            if args.retrieval or not (args.cost or args.mining):
                retrieval(args, results)
                commands["retrieval"] = command_line()
            if args.cost:
                cost(args, results)
                commands["cost"] = command_line()
            if args.mining:
                mining(args, results)
                commands["mining"] = command_line()
        write_json(path, results)
    markdown = _markdown(results)
    args.out.with_suffix(".md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
