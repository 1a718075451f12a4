"""Benchmark LabelSpreadingCG against its peers: accuracy, robustness, scaling.

Sections (accuracy, robustness, sensitivity and scaling run when none is chosen):

``--accuracy``
    digits, 1 / 3 / 10 labels per class, 10 seeds: accuracy on the unlabeled
    points of LabelSpreadingCG, scikit-learn LabelSpreading / LabelPropagation
    (knn kernel) and GraphLearning Laplace / Poisson learning.
``--robustness``
    The same methods on wine, breast_cancer, two moons, two circles and
    MNIST-1D with 1 and 10 labels per class.
``--sensitivity``
    LabelSpreadingCG with one parameter moved off its default, on the same data.
``--scaling``
    Synthetic d = 64 data, n = 1e4 ... 1e6: fit time split into index build,
    kNN search, affinity and conjugate gradient; peak RSS and accuracy per kNN
    backend, against scikit-learn LabelSpreading(kernel="knn"). Every
    (n, method) runs in a fresh subprocess with a timeout, so peak RSS is that
    configuration's own and a slow run cannot hang the script.
``--tuning``
    The faiss settings of ``skssl.graph`` (exact-search chunking, HNSW
    efSearch, IVF nprobe): time, recall and accuracy (opt-in, ~10 min).
``--cg-profile``
    Where the solver time goes at n = 1e6, and what float32 would save (opt-in).

Results go to ``benchmarks/results/``: ``propagation_*.json``, the tables in
``propagation.md`` and the log-log plot ``propagation_scaling.png``.

Examples
--------
    python benchmarks/bench_propagation.py                 # default sections
    python benchmarks/bench_propagation.py --quick         # smoke run, ~1 min
    python benchmarks/bench_propagation.py --scaling --max-n 1e5
    python benchmarks/bench_propagation.py --tuning --cg-profile
    python benchmarks/bench_propagation.py --report        # tables from json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ACCURACY_JSON = "propagation_accuracy.json"
SCALING_JSON = "propagation_scaling.json"
TABLES_MD = "propagation.md"
SCALING_PNG = "propagation_scaling.png"
TUNING_JSON = "propagation_tuning.json"
CG_JSON = "propagation_cg_profile.json"

SKSSL_BACKENDS = ("exact", "hnsw", "ivf")
# scikit-learn LabelSpreading(kernel="knn") as shipped, and with the diffusion
# strength and iteration budget of LabelSpreadingCG (alpha=0.99): its default
# alpha=0.2 and tol=1e-3 stop after a few hops, which starves most rows of
# label mass when labels are few and n is large.
SKLEARN_VARIANTS = {
    "sklearn": {},
    "sklearn-a99": {"alpha": 0.99, "max_iter": 1000},
}
SCALING_SIZES = (10_000, 30_000, 100_000, 300_000, 1_000_000)


# --------------------------------------------------------------------------- #
# Machine and bookkeeping
# --------------------------------------------------------------------------- #


def machine_info():
    """Where the figures come from: they only compare within one machine."""
    import faiss
    import scipy
    import sklearn

    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "faiss": faiss.__version__,
        "faiss_omp_threads": faiss.omp_get_max_threads(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }
    from importlib import metadata

    try:
        info["graphlearning"] = metadata.version("graphlearning")
    except metadata.PackageNotFoundError:
        info["graphlearning"] = None
    try:
        with open("/proc/meminfo") as fh:
            total_kb = int(fh.readline().split()[1])
        info["memory_gib"] = round(total_kb / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def peak_rss_mib():
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def command_line():
    return " ".join(["python", "benchmarks/bench_propagation.py", *sys.argv[1:]])


def write_json(path, payload):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def read_json(path):
    return json.loads(path.read_text()) if path.exists() else None


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# Methods compared (transductive accuracy on the unlabeled rows)
# --------------------------------------------------------------------------- #


def _skssl_graph(X):
    """The graph LabelSpreadingCG builds with its defaults (scipy CSR)."""
    from skssl.graph import build_graph

    W, _ = build_graph(X, 7, metric="euclidean", kernel="gaussian")
    return W


def _gl_knn_graph(X):
    import graphlearning as gl

    return gl.weightmatrix.knn(X, 10)


def method_table():
    """name -> (graph kind or None, function(X, y_masked, W) -> labels)."""
    from sklearn.semi_supervised import LabelPropagation, LabelSpreading

    from skssl import LabelSpreadingCG

    def skssl_cg(X, ym, W):
        return LabelSpreadingCG().fit(X, ym).transduction_

    def sk_ls(X, ym, W):
        return LabelSpreading(kernel="knn").fit(X, ym).transduction_

    def sk_ls7(X, ym, W):
        model = LabelSpreading(kernel="knn", n_neighbors=7, max_iter=1000)
        return model.fit(X, ym).transduction_

    def sk_lp(X, ym, W):
        return LabelPropagation(kernel="knn").fit(X, ym).transduction_

    def sk_lp7(X, ym, W):
        model = LabelPropagation(kernel="knn", n_neighbors=7, max_iter=1000)
        return model.fit(X, ym).transduction_

    def gl_method(name):
        def run(X, ym, W):
            import graphlearning as gl

            train = np.flatnonzero(ym != -1)
            model = getattr(gl.ssl, name)(W)
            return model.fit_predict(train, ym[train])

        return run

    return {
        "LabelSpreadingCG": (None, skssl_cg),
        "sklearn LabelSpreading(knn)": (None, sk_ls),
        "sklearn LabelSpreading(knn, k=7, max_iter=1000)": (None, sk_ls7),
        "sklearn LabelPropagation(knn)": (None, sk_lp),
        "sklearn LabelPropagation(knn, k=7, max_iter=1000)": (None, sk_lp7),
        "GL Laplace (gl knn10)": ("gl", gl_method("laplace")),
        "GL Poisson (gl knn10)": ("gl", gl_method("poisson")),
        "GL Laplace (skssl graph)": ("skssl", gl_method("laplace")),
        "GL Poisson (skssl graph)": ("skssl", gl_method("poisson")),
    }


def evaluate(X, y, per_class, seeds, methods):
    """Accuracy on the unlabeled rows of every method for every seed."""
    from skssl.datasets import mask_labels

    graphs = {}
    for kind, _ in methods.values():
        if kind == "gl" and kind not in graphs:
            graphs[kind] = _gl_knn_graph(X)
        elif kind == "skssl" and kind not in graphs:
            graphs[kind] = _skssl_graph(X)
    out = {name: {"accuracy": [], "seconds": []} for name in methods}
    for seed in seeds:
        ym = mask_labels(y, per_class=per_class, random_state=seed)
        unlabeled = ym == -1
        for name, (kind, fit) in methods.items():
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = np.asarray(fit(X, ym, graphs.get(kind)))
            seconds = time.perf_counter() - start
            acc = float(np.mean(pred[unlabeled] == y[unlabeled]))
            out[name]["accuracy"].append(acc)
            out[name]["seconds"].append(seconds)
    for rec in out.values():
        acc = np.asarray(rec["accuracy"])
        rec["mean"] = float(acc.mean())
        rec["std"] = float(acc.std())
        rec["mean_seconds"] = float(np.mean(rec["seconds"]))
    return out


def load_robustness_data(name, quick=False):
    from sklearn.datasets import (
        load_breast_cancer,
        load_wine,
        make_circles,
        make_moons,
    )
    from sklearn.preprocessing import StandardScaler

    if name == "wine":
        X, y = load_wine(return_X_y=True)
        return StandardScaler().fit_transform(X), y
    if name == "breast_cancer":
        X, y = load_breast_cancer(return_X_y=True)
        return StandardScaler().fit_transform(X), y
    if name == "two moons":
        return make_moons(n_samples=1000, noise=0.1, random_state=0)
    if name == "two circles":
        return make_circles(n_samples=1000, noise=0.05, factor=0.5, random_state=0)
    if name == "MNIST-1D":
        from skssl.datasets import load_mnist1d

        data = load_mnist1d(1000 if quick else 4000)
        return data.X.astype(np.float64), data.y
    raise ValueError(name)


ROBUSTNESS_SETS = ("wine", "breast_cancer", "two moons", "two circles", "MNIST-1D")


def run_accuracy(args):
    from sklearn.datasets import load_digits

    methods = method_table()
    seeds = list(range(3 if args.quick else args.seeds))
    payload = read_json(args.out / ACCURACY_JSON) or {}
    payload["machine"] = machine_info()
    if args.accuracy:
        X, y = load_digits(return_X_y=True)
        digits = {}
        for per_class in (1, 3, 10):
            log(
                f"[accuracy] digits, {per_class} label(s) per class, {len(seeds)} seeds"
            )
            digits[str(per_class)] = evaluate(X, y, per_class, seeds, methods)
        payload["digits"] = {
            "command": command_line(),
            "seeds": seeds,
            "protocol": "skssl.datasets.mask_labels(y, per_class=p, random_state=s); "
            "accuracy on the rows whose label was hidden",
            "results": digits,
        }
    if args.robustness:
        robust = {}
        for name in ROBUSTNESS_SETS:
            X, y = load_robustness_data(name, quick=args.quick)
            robust[name] = {"n_samples": int(X.shape[0]), "n_features": X.shape[1]}
            for per_class in (1, 10):
                log(f"[robustness] {name}, {per_class} label(s) per class")
                robust[name][str(per_class)] = evaluate(X, y, per_class, seeds, methods)
        payload["robustness"] = {
            "command": command_line(),
            "seeds": seeds,
            "results": robust,
        }
    if args.sensitivity:
        payload["sensitivity"] = run_sensitivity(args, seeds)
    write_json(args.out / ACCURACY_JSON, payload)
    return payload


SENSITIVITY_DATA = (
    ("digits", 1),
    ("digits", 10),
    ("two moons", 1),
    ("wine", 1),
    ("breast_cancer", 1),
    ("MNIST-1D", 10),
)


def sensitivity_grid():
    """LabelSpreadingCG settings around its defaults (first entry)."""
    grid = [{}]
    grid += [{"n_neighbors": k} for k in (5, 10, 15)]
    grid += [{"alpha": a} for a in (0.9, 0.999)]
    grid += [{"class_mass_normalization": False}]
    grid += [{"symmetrize": "max"}, {"symmetrize": "mutual"}]
    grid += [{"kernel": "binary"}]
    grid += [{"metric": "cosine", "kernel": "power"}]
    return grid


def run_sensitivity(args, seeds):
    """Accuracy of LabelSpreadingCG when one parameter moves off its default."""
    from sklearn.datasets import load_digits

    from skssl import LabelSpreadingCG

    def fit_with(params):
        def run(X, ym, W):
            return LabelSpreadingCG(**params).fit(X, ym).transduction_

        return run

    grid = sensitivity_grid()
    names = [", ".join(f"{k}={v!r}" for k, v in g.items()) or "defaults" for g in grid]
    methods = {name: (None, fit_with(g)) for name, g in zip(names, grid, strict=True)}
    results = {}
    for data, per_class in SENSITIVITY_DATA:
        if data == "digits":
            X, y = load_digits(return_X_y=True)
        else:
            X, y = load_robustness_data(data, quick=args.quick)
        log(f"[sensitivity] {data}, {per_class} label(s) per class")
        res = evaluate(X, y, per_class, seeds, methods)
        results[f"{data} ({per_class})"] = res
    return {"command": command_line(), "seeds": seeds, "results": results}


# --------------------------------------------------------------------------- #
# Scaling
# --------------------------------------------------------------------------- #


def make_manifold_mixture(
    n_samples,
    *,
    n_features=64,
    n_classes=10,
    components_per_class=3,
    intrinsic_dim=8,
    separation=0.2,
    noise=0.8,
    random_state=0,
):
    """Mixture of noisy 8-dimensional linear manifolds in 64 dimensions.

    Each class is the union of ``components_per_class`` random 8-dimensional
    subspaces (Gaussian coordinates) around nearby centres, plus isotropic noise
    in all 64 dimensions, so classes overlap and graph SSL is meaningful but
    not trivial. The manifolds are fixed (seed 12345) whatever ``n_samples``;
    ``random_state`` only draws the points, so larger n samples the same
    distribution more densely.
    """
    structure = np.random.default_rng(12345)
    n_comp = n_classes * components_per_class
    centres = structure.normal(scale=separation, size=(n_comp, n_features))
    bases = structure.normal(size=(n_comp, n_features, intrinsic_dim))
    bases /= np.sqrt(intrinsic_dim)
    rng = np.random.default_rng(random_state)
    comp = rng.integers(n_comp, size=n_samples)
    X = np.empty((n_samples, n_features), dtype=np.float32)
    for c in range(n_comp):
        rows = np.flatnonzero(comp == c)
        z = rng.normal(size=(rows.size, intrinsic_dim))
        eps = rng.normal(scale=noise, size=(rows.size, n_features))
        X[rows] = centres[c] + z @ bases[c].T + eps
    return X, comp % n_classes


class PhaseTimer:
    """Wrap skssl's graph and solver entry points to time each phase of ``fit``.

    The estimator's own ``fit`` runs unchanged; the wrappers only add up the
    wall time spent in each function.
    """

    def __init__(self):
        import skssl.graph as graph
        import skssl.propagation as prop

        self.seconds = {}
        self.captured = {}
        self._restore = []
        self._wrap(graph.NeighborIndex, "_build", "index_build")
        self._wrap(graph.NeighborIndex, "search", "knn_search")
        self._wrap(prop, "build_graph", "graph_total", capture=True)
        self._wrap(prop, "diffuse", "diffuse_total")
        self._wrap(prop, "conjugate_gradient", "cg", capture=True)
        self._wrap(graph, "knn_search", "knn_total", capture=True)

    def _wrap(self, owner, attr, key, capture=False):
        original = getattr(owner, attr)
        seconds = self.seconds
        captured = self.captured

        def timed(*a, **kw):
            start = time.perf_counter()
            out = original(*a, **kw)
            seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - start
            if capture:
                captured[key] = out
            return out

        setattr(owner, attr, timed)
        self._restore.append((owner, attr, original))

    def close(self):
        for owner, attr, original in reversed(self._restore):
            setattr(owner, attr, original)


def knn_recall(X, knn_indices, n_queries=1000, k=None, seed=0):
    """Recall of approximate neighbours against exact search on a row sample."""
    import faiss

    n, kk = knn_indices.shape
    k = k or kk
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(n_queries, n), replace=False))
    index = faiss.IndexFlatL2(X.shape[1])
    index.add(np.ascontiguousarray(X, dtype=np.float32))
    _, exact = index.search(np.ascontiguousarray(X[rows], dtype=np.float32), k + 1)
    hits = 0
    for i, r in enumerate(rows):
        truth = set(exact[i][exact[i] != r][:k].tolist())
        hits += len(truth & set(knn_indices[r, :k].tolist()))
    return hits / (len(rows) * k)


def _precomputed_accuracy(W, y, label_seeds):
    """Accuracy of LabelSpreadingCG on a given graph for several label draws."""
    from skssl import LabelSpreadingCG
    from skssl.datasets import mask_labels

    accs = []
    for s in label_seeds:
        ym = mask_labels(y, per_class=10, random_state=s)
        unlabeled = ym == -1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pred = LabelSpreadingCG(backend="precomputed").fit(W, ym).transduction_
        accs.append(float(np.mean(pred[unlabeled] == y[unlabeled])))
    return accs


def scaling_worker(n, method, seed, n_label_seeds):
    """One (n, method) configuration; prints a JSON record on stdout.

    The timed fit uses label seed ``seed``; the accuracy is also averaged over
    ``n_label_seeds`` label draws on the same graph (untimed).
    """
    from skssl.datasets import mask_labels

    rec = {"n": n, "method": method, "seed": seed, "load_before": load_average()}
    X, y = make_manifold_mixture(n, random_state=seed)
    ym = mask_labels(y, per_class=10, random_state=seed)
    unlabeled = ym == -1
    rec["rss_data_mib"] = peak_rss_mib()
    label_seeds = [seed + i for i in range(n_label_seeds)]
    if method.startswith("sklearn"):
        from sklearn.semi_supervised import LabelSpreading

        params = SKLEARN_VARIANTS[method]
        accs = []
        for i, s in enumerate(label_seeds):
            ym_s = mask_labels(y, per_class=10, random_state=s)
            model = LabelSpreading(kernel="knn", **params)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(X, ym_s)
            if i == 0:
                rec["time_total"] = time.perf_counter() - start
                rec["n_iter"] = int(model.n_iter_)
                rec["rss_peak_mib"] = peak_rss_mib()
            u = ym_s == -1
            accs.append(float(np.mean(model.transduction_[u] == y[u])))
        rec["accuracy"] = accs[0]
    else:
        from skssl import LabelSpreadingCG

        backend = method.split("-", 1)[1]
        model = LabelSpreadingCG(backend=backend, random_state=seed)
        timer = PhaseTimer()
        start = time.perf_counter()
        try:
            model.fit(X, ym)
        finally:
            rec["time_total"] = time.perf_counter() - start
            timer.close()
        rec["rss_peak_mib"] = peak_rss_mib()
        s = timer.seconds
        rec["time_index"] = s.get("index_build", 0.0)
        rec["time_search"] = s.get("knn_search", 0.0)
        rec["time_affinity"] = s["graph_total"] - s["knn_total"]
        rec["time_graph"] = s["graph_total"]
        rec["time_cg"] = s["cg"]
        rec["time_normalize"] = s["diffuse_total"] - s["cg"]
        rec["time_other"] = rec["time_total"] - s["graph_total"] - s["diffuse_total"]
        rec["n_iter"] = int(model.n_iter_)
        rec["backend"] = model.backend_
        rec["edges"] = int(timer.captured["graph_total"][0].nnz)
        rec["accuracy"] = float(np.mean(model.transduction_[unlabeled] == y[unlabeled]))
        knn = timer.captured["knn_total"]
        if backend != "exact":
            rec["recall_at_7"] = knn_recall(X, knn.indices, seed=seed)
        W = timer.captured["graph_total"][0]
        del model, timer, knn
        accs = [rec["accuracy"]]
        accs += _precomputed_accuracy(W, y, label_seeds[1:])
    rec["accuracy_seeds"] = accs
    rec["accuracy_mean"] = float(np.mean(accs))
    rec["load_after"] = load_average()
    print(json.dumps(rec), flush=True)


def _cpu_ticks():
    """(busy, total) jiffies of the whole machine, or None off Linux."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def run_one(n, method, seed, timeout, n_label_seeds, extra=()):
    """Run one configuration in a fresh interpreter, bounded by ``timeout``.

    Also measures contention: the CPU time the rest of the machine used
    meanwhile (``others_cores``: average number of cores busy with other work).
    """
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        method,
        "--worker-n",
        str(n),
        "--worker-seed",
        str(seed),
        "--label-seeds",
        str(n_label_seeds),
        *extra,
    ]
    ticks0 = _cpu_ticks()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {
            "n": n,
            "method": method,
            "status": "timeout",
            "timeout_s": timeout,
            "load_after": load_average(),
        }
    wall = time.perf_counter() - start
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ticks1 = _cpu_ticks()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {
            "n": n,
            "method": method,
            "status": "error",
            "returncode": proc.returncode,
            "stderr_tail": proc.stderr[-2000:],
        }
    rec = json.loads(lines[-1])
    rec["status"] = "ok"
    rec["subprocess_wall"] = wall
    own = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
    rec["own_cpu_s"] = own
    if ticks0 and ticks1:
        hz = os.sysconf("SC_CLK_TCK")
        busy = (ticks1[0] - ticks0[0]) / hz
        rec["others_cores"] = round(max(busy - own, 0.0) / wall, 2)
    return rec


def _summarize(records):
    """Median over repeats of each (n, method); keeps every repeat's time."""
    groups = {}
    for r in records:
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


def run_scaling(args):
    sizes = [n for n in args.sizes if n <= args.max_n]
    methods = [f"skssl-{b}" for b in args.backends]
    if args.sklearn_max_n > 0:
        methods.append("sklearn")
    if args.sklearn_a99_max_n > 0:
        methods.append("sklearn-a99")
    limits = {
        "skssl-exact": args.exact_max_n,
        "sklearn": args.sklearn_max_n,
        "sklearn-a99": args.sklearn_a99_max_n,
    }
    previous = read_json(args.out / SCALING_JSON) if args.merge else None
    runs = list(previous["runs"]) if previous else []
    given_up = set()
    for n in sizes:
        todo = [m for m in methods if n <= limits.get(m, np.inf) and m not in given_up]
        # --merge appends: new runs count as further repeats of earlier ones.
        base = 1 + max((r.get("repeat", 0) for r in runs if r["n"] == n), default=-1)
        repeats = args.repeats if n <= args.repeat_max_n else 1
        for rep in range(repeats):
            # Peers run back to back, in the same order, for every repeat.
            for method in todo:
                if method in given_up:
                    continue
                log(
                    f"[scaling] n={n:>9,} {method:<12} repeat {rep + 1}/{repeats} "
                    f"(timeout {args.timeout:.0f}s)"
                )
                # scikit-learn refits (graph included) for every label draw:
                # only one draw above --repeat-max-n to bound its time.
                draws = args.label_seeds
                if method.startswith("sklearn") and n > args.repeat_max_n:
                    draws = 1
                rec = run_one(n, method, args.seed, args.timeout, draws)
                rec["repeat"] = base + rep
                rec["command"] = command_line()
                runs.append(rec)
                if rec["status"] == "ok":
                    log(
                        f"          total {rec['time_total']:8.2f}s  "
                        f"acc {rec['accuracy_mean']:.4f}  "
                        f"peak RSS {rec['rss_peak_mib']:6.0f} MiB  "
                        f"other jobs {rec.get('others_cores', '?')} cores"
                    )
                else:
                    log(f"          {rec['status']}: larger n skip {method}")
                    given_up.add(method)
    payload = {
        "machine": machine_info(),
        "command": command_line(),
        "data": "make_manifold_mixture(n, random_state=seed): 10 classes x 3 "
        "noisy 8-d linear manifolds in d=64 (separation 0.2, noise 0.8); "
        "10 labels per class via mask_labels(y, per_class=10, random_state=s)",
        "label_seeds": args.label_seeds,
        "timeout_s": args.timeout,
        "records": _summarize(runs),
        "runs": sorted(runs, key=lambda r: (r["n"], r["method"], r.get("repeat", 0))),
    }
    write_json(args.out / SCALING_JSON, payload)
    return payload


# --------------------------------------------------------------------------- #
# Backend tuning evidence and solver profile
# --------------------------------------------------------------------------- #


def _faiss_search(index, X, k, chunk):
    n = X.shape[0]
    D = np.empty((n, k), dtype=np.float32)
    Ind = np.empty((n, k), dtype=np.int64)
    start = time.perf_counter()
    for lo in range(0, n, chunk):
        D[lo : lo + chunk], Ind[lo : lo + chunk] = index.search(X[lo : lo + chunk], k)
    return D, Ind, time.perf_counter() - start


def _graph_from(D, Ind, k):
    from skssl.graph import KNNResult, _drop_self, affinity_matrix

    Ind, D = _drop_self(Ind, D, k - 1)
    knn = KNNResult(Ind, D, "euclidean", "bench")
    return affinity_matrix(knn, kernel="gaussian"), Ind


def tuning_worker(n, seed, n_label_seeds):
    """faiss settings of skssl.graph, old and new, on the scaling data."""
    import faiss

    import skssl.graph as graph

    k = 8  # n_neighbors=7 plus the self match
    X, y = make_manifold_mixture(n, random_state=seed)
    d = X.shape[1]
    label_seeds = list(range(seed, seed + n_label_seeds))
    exact_graph = n <= 300_000
    rec = {"n": n, "k": k, "load_before": load_average(), "rows": []}
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(1000, n), replace=False))
    flat = faiss.IndexFlatL2(d)
    flat.add(X)
    old_chunk = int(np.clip(2**26 // n, 256, 65_536))
    new_chunk = int(np.clip(graph._TILE_FLOATS // (16 * k), 256, 65_536))
    if exact_graph:
        times = {old_chunk: [], new_chunk: []}
        for _ in range(2):  # interleaved, two rounds
            for chunk in times:
                D, Ind, t = _faiss_search(flat, X, k, chunk)
                times[chunk].append(t)
        W, exact_ind = _graph_from(D, Ind, k)
        exact_acc = _precomputed_accuracy(W, y, label_seeds)
        for chunk, ts in times.items():
            rec["rows"].append(
                {
                    "setting": f"exact, chunk {chunk}"
                    + (" (old rule 2^26/n)" if chunk == old_chunk else " (new)"),
                    "search_s": min(ts),
                    "search_s_all": ts,
                    "recall_at_7": 1.0,
                    "accuracy_mean": float(np.mean(exact_acc)),
                }
            )
    else:
        _, truth = flat.search(X[sample], k)
        exact_ind = None
        exact_acc = None
    if exact_ind is None:
        truth_rows = [
            set(t[t != r][: k - 1].tolist()) for t, r in zip(truth, sample, strict=True)
        ]
    else:
        truth_rows = [set(exact_ind[r].tolist()) for r in sample]
    del flat

    def recall(Ind):
        hits = sum(
            len(t & set(Ind[r].tolist()))
            for t, r in zip(truth_rows, sample, strict=True)
        )
        return hits / (len(sample) * (k - 1))

    def add_row(setting, build, search, Ind_full, D_full, extra=None):
        W, Ind = _graph_from(D_full, Ind_full, k)
        row = {
            "setting": setting,
            "build_s": build,
            "search_s": search,
            "recall_at_7": recall(Ind),
        }
        if exact_graph:
            acc = _precomputed_accuracy(W, y, label_seeds)
            row["accuracy_mean"] = float(np.mean(acc))
            row["delta_vs_exact_pts"] = 100 * (
                row["accuracy_mean"] - np.mean(exact_acc)
            )
        row.update(extra or {})
        rec["rows"].append(row)
        log(f"[tuning] n={n:,} {setting}: {row}")

    start = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(d, 32)
    hnsw.hnsw.efConstruction = 40
    hnsw.add(X)
    build = time.perf_counter() - start
    for ef in (16, 24, 32, 64):
        hnsw.hnsw.efSearch = ef
        D, Ind, t = _faiss_search(hnsw, X, k, new_chunk)
        tag = {24: " (new default)", 64: " (old default)"}.get(ef, "")
        add_row(f"hnsw M=32 efC=40 efSearch={ef}{tag}", build, t, Ind, D)
    del hnsw
    nlist = int(max(1, min(4 * np.sqrt(n), n // 39)))
    start = time.perf_counter()
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
    ivf.cp.seed = seed
    ivf.train(X[np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))])
    ivf.add(X)
    build = time.perf_counter() - start
    for nprobe in (8, 16, 32):
        ivf.nprobe = nprobe
        D, Ind, t = _faiss_search(ivf, X, k, new_chunk)
        tag = " (default)" if nprobe == 16 else ""
        add_row(f"ivf nlist={nlist} nprobe={nprobe}{tag}", build, t, Ind, D)
    rec["load_after"] = load_average()
    print(json.dumps(rec), flush=True)


def _lean_cg(W, Y, alpha, tol, max_iter, dtype):
    """Plain block CG, all columns every iteration (no column bookkeeping)."""
    W = W.astype(dtype)
    Y = Y.astype(dtype)
    Z = np.zeros_like(Y)
    R = Y.copy()
    P = R.copy()
    rs = np.einsum("ij,ij->j", R, R, dtype=np.float64)
    scale = np.sqrt(rs)
    it = 0
    while it < max_iter and (np.sqrt(rs) / scale).max() > tol:
        AP = P - dtype(alpha) * (W @ P)
        denom = np.einsum("ij,ij->j", P, AP, dtype=np.float64)
        step = (rs / denom).astype(dtype)
        Z += P * step
        R -= AP * step
        rs_new = np.einsum("ij,ij->j", R, R, dtype=np.float64)
        P = R + P * (rs_new / rs).astype(dtype)
        rs = rs_new
        it += 1
    return Z, it


def cg_profile_worker(n, seed):
    """Where the conjugate-gradient time goes, and what float32 would save."""
    import scipy.sparse as sp

    from skssl.datasets import mask_labels
    from skssl.graph import build_graph, normalize_affinity
    from skssl.propagation import label_matrix
    from skssl.solvers import conjugate_gradient

    X, y = make_manifold_mixture(n, random_state=seed)
    ym = mask_labels(y, per_class=10, random_state=seed)
    W, _ = build_graph(
        X, 7, metric="euclidean", kernel="gaussian", backend="hnsw", random_state=seed
    )
    del X
    Wn, _ = normalize_affinity(W)
    Y = label_matrix(ym, 10)
    rec = {"n": n, "nnz": int(Wn.nnz), "load_before": load_average()}
    unlabeled = ym == -1

    def accuracy(Z):
        from skssl.propagation import class_mass_normalize

        pred = class_mass_normalize(Z).argmax(axis=1)
        return float(np.mean(pred[unlabeled] == y[unlabeled]))

    def timed(f, reps=5):
        f()
        ts = []
        for _ in range(reps):
            start = time.perf_counter()
            f()
            ts.append(time.perf_counter() - start)
        return float(np.median(ts))

    W32 = sp.csr_matrix(Wn, dtype=np.float32)
    Y32 = Y.astype(np.float32)
    rec["matvec_float64_s"] = timed(lambda: Wn @ Y)
    rec["matvec_float32_s"] = timed(lambda: W32 @ Y32)
    try:
        import torch

        Wt = torch.sparse_csr_tensor(
            torch.from_numpy(W32.indptr.astype(np.int64)),
            torch.from_numpy(W32.indices.astype(np.int64)),
            torch.from_numpy(W32.data),
            size=W32.shape,
        )
        Yt = torch.from_numpy(Y32)
        rec["matvec_torch_float32_s"] = timed(lambda: Wt @ Yt)
        rec["torch_threads"] = torch.get_num_threads()
    except Exception as exc:  # torch is optional for this profile
        rec["torch_error"] = repr(exc)
    start = time.perf_counter()
    res = conjugate_gradient(Wn, Y, alpha=0.99, tol=1e-6, max_iter=10_000)
    rec["skssl_cg_s"] = time.perf_counter() - start
    rec["skssl_cg_iter"] = res.n_iter
    rec["skssl_cg_accuracy"] = accuracy(res.solution)
    for name, dtype in (("lean_float64", np.float64), ("lean_float32", np.float32)):
        start = time.perf_counter()
        Z, it = _lean_cg(Wn, Y, 0.99, 1e-6, 10_000, dtype)
        rec[f"{name}_s"] = time.perf_counter() - start
        rec[f"{name}_iter"] = it
        rec[f"{name}_accuracy"] = accuracy(Z)
        Z64 = Z.astype(np.float64)
        true_res = np.linalg.norm(Y - (Z64 - 0.99 * (Wn @ Z64)), axis=0)
        rec[f"{name}_true_residual"] = float(
            (true_res / np.linalg.norm(Y, axis=0)).max()
        )
        rec[f"{name}_agreement"] = float(
            np.mean(Z.argmax(axis=1) == res.solution.argmax(axis=1))
        )
    rec["load_after"] = load_average()
    print(json.dumps(rec), flush=True)


def run_tuning(args):
    out = read_json(args.out / TUNING_JSON) or {}
    out["machine"] = machine_info()
    out["command"] = command_line()
    results = {r["n"]: r for r in out.get("results", [])}
    for n in args.tuning_n:
        log(f"[tuning] n={n:,}")
        rec = run_one(n, "tuning", args.seed, args.timeout * 2, args.label_seeds)
        results[n] = rec
    out["results"] = [results[n] for n in sorted(results)]
    write_json(args.out / TUNING_JSON, out)


def run_cg_profile(args):
    n = min(args.max_n, args.cg_profile_n)
    log(f"[cg-profile] n={n:,}")
    rec = run_one(n, "cg-profile", args.seed, args.timeout, 1)
    rec["command"] = command_line()
    out = {"machine": machine_info(), "result": rec}
    write_json(args.out / CG_JSON, out)


# --------------------------------------------------------------------------- #
# Reports: markdown tables and plot
# --------------------------------------------------------------------------- #


def _fmt_acc(rec):
    return f"{rec['mean']:.3f} ± {rec['std']:.3f}"


def accuracy_tables(acc):
    lines = []
    if "digits" in acc:
        d = acc["digits"]
        res = d["results"]
        lines += [
            "## Accuracy on digits",
            "",
            f"scikit-learn `load_digits` (1797 × 64), {len(d['seeds'])} seeds "
            f"({d['seeds'][0]}..{d['seeds'][-1]}), mean ± std accuracy on the "
            "unlabeled rows. Command: `" + d["command"] + "`.",
            "",
            "| method | 1 label/class | 3 labels/class | 10 labels/class "
            "| mean time (s) |",
            "|---|---|---|---|---|",
        ]
        for name in res["1"]:
            best = [max(res[p][m]["mean"] for m in res[p]) for p in ("1", "3", "10")]
            cells = []
            for p, top in zip(("1", "3", "10"), best, strict=True):
                cell = _fmt_acc(res[p][name])
                cells.append(f"**{cell}**" if res[p][name]["mean"] == top else cell)
            secs = np.mean([res[p][name]["mean_seconds"] for p in ("1", "3", "10")])
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {secs:.3f} |")
        lines.append("")
    if "robustness" in acc:
        r = acc["robustness"]
        res = r["results"]
        sets = list(res)
        names = [k for k in res[sets[0]]["1"]]
        header = "| method | " + " | ".join(
            f"{s} ({p})" for s in sets for p in ("1", "10")
        )
        lines += [
            "## Robustness: other data, 1 and 10 labels per class",
            "",
            f"{len(r['seeds'])} seeds, mean ± std accuracy on the unlabeled rows; "
            "wine and breast_cancer standardized, two moons n=1000 noise 0.1, two "
            "circles n=1000 noise 0.05 factor 0.5, MNIST-1D "
            f"`load_mnist1d({res.get('MNIST-1D', {}).get('n_samples', 4000)})`. "
            "Column header: data (labels per class). Command: `" + r["command"] + "`.",
            "",
            header + " |",
            "|---" * (1 + 2 * len(sets)) + "|",
        ]
        for name in names:
            cells = []
            for s in sets:
                for p in ("1", "10"):
                    top = max(res[s][p][m]["mean"] for m in res[s][p])
                    cell = _fmt_acc(res[s][p][name])
                    cells.append(
                        f"**{cell}**" if res[s][p][name]["mean"] == top else cell
                    )
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if "sensitivity" in acc:
        r = acc["sensitivity"]
        res = r["results"]
        cols = list(res)
        lines += [
            "## LabelSpreadingCG parameter sensitivity",
            "",
            "One parameter moved off the defaults (n_neighbors=7, alpha=0.99, "
            "euclidean, gaussian kernel with local scaling, sum symmetrization, "
            f"class mass normalization); {len(r['seeds'])} seeds, mean ± std "
            "accuracy on the unlabeled rows. Column header: data (labels per "
            "class). Command: `" + r["command"] + "`.",
            "",
            "| setting | " + " | ".join(cols) + " |",
            "|---" * (1 + len(cols)) + "|",
        ]
        for name in res[cols[0]]:
            cells = []
            for c in cols:
                top = max(res[c][m]["mean"] for m in res[c])
                cell = _fmt_acc(res[c][name])
                cells.append(f"**{cell}**" if res[c][name]["mean"] == top else cell)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _commands(runs):
    return list(dict.fromkeys(r["command"] for r in runs if "command" in r))


def _ok(records):
    return [r for r in records if r.get("status") == "ok"]


METHOD_LABELS = {
    "skssl-exact": "LabelSpreadingCG exact",
    "skssl-hnsw": "LabelSpreadingCG hnsw",
    "skssl-ivf": "LabelSpreadingCG ivf",
    "sklearn": "sklearn LabelSpreading(knn)",
    "sklearn-a99": "sklearn LabelSpreading(knn, alpha=0.99, max_iter=1000)",
}


def scaling_tables(sc):
    recs = sc["records"]
    lines = [
        "## Scaling (synthetic, d = 64, 10 classes, 10 labels per class)",
        "",
        "Data: " + sc["data"] + ". Each (n, method) runs in a fresh subprocess "
        "(peak RSS = `ru_maxrss` of that process, the data and imported libraries "
        "included; `data` = RSS before fitting). Times in seconds: `total` = "
        "`fit` wall time of the median run (the lower middle one for an even "
        "count; min and count in brackets, every run in the json), the other "
        "columns from that run; "
        "`index` = faiss index build (IVF training included), `search` = kNN "
        "search, `affinity` = Gaussian kernel and sparse W, `cg` = conjugate "
        "gradient (iterations). Accuracy on the unlabeled rows, mean over "
        f"{sc.get('label_seeds', 1)} label draws on the same graph. `others` = "
        "average number of cores that other jobs kept busy during the run (the "
        "machine was shared). Commands (json: per run): "
        + ", ".join(f"`{c}`" for c in _commands(sc.get("runs", recs)))
        + ".",
        "",
        "| n | method | total | index | search | affinity | cg (iters) "
        "| RSS data / peak MiB | accuracy | recall@7 | others |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in recs:
        label = METHOD_LABELS.get(r["method"], r["method"])
        if r.get("status") != "ok":
            lines.append(
                f"| {r['n']:,} | {label} | {r['status']} "
                f"(> {r.get('timeout_s', '?')} s) | | | | | | | | |"
            )
            continue
        if r["method"].startswith("sklearn"):
            phase = f"| – | – | – | – ({r['n_iter']}) "
        else:
            phase = (
                f"| {r['time_index']:.2f} | {r['time_search']:.2f} "
                f"| {r['time_affinity']:.2f} | {r['time_cg']:.2f} ({r['n_iter']}) "
            )
        recall = f"{r['recall_at_7']:.3f}" if "recall_at_7" in r else "–"
        total = f"{r['time_total']:.2f}"
        if r.get("repeats", 1) > 1:
            total += f" (min {r['time_total_min']:.2f}, ×{r['repeats']})"
        lines.append(
            f"| {r['n']:,} | {label} | {total} {phase}"
            f"| {r['rss_data_mib']:.0f} / {r['rss_peak_mib']:.0f} "
            f"| {r['accuracy_mean']:.4f} | {recall} | {r.get('others_cores', '?')} |"
        )
    lines.append("")
    by = {(r["n"], r["method"]): r for r in _ok(recs)}
    sizes = sorted({r["n"] for r in recs})
    runs = _ok(sc.get("runs", recs))
    lines += [
        "### Ratios",
        "",
        "Speed-up = scikit-learn fit time / LabelSpreadingCG fit time at the same "
        "n: the median over repeats of the ratio within one repeat (the two ran "
        "back to back, under similar load), then in brackets the ratio of the "
        "fastest runs (the least disturbed by other jobs). Δacc = accuracy minus "
        "accuracy with the exact graph, in points (same label draws).",
        "",
        "| n | exact ÷ sklearn | hnsw ÷ sklearn | ivf ÷ sklearn "
        "| exact ÷ sklearn α=0.99 | hnsw ÷ sklearn α=0.99 | ivf ÷ sklearn α=0.99 "
        "| hnsw Δacc vs exact | ivf Δacc vs exact |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def speedup(n, peer, method):
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

    for n in sizes:
        ex = by.get((n, "skssl-exact"))
        cells = []
        for peer in ("sklearn", "sklearn-a99"):
            for b in SKSSL_BACKENDS:
                cells.append(speedup(n, peer, f"skssl-{b}"))
        for b in ("hnsw", "ivf"):
            r = by.get((n, f"skssl-{b}"))
            cells.append(
                f"{100 * (r['accuracy_mean'] - ex['accuracy_mean']):+.2f}"
                if ex and r
                else "–"
            )
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    lines.append("")
    return lines


def tuning_tables(tu):
    lines = [
        "## Backend tuning evidence (skssl.graph settings)",
        "",
        "Same data as the scaling section, k = 8 (n_neighbors=7 plus the self "
        "match), faiss driven directly with the settings `skssl.graph` uses, one "
        "process per n. `recall@7` against exact search (all rows up to n = "
        "300,000, a 1,000-row sample above); accuracy = LabelSpreadingCG on that "
        "graph, mean over the label draws; Δ vs exact in points. Command: `"
        + tu["command"]
        + "`.",
        "",
        "| n | setting | build s | search s | recall@7 | accuracy | Δ vs exact "
        "| others |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res in tu["results"]:
        if res.get("status") != "ok":
            lines.append(f"| {res['n']:,} | {res.get('status')} | | | | | | |")
            continue
        for row in res["rows"]:
            acc = row.get("accuracy_mean")
            delta = row.get("delta_vs_exact_pts")
            lines.append(
                f"| {res['n']:,} | {row['setting']} "
                f"| {row.get('build_s', 0.0):.2f} | {row['search_s']:.2f} "
                f"| {row['recall_at_7']:.3f} "
                f"| {'–' if acc is None else f'{acc:.4f}'} "
                f"| {'–' if delta is None else f'{delta:+.2f}'} "
                f"| {res.get('others_cores', '?')} |"
            )
    lines.append("")
    return lines


def cg_tables(cg):
    r = cg["result"]
    if r.get("status") != "ok":
        return ["## Conjugate-gradient profile", "", f"{r.get('status')}", ""]
    lines = [
        "## Conjugate-gradient profile",
        "",
        f"n = {r['n']:,} (HNSW graph, {r['nnz']:,} non-zeros, 10 classes), "
        "alpha 0.99, tol 1e-6. One sparse product W @ Y (n × 10), median of 5: "
        f"scipy float64 {r['matvec_float64_s']:.3f} s, scipy float32 "
        f"{r['matvec_float32_s']:.3f} s"
        + (
            f", torch CSR float32 ({r['torch_threads']} threads) "
            f"{r['matvec_torch_float32_s']:.3f} s"
            if "matvec_torch_float32_s" in r
            else ""
        )
        + ". Whole solves: `skssl.solvers.conjugate_gradient` against a plain "
        "block CG that updates every column each iteration (no per-column "
        "bookkeeping), in float64 and float32. `agreement` = share of rows whose "
        "arg-max matches skssl's solve. Command: `" + r["command"] + "`.",
        "",
        "| solver | seconds | iterations | s / iteration | true rel. residual "
        "| accuracy | agreement |",
        "|---|---|---|---|---|---|---|",
        f"| skssl conjugate_gradient (float64) | {r['skssl_cg_s']:.2f} "
        f"| {r['skssl_cg_iter']} | {r['skssl_cg_s'] / r['skssl_cg_iter']:.3f} "
        f"| ≤ 1e-6 | {r['skssl_cg_accuracy']:.4f} | 1 |",
    ]
    for name in ("lean_float64", "lean_float32"):
        lines.append(
            f"| plain block CG ({name.split('_')[1]}) | {r[name + '_s']:.2f} "
            f"| {r[name + '_iter']} "
            f"| {r[name + '_s'] / max(r[name + '_iter'], 1):.3f} "
            f"| {r[name + '_true_residual']:.1e} | {r[name + '_accuracy']:.4f} "
            f"| {r[name + '_agreement']:.4f} |"
        )
    lines.append("")
    return lines


def write_markdown(args):
    acc = read_json(args.out / ACCURACY_JSON)
    sc = read_json(args.out / SCALING_JSON)
    tu = read_json(args.out / TUNING_JSON)
    cg = read_json(args.out / CG_JSON)
    machine = (sc or acc or {}).get("machine", machine_info())
    lines = [
        "# LabelSpreadingCG benchmarks",
        "",
        "Generated by `benchmarks/bench_propagation.py` (see `benchmarks/README.md`)."
        f" Machine: {machine['platform']}, {machine['cpu_count']} CPUs "
        f"(`os.cpu_count()`), {machine.get('memory_gib', '?')} GiB, Python "
        f"{machine['python']}, numpy {machine['numpy']}, scipy {machine['scipy']}, "
        f"scikit-learn {machine['scikit-learn']}, faiss {machine['faiss']} "
        f"({machine['faiss_omp_threads']} threads), graphlearning "
        f"{machine.get('graphlearning')}. The machine was shared with other jobs "
        "while these ran: timings are noisy, so compare ratios rather than "
        "absolute times.",
        "",
    ]
    if acc:
        lines += accuracy_tables(acc)
    if sc:
        lines += scaling_tables(sc)
    if tu:
        lines += tuning_tables(tu)
    if cg:
        lines += cg_tables(cg)
    path = args.out / TABLES_MD
    path.write_text("\n".join(lines))
    log(f"wrote {path}")


def write_plot(args):
    sc = read_json(args.out / SCALING_JSON)
    if not sc:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = _ok(sc["records"])
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {
        "skssl-exact": "o",
        "skssl-hnsw": "s",
        "skssl-ivf": "^",
        "sklearn": "x",
        "sklearn-a99": "+",
    }
    for i, (method, marker) in enumerate(styles.items()):
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
    path = args.out / SCALING_PNG
    fig.savefig(path, dpi=120)
    plt.close(fig)
    log(f"wrote {path}")


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


def _int_list(text):
    return [int(float(x)) for x in text.split(",") if x]


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    sec = p.add_argument_group(
        "sections (default: accuracy, robustness, sensitivity, scaling)"
    )
    sec.add_argument("--accuracy", action="store_true", help="digits accuracy")
    sec.add_argument("--robustness", action="store_true", help="other data sets")
    sec.add_argument(
        "--sensitivity",
        action="store_true",
        help="LabelSpreadingCG accuracy when one parameter leaves its default",
    )
    sec.add_argument("--scaling", action="store_true", help="n = 1e4 ... 1e6")
    sec.add_argument(
        "--tuning", action="store_true", help="faiss settings of skssl.graph"
    )
    sec.add_argument(
        "--cg-profile", action="store_true", help="solver time, float32 idea"
    )
    sec.add_argument(
        "--report",
        action="store_true",
        help="only rewrite propagation.md and the plot from the json files",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 3 seeds, small MNIST-1D, n <= 30,000, 1 label draw",
    )
    p.add_argument("--seeds", type=int, default=10, help="label draws (accuracy)")
    p.add_argument(
        "--sizes", type=_int_list, default=list(SCALING_SIZES), help="n values"
    )
    p.add_argument("--max-n", type=lambda s: int(float(s)), default=1_000_000)
    p.add_argument(
        "--backends",
        type=lambda s: [b for b in s.split(",") if b],
        default=list(SKSSL_BACKENDS),
        help="LabelSpreadingCG backends, comma-separated ('' for none)",
    )
    p.add_argument(
        "--sklearn-a99-max-n",
        type=lambda s: int(float(s)),
        default=100_000,
        help="largest n for LabelSpreading(knn, alpha=0.99, max_iter=1000), 0 to "
        "skip (default 1e5)",
    )
    p.add_argument(
        "--exact-max-n",
        type=lambda s: int(float(s)),
        default=300_000,
        help="largest n for the exact backend (default 3e5)",
    )
    p.add_argument(
        "--sklearn-max-n",
        type=lambda s: int(float(s)),
        default=300_000,
        help="largest n for scikit-learn LabelSpreading, 0 to skip (default 3e5)",
    )
    p.add_argument(
        "--timeout", type=float, default=1200.0, help="seconds per scaling run"
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="repeats per (n, method) up to"
    )
    p.add_argument(
        "--repeat-max-n",
        type=lambda s: int(float(s)),
        default=100_000,
        help="n up to which --repeats applies (larger n run once)",
    )
    p.add_argument(
        "--label-seeds",
        type=int,
        default=3,
        help="label draws averaged per scaling graph (the first one is timed)",
    )
    p.add_argument("--seed", type=int, default=0, help="scaling data/label seed")
    p.add_argument(
        "--tuning-n", type=_int_list, default=[100_000, 1_000_000], help="n values"
    )
    p.add_argument("--cg-profile-n", type=lambda s: int(float(s)), default=1_000_000)
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the earlier scaling runs and add these as further repeats",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--worker-seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    chosen = (
        args.accuracy,
        args.robustness,
        args.sensitivity,
        args.scaling,
        args.tuning,
        args.cg_profile,
        args.report,
    )
    if not any(chosen):
        args.accuracy = args.robustness = args.sensitivity = args.scaling = True
    if args.quick:
        args.max_n = min(args.max_n, 30_000)
        args.timeout = min(args.timeout, 300.0)
        args.repeats = 1
        args.label_seeds = 1
        args.tuning_n = [n for n in args.tuning_n if n <= 30_000] or [10_000]
        args.cg_profile_n = min(args.cg_profile_n, 30_000)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker == "tuning":
        tuning_worker(args.worker_n, args.worker_seed, args.label_seeds)
        return
    if args.worker == "cg-profile":
        cg_profile_worker(args.worker_n, args.worker_seed)
        return
    if args.worker:
        scaling_worker(args.worker_n, args.worker, args.worker_seed, args.label_seeds)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.accuracy or args.robustness or args.sensitivity:
        run_accuracy(args)
    if args.scaling:
        run_scaling(args)
    if args.tuning:
        run_tuning(args)
    if args.cg_profile:
        run_cg_profile(args)
    write_markdown(args)
    write_plot(args)


if __name__ == "__main__":
    main()
