"""What the benchmark scripts share: machine, load, memory, data, json, tables.

Every ``bench_*.py`` script records where its figures come from
(:func:`machine_info`, :func:`load_average`, :func:`others_cores`), keeps its raw
results as json (:func:`read_json`, :func:`write_json`) and renders them as
markdown tables (:func:`markdown_table`). Runs whose memory or time must not
leak into the next one go through :func:`run_worker`, one fresh interpreter
each. The data loaders here serve more than one script.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
from tabulate import tabulate

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

ROBUSTNESS_SETS = ("wine", "breast_cancer", "two moons", "two circles", "MNIST-1D")


# --------------------------------------------------------------------------- #
# Machine, load and memory
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
    """The 1, 5 and 15 minute load averages, or None where there are none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def peak_rss_mib():
    """Peak resident set size of this process (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def cpu_ticks():
    """(busy, total) jiffies of the whole machine from ``/proc/stat``, or None."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def others_cores(ticks_before, ticks_after, own_cpu_s, wall_s):
    """Average number of cores other processes kept busy over ``wall_s``.

    The machine's busy time minus this run's own CPU time: on a shared machine
    it tells which timings were taken under contention.
    """
    if not (ticks_before and ticks_after and wall_s > 0):
        return None
    busy = (ticks_after[0] - ticks_before[0]) / os.sysconf("SC_CLK_TCK")
    return round(max(busy - own_cpu_s, 0.0) / wall_s, 2)


# --------------------------------------------------------------------------- #
# Bookkeeping: command, log, json, timing
# --------------------------------------------------------------------------- #


def command_line():
    """The command that is running, as the results should quote it."""
    script = Path(sys.argv[0]).name
    return " ".join(["python", f"benchmarks/{script}", *sys.argv[1:]])


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def read_json(path):
    """The json at ``path``, or None when there is none yet."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def write_json(path, payload):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # default=float: numpy scalars (e.g. float32 timings) are written as floats.
    path.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    log(f"wrote {path}")


def timed(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), wall seconds)``."""
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def median_seconds(fn, repeats=5):
    """Median wall time of ``fn()`` over ``repeats`` calls after one warm-up."""
    fn()
    return float(np.median([timed(fn)[1] for _ in range(repeats)]))


def quiet(fn, *args, **kwargs):
    """Call ``fn`` with warnings silenced (convergence notes of the peers)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def run_worker(script, worker_args, timeout):
    """Run ``script --worker ...`` in a fresh interpreter, bounded by ``timeout``.

    The worker prints one json record as its last ``{`` line. A fresh process
    per configuration makes peak RSS that configuration's own and keeps a slow
    run from hanging the benchmark. The record gets ``status`` ("ok",
    "timeout" or "error"), the subprocess wall time, its CPU time and
    ``others_cores``.
    """
    cmd = [sys.executable, str(Path(script).resolve()), "--worker", *worker_args]
    ticks0 = cpu_ticks()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "timeout_s": timeout, "load_after": load_average()}
    wall = time.perf_counter() - start
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ticks1 = cpu_ticks()
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {
            "status": "error",
            "returncode": proc.returncode,
            "stderr_tail": proc.stderr[-2000:],
        }
    rec = json.loads(lines[-1])
    own = (child1.ru_utime - child0.ru_utime) + (child1.ru_stime - child0.ru_stime)
    rec.update(status="ok", subprocess_wall=wall, own_cpu_s=own)
    contention = others_cores(ticks0, ticks1, own, wall)
    if contention is not None:
        rec["others_cores"] = contention
    return rec


def emit(record):
    """A worker's result: one json line on stdout, read by :func:`run_worker`."""
    print(json.dumps(record), flush=True)


def int_list(text):
    """``"1e4,3e4"`` -> ``[10000, 30000]`` (command-line sizes)."""
    return [int(float(x)) for x in text.split(",") if x]


def int_float(text):
    """``"1e6"`` -> ``1000000``."""
    return int(float(text))


# --------------------------------------------------------------------------- #
# Markdown
# --------------------------------------------------------------------------- #


def markdown_table(rows, headers):
    """A GitHub markdown table, as lines; cells are shown exactly as given.

    Number parsing is off so that the formatting chosen by each report (3
    decimals, thousands separators, ``±``) is what the reader sees.
    """
    text = tabulate(
        [[str(c) for c in row] for row in rows],
        headers=headers,
        tablefmt="github",
        disable_numparse=True,
    )
    return text.splitlines()


def mean_std(values, digits=3):
    """``"0.950 ± 0.012"`` of a list of accuracies."""
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def paired_accuracies(runs, per_class, methods):
    """``({method: accuracies}, n_seeds)`` of the runs at ``per_class`` labels
    per class, over the seeds every method has, in seed order (so that the
    arrays pair up seed by seed)."""
    acc = {
        m: [
            r["accuracy"]
            for r in sorted(runs, key=lambda r: r["seed"])
            if r["per_class"] == per_class and r["method"] == m
        ]
        for m in methods
    }
    n_seeds = min(len(v) for v in acc.values())
    return {m: np.array(v[:n_seeds]) for m, v in acc.items()}, n_seeds


def paired_gain(a, b):
    """``"+1.2 ± 0.4"``: mean and std of ``a - b`` in accuracy points."""
    points = 100 * (np.asarray(a) - np.asarray(b))
    return f"{points.mean():+.1f} ± {points.std():.1f}"


def mean_fit_times(runs, methods, labels, lead="Mean fit time"):
    """A sentence with each method's mean ``seconds`` over ``runs``."""
    seconds = {
        m: np.mean([r["seconds"] for r in runs if r["method"] == m]) for m in methods
    }
    return (
        f"{lead}: "
        + ", ".join(f"{labels[m]} {seconds[m]:.0f} s" for m in methods)
        + "."
    )


# --------------------------------------------------------------------------- #
# Data shared by several scripts
# --------------------------------------------------------------------------- #


def load_dataset(name, quick=False):
    """``"digits"`` or one of :data:`ROBUSTNESS_SETS` as ``(X, y)``.

    wine and breast_cancer are standardized; ``quick`` shrinks MNIST-1D from
    4,000 to 1,000 rows.
    """
    from sklearn.datasets import (
        load_breast_cancer,
        load_digits,
        load_wine,
        make_circles,
        make_moons,
    )
    from sklearn.preprocessing import StandardScaler

    if name == "digits":
        return load_digits(return_X_y=True)
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
    raise ValueError(f"unknown data set {name!r}; choose from {ROBUSTNESS_SETS}")


MANIFOLD_DATA = (
    "make_manifold_mixture(n, random_state=seed): 10 classes x 3 noisy 8-d "
    "linear manifolds in d=64 (separation 0.2, noise 0.8); 10 labels per class "
    "via mask_labels(y, per_class=10, random_state=s)"
)


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


# --------------------------------------------------------------------------- #
# Graph quality, shared by the scaling and graph-settings benchmarks
# --------------------------------------------------------------------------- #


def precomputed_accuracy(W, y, label_seeds, per_class=10):
    """Accuracy of LabelSpreadingCG on the graph ``W`` for several label draws."""
    from skssl import LabelSpreadingCG
    from skssl.datasets import mask_labels

    accs = []
    for s in label_seeds:
        ym = mask_labels(y, per_class=per_class, random_state=s)
        unlabeled = ym == -1
        model = quiet(LabelSpreadingCG(backend="precomputed").fit, W, ym)
        accs.append(float(np.mean(model.transduction_[unlabeled] == y[unlabeled])))
    return accs


def sample_rows(n, n_queries=1000, seed=0):
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n_queries, n), replace=False))


def neighbour_sets(indices, rows, k):
    """The first ``k`` neighbours of each row, the row itself left out."""
    return [
        set(ind[ind != r][:k].tolist()) for ind, r in zip(indices, rows, strict=True)
    ]


def exact_neighbours(X, rows, k, metric="euclidean"):
    """True ``k`` nearest neighbours of ``X[rows]`` among the rows of ``X``."""
    from skssl.graph import NeighborIndex

    index = NeighborIndex(X, metric=metric, backend="exact")
    _, indices = index.search(X[rows], k + 1)
    return neighbour_sets(indices, rows, k)


def knn_recall(graph, X, rows, truth):
    """Recall@k of a fitted :class:`skssl.graph.KNNGraph` on a row sample.

    The graph keeps its index but not its neighbour lists, so the sampled rows
    are searched again through ``graph.index_`` with the settings of the fit
    (k + 1 results, the row itself dropped, as the fit does); a faiss search
    answers a query the same way whichever batch it comes in.
    """
    k = graph.n_neighbors
    _, indices = graph.index_.search(X[rows], k + 1)
    found = neighbour_sets(indices, rows, k)
    hits = sum(len(t & f) for t, f in zip(truth, found, strict=True))
    return hits / (len(rows) * k)
