"""k-nearest-neighbour graphs: search backends, affinity kernels, one fitted graph.

:class:`KNNGraph` owns everything that defines a neighbourhood (index, metric,
kernel, local scales, search settings). ``fit(X)`` builds the symmetric sparse
affinity ``affinity_`` of the rows of ``X`` and ``query(Q)`` attaches new rows
to them with the very same kernel, so fit and predict can never disagree. Every
graph-based estimator of skssl (label spreading, deep label propagation, and
the ranking and local propagation estimators) builds its graph through it.

The pieces it composes are pure functions, usable on their own:
:func:`knn_search` (faiss exact / HNSW / IVF / GPU, scikit-learn for sparse
input), :func:`local_scales`, :func:`kernel_weights`, :func:`affinity_matrix`,
:func:`precomputed_affinity` and :func:`normalize_affinity`.
"""

from __future__ import annotations

import numbers
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

__all__ = [
    "KNNGraph",
    "KNNResult",
    "NeighborIndex",
    "affinity_matrix",
    "kernel_weights",
    "knn_search",
    "local_scales",
    "normalize_affinity",
    "precomputed_affinity",
    "resolve_backend",
    "resolve_index_params",
    "ivf_nlist",
    "ivf_nprobe",
]

BACKENDS = ("auto", "exact", "hnsw", "ivf", "gpu", "sklearn")
METRICS = ("cosine", "euclidean", "ip")
KERNELS = ("power", "gaussian", "binary")
SYMMETRIZE = ("sum", "max", "mutual")
# The KNNGraph parameters an estimator that owns a graph exposes under the same
# names; they are validated by KNNGraph's own constraints.
GRAPH_PARAMS = (
    "n_neighbors",
    "metric",
    "kernel",
    "gamma",
    "symmetrize",
    "backend",
    "index_params",
    "n_jobs",
)

# From this many rows "auto" searches approximately (IVF): at n = 10^5, d = 64
# exact search took 9 to 12 s on two cores against 2 to 3 s for IVF, whose
# graph gave LabelSpreadingCG no lower accuracy; below it exact search is fast
# and error free. HNSW is never the automatic choice: at 10^6 rows its build
# alone (54 s) took longer than a whole IVF graph (benchmarks/results/
# propagation.md).
_APPROX_MIN_ROWS = 100_000
# faiss GPU k-selection is limited to this many neighbours.
_GPU_MAX_K = 2048
# Queries per chunk are chosen so that the (chunk, k) result buffers stay near
# this many values. faiss tiles exact search internally (4096 x 1024 blocks), so
# no (chunk, n) tile is materialised, and it only takes its BLAS path when
# chunk * d >= 128,000: small chunks made exact search 3.7x slower at d = 64
# (benchmarks/bench_graph.py).
_TILE_FLOATS = 2**26
# HNSW search breadth: efSearch = max(2 k, this). At k = 8 (n_neighbors=7 plus
# the self match), 24 instead of 64 cut search time 2.7x at n = 1e6 for recall
# 0.94 instead of 0.97, with no loss of LabelSpreadingCG accuracy (ibid.).
_HNSW_MIN_EF_SEARCH = 24
# IVF: about 2 sqrt(n) lists, whose coarse quantizer k-means trains for 10
# iterations on 39 rows per list (faiss warns below 39); each query probes as
# many lists as hold about 600 rows, at least 4. At n = 10^5 x 64 (632 lists,
# 4 probes instead of the 13 that 2,000 rows took) the search took 0.7 to
# 0.9 s instead of 2.4 to 2.9 s, and LabelSpreadingCG's accuracy stayed at or
# above the exact graph's on four sets (manifold mixture 0.928 against 0.933
# with 13 probes and 0.921 exact; a harder mixture 0.787 / 0.763 / 0.691;
# 20 overlapping blobs 0.999 for all; MNIST-1D rows 0.472 / 0.471 / 0.469).
# Training on 20 rows per list instead of 39 saved 0.1 to 0.2 s but cost up
# to 7 points on the harder mixture: the lists' quality shapes the graph. At
# n = 10^6, 2,000 lists trained this way built and searched the graph in
# about 30 s against 54 s for 4,000 lists trained 25 iterations on 64 rows per
# list (both probing about 2,000 rows), with accuracy within 0.2 points. There
# the floor of 4 probes matters: 2 (the budget alone) cut accuracy from 0.962
# to 0.945, 1.9 points below an HNSW graph (one bench_scaling.py run with the
# 600-row budget and no floor, replaced in the results by the run with it).
_IVF_TRAIN_PER_LIST = 39
_IVF_KMEANS_ITER = 10
_IVF_CANDIDATES = 600
_IVF_MIN_NPROBE = 4
# Rows encoded per add call: bounds the temporary codes at 10^6 rows.
_ADD_CHUNK = 65_536

# Search settings of the approximate backends, by faiss's own names, with the
# measured defaults above (None: chosen from n and k, see resolve_index_params).
INDEX_PARAMS = {
    "hnsw": {"M": 32, "efConstruction": 40, "efSearch": None},
    "ivf": {"nlist": None, "nprobe": None},
}


@dataclass
class KNNResult:
    """Neighbours of every row, the row itself excluded.

    Attributes
    ----------
    indices : ndarray of shape (n_samples, n_neighbors), int64
        Neighbour indices; ``-1`` where fewer neighbours were found.
    scores : ndarray of shape (n_samples, n_neighbors), float32
        Inner products (``metric="cosine"`` or ``"ip"``) or squared Euclidean
        distances (``metric="euclidean"``) to each neighbour.
    metric : str
        The metric the scores refer to.
    backend : str
        The search backend that was used.
    index : NeighborIndex or None
        The index searched, reusable to attach new points to the same rows.
    timings : dict
        Seconds spent building the index (``"index"``) and searching it
        (``"search"``).
    """

    indices: np.ndarray
    scores: np.ndarray
    metric: str
    backend: str
    index: NeighborIndex | None = None
    timings: dict = field(default_factory=dict)


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise ImportError(
            "skssl needs faiss for kNN search: `pip install faiss-cpu`, or the "
            "faiss-gpu conda package for GPU search (see the install guide)."
        ) from exc
    return faiss


def _gpu_available():
    try:
        faiss = _import_faiss()
    except ImportError:  # pragma: no cover
        return False
    get_num_gpus = getattr(faiss, "get_num_gpus", None)
    return bool(get_num_gpus is not None and get_num_gpus() > 0)


def resolve_backend(
    backend, n_samples, n_neighbors, *, sparse_input=False, approx_min_rows=None
):
    """Choose the kNN backend for ``backend="auto"`` and check explicit choices.

    Parameters
    ----------
    backend : {"auto", "exact", "hnsw", "ivf", "gpu", "sklearn"}
        Requested backend.
    n_samples : int
        Number of rows to index.
    n_neighbors : int
        Neighbours per row.
    sparse_input : bool, default=False
        Whether the data is a scipy sparse matrix (only ``"sklearn"`` takes it).
    approx_min_rows : int, default=None
        From this many rows ``"auto"`` searches approximately (IVF) on the CPU;
        None is the measured default for one graph, 100,000. A caller that
        rebuilds its graph often (deep label propagation, every epoch) passes
        a lower one.

    Returns
    -------
    backend : str
        The concrete backend.

    Examples
    --------
    >>> from skssl.graph import resolve_backend
    >>> resolve_backend("auto", 1000, 7), resolve_backend("auto", 10**6, 7)
    ('exact', 'ivf')
    >>> resolve_backend("auto", 50_000, 10, approx_min_rows=20_000)
    'ivf'
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"backend={backend!r} is not supported; choose one of {BACKENDS}."
        )
    if approx_min_rows is None:
        approx_min_rows = _APPROX_MIN_ROWS
    elif not (isinstance(approx_min_rows, numbers.Integral) and approx_min_rows >= 1):
        raise ValueError(
            f"approx_min_rows={approx_min_rows!r} must be a positive int (rows from "
            "which 'auto' searches approximately) or None for the default."
        )
    if sparse_input:
        if backend not in ("auto", "sklearn"):
            raise ValueError(
                f"backend={backend!r} needs dense X but X is sparse; use "
                "backend='sklearn' or 'auto', or densify X with X.toarray()."
            )
        return "sklearn"
    if backend == "gpu" and not _gpu_available():
        fallback = resolve_backend(
            "auto", n_samples, n_neighbors, approx_min_rows=approx_min_rows
        )
        warnings.warn(
            "backend='gpu' needs a faiss build with GPU support and a visible "
            f"CUDA device; neither was found, so the search runs on the CPU "
            f"(backend={fallback!r}). Install faiss-gpu from the faiss project's "
            "conda channel (see the install guide) or pass backend='auto'.",
            UserWarning,
            stacklevel=2,
        )
        return fallback
    if backend != "auto":
        return backend
    if _gpu_available() and n_neighbors + 1 <= _GPU_MAX_K:
        return "gpu"
    if n_samples < approx_min_rows:
        return "exact"
    return "ivf"


def resolve_index_params(index_params, backend, n_samples, n_neighbors):
    """The search settings a backend will use: the user's over the defaults.

    Parameters
    ----------
    index_params : dict or None
        Any of ``M``, ``efConstruction``, ``efSearch`` (HNSW) and ``nlist``,
        ``nprobe`` (IVF), positive ints. Settings of the other backend are
        accepted and ignored, so one dict serves ``backend="auto"``.
    backend : str
        A concrete backend.
    n_samples : int
        Rows to index (sets the default ``nlist``).
    n_neighbors : int
        Neighbours per row (sets the default ``efSearch``, ``max(2 k, 24)`` for
        the ``k = n_neighbors + 1`` results of a search that includes the row
        itself).

    Returns
    -------
    params : dict
        The settings of ``backend``, every one a number (empty for exact
        search).

    Examples
    --------
    >>> from skssl.graph import resolve_index_params
    >>> resolve_index_params({"nprobe": 32}, "ivf", 10_000, 7)
    {'nlist': 200, 'nprobe': 32}
    >>> resolve_index_params(None, "hnsw", 10_000, 7)
    {'M': 32, 'efConstruction': 40, 'efSearch': 24}
    """
    given = dict(index_params or {})
    known = {key for params in INDEX_PARAMS.values() for key in params}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(
            f"index_params has unknown key(s) {unknown}; the settable keys are "
            f"{sorted(known)} (faiss's names)."
        )
    for key, value in given.items():
        if not (isinstance(value, numbers.Integral) and value >= 1):
            raise ValueError(f"index_params[{key!r}]={value!r} must be a positive int.")
    params = {**INDEX_PARAMS.get(backend, {})}
    params.update({k: v for k, v in given.items() if k in params})
    if backend == "hnsw" and params["efSearch"] is None:
        params["efSearch"] = max(2 * (n_neighbors + 1), _HNSW_MIN_EF_SEARCH)
    if backend == "ivf":
        if params["nlist"] is None:
            # About 2 sqrt(n) lists, each with enough rows to train on.
            params["nlist"] = ivf_nlist(n_samples)
        if params["nprobe"] is None:
            params["nprobe"] = ivf_nprobe(n_samples, params["nlist"])
        params["nprobe"] = min(params["nprobe"], params["nlist"])
    return params


def ivf_nprobe(n_samples, nlist, rows_per_query=_IVF_CANDIDATES):
    """IVF lists to probe per query: as many as hold about ``rows_per_query``
    of the ``n_samples`` rows in ``nlist`` lists, at least 4.

    Examples
    --------
    >>> from skssl.graph import ivf_nprobe
    >>> ivf_nprobe(100_000, 632), ivf_nprobe(100_000, 632, rows_per_query=2000)
    (4, 13)
    """
    per_list = n_samples / nlist
    return max(_IVF_MIN_NPROBE, int(np.ceil(rows_per_query / per_list)))


def ivf_nlist(n_samples, per_sqrt_n=2):
    """IVF lists for ``n_samples`` rows: about ``per_sqrt_n * sqrt(n)``, each
    with the rows faiss asks for to train it (39), at least one.

    Examples
    --------
    >>> from skssl.graph import ivf_nlist
    >>> ivf_nlist(10_000), ivf_nlist(50_000, per_sqrt_n=1), ivf_nlist(600)
    (200, 223, 15)
    """
    return int(
        max(1, min(per_sqrt_n * np.sqrt(n_samples), n_samples // _IVF_TRAIN_PER_LIST))
    )


def _prepare(X, metric):
    X = np.ascontiguousarray(X, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        # A zero row has no direction: it stays zero and matches nothing.
        X = np.ascontiguousarray(X / np.maximum(norms, np.finfo(np.float32).tiny))
    return X


@contextmanager
def _faiss_threads(n_jobs):
    """Set faiss's OpenMP thread count for a block, then restore it."""
    faiss = _import_faiss()
    old = faiss.omp_get_max_threads()
    if n_jobs is not None and n_jobs > 0:
        faiss.omp_set_num_threads(int(n_jobs))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(old)


class NeighborIndex:
    """A searchable index over the rows of ``X`` (faiss or scikit-learn).

    :class:`KNNGraph` keeps one after ``fit`` to attach new points to the
    fitted rows. The faiss index itself is not pickled: it is rebuilt from the
    stored rows on first use after unpickling.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    metric : {"cosine", "euclidean", "ip"}
    backend : str
        A concrete backend from :func:`resolve_backend`.
    n_neighbors : int, default=7
        Neighbours per search (sets the default HNSW ``efSearch``).
    index_params : dict, default=None
        Search settings (:func:`resolve_index_params`).
    n_jobs, random_state, verbose
        As in :func:`knn_search`.
    """

    def __init__(
        self,
        X,
        *,
        metric,
        backend,
        n_neighbors=7,
        index_params=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.metric = metric
        self.backend = backend
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.data = X if backend == "sklearn" else _prepare(X, metric)
        self.params = resolve_index_params(
            index_params, backend, X.shape[0], n_neighbors
        )
        self._index = None
        self._own_lists = self._build(own_lists=True)

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_index"] = None
        state["_own_lists"] = None
        return state

    def _build(self, own_lists=False):
        """Build the index; with ``own_lists``, return what the IVF search of
        the indexed rows themselves needs (:meth:`search_indexed`), else None."""
        X = self.data
        if self.backend == "sklearn":
            from sklearn.neighbors import NearestNeighbors

            if self.metric == "ip":
                raise ValueError(
                    "metric='ip' is not available with backend='sklearn'; use "
                    "metric='cosine' or a dense X with a faiss backend."
                )
            self._index = NearestNeighbors(metric=self.metric, n_jobs=self.n_jobs)
            self._index.fit(X)
            return
        faiss = _import_faiss()
        n, d = X.shape
        inner = self.metric in ("cosine", "ip")
        faiss_metric = faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2
        with _faiss_threads(self.n_jobs):
            if self.backend in ("exact", "gpu"):
                index = faiss.IndexFlatIP(d) if inner else faiss.IndexFlatL2(d)
                if self.backend == "gpu":
                    res = faiss.StandardGpuResources()
                    index = faiss.index_cpu_to_gpu(res, 0, index)
                    index.referenced_resources = res
            elif self.backend == "hnsw":
                index = faiss.IndexHNSWFlat(d, self.params["M"], faiss_metric)
                index.hnsw.efConstruction = self.params["efConstruction"]
            else:
                nlist = self.params["nlist"]
                quantizer = faiss.IndexFlatIP(d) if inner else faiss.IndexFlatL2(d)
                # Vectors stored as float16: at n = 10^5, d = 64 the search
                # took 26 % less time than with float32 storage (it streams
                # the candidates from memory) for the same recall, in half
                # the memory.
                index = faiss.IndexIVFScalarQuantizer(
                    quantizer, d, nlist, faiss.ScalarQuantizer.QT_fp16, faiss_metric
                )
                index.cp.seed = (
                    int(self.random_state) if self.random_state is not None else 1234
                )
                index.cp.niter = _IVF_KMEANS_ITER
                rng = np.random.default_rng(self.random_state)
                n_train = min(n, _IVF_TRAIN_PER_LIST * nlist)
                index.train(X[np.sort(rng.choice(n, size=n_train, replace=False))])
                index.nprobe = self.params["nprobe"]
                lists = _add_to_nearest_lists(index, X)
                self._index = index
                return lists if own_lists else None
            index.add(X)
        self._index = index
        return None

    def search(self, Q, k, *, chunk_size=None):
        """Return ``(scores, indices)`` of the ``k`` nearest indexed rows per query.

        Scores are inner products or squared distances, as in :class:`KNNResult`;
        missing neighbours have index -1.
        """
        if self._index is None:
            self._build()
        if self.backend == "sklearn":
            dist, ind = self._index.kneighbors(Q, n_neighbors=k)
            scores = 1.0 - dist if self.metric == "cosine" else dist**2
            return scores.astype(np.float32), ind.astype(np.int64)
        return self._search_chunks(_prepare(Q, self.metric), k, chunk_size)

    def search_indexed(self, k, *, chunk_size=None):
        """:meth:`search` with the indexed rows themselves as the queries.

        The same result as ``search(X, k)``. An IVF index probes the lists its
        build found for each row instead of asking its quantizer again: that
        pass compares every row with every list centroid, 256 GFLOP at
        10^6 x 64 with 2,000 lists. The first call after the build uses
        them, and frees them.
        """
        lists, self._own_lists = self._own_lists, None
        if lists is None:
            return self.search(self.data, k, chunk_size=chunk_size)
        return self._search_chunks(self.data, k, chunk_size, lists=lists)

    def _search_chunks(self, Q, k, chunk_size, lists=None):
        """Search the prepared rows ``Q`` in chunks, with a progress bar;
        ``lists`` = (coarse distances, list numbers) of each row for IVF."""
        from tqdm.auto import tqdm

        n = Q.shape[0]
        if self.backend == "hnsw":
            self._index.hnsw.efSearch = self.params["efSearch"]
        indices = np.empty((n, k), dtype=np.int64)
        scores = np.empty((n, k), dtype=np.float32)
        if chunk_size is None:
            # Every backend keeps only (chunk, k) results per call (faiss tiles
            # exact search itself); large chunks keep faiss on its BLAS path.
            chunk_size = int(np.clip(_TILE_FLOATS // (16 * k), 256, 65_536))
        with (
            _faiss_threads(self.n_jobs),
            tqdm(
                total=n,
                desc=f"kNN ({self.backend})",
                unit="rows",
                disable=not self.verbose,
                file=sys.stderr,
            ) as bar,
        ):
            for lo in range(0, n, chunk_size):
                hi = min(n, lo + chunk_size)
                if lists is None:
                    found = self._index.search(Q[lo:hi], k)
                else:
                    coarse, probe = lists
                    found = _search_preassigned(
                        self._index, Q[lo:hi], k, probe[lo:hi], coarse[lo:hi]
                    )
                scores[lo:hi], indices[lo:hi] = found
                bar.update(hi - lo)
        return scores, indices


def _search_preassigned(index, Q, k, probe, coarse):
    """IVF search of ``Q`` in the given lists, its queries split over threads.

    faiss's ``search`` splits the queries over threads itself and runs
    ``search_preassigned`` per thread, so called directly (parallel mode 0)
    it runs on one; mode 3 splits the queries there instead.
    """
    mode = index.parallel_mode
    index.parallel_mode = 3
    try:
        return index.search_preassigned(Q, k, probe, coarse)
    finally:
        index.parallel_mode = mode


def _add_to_nearest_lists(index, X):
    """Add the rows of ``X`` to a trained IVF ``index``, each to its nearest
    list, and return ``(distances, lists)`` of its ``index.nprobe`` nearest
    lists (``add`` would find the first one again itself)."""
    faiss = _import_faiss()
    coarse, lists = index.quantizer.search(X, index.nprobe)
    nearest = np.ascontiguousarray(lists[:, 0])
    for lo in range(0, X.shape[0], _ADD_CHUNK):
        hi = min(X.shape[0], lo + _ADD_CHUNK)
        ids = np.arange(lo, hi, dtype=np.int64)
        index.add_core(
            hi - lo,
            faiss.swig_ptr(X[lo:hi]),
            faiss.swig_ptr(ids),
            faiss.swig_ptr(nearest[lo:hi]),
        )
    return coarse, lists


def _drop_self(indices, scores, k, rows=None):
    """Remove each row's own index from its k + 1 neighbours.

    The self match is found by index, not by position: with duplicate rows or an
    approximate index the row itself need not come first, or at all. Rows whose
    own index is absent drop their farthest neighbour instead. ``rows`` gives
    the indexed row each query is (default: query ``i`` is row ``i``).
    """
    n = indices.shape[0]
    rows = np.arange(n) if rows is None else np.asarray(rows)
    is_self = indices == rows[:, None]
    # Keep only the first self hit per row (faiss never returns one twice, but
    # a precomputed structure might).
    first = np.cumsum(is_self, axis=1) == 1
    is_self &= first
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True
    keep = ~is_self
    return indices[keep].reshape(n, k), scores[keep].reshape(n, k)


def knn_search(
    X,
    n_neighbors,
    *,
    metric="cosine",
    backend="auto",
    index_params=None,
    n_jobs=None,
    chunk_size=None,
    random_state=None,
    verbose=0,
):
    """Find the ``n_neighbors`` nearest neighbours of every row of ``X``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Data. Dense data goes to faiss as C-contiguous float32.
    n_neighbors : int
        Neighbours per row, the row itself excluded. Must be below n_samples.
    metric : {"cosine", "euclidean", "ip"}, default="cosine"
        ``"cosine"`` searches inner products of L2-normalized rows,
        ``"euclidean"`` squared L2 distances, ``"ip"`` raw inner products.
    backend : {"auto", "exact", "hnsw", "ivf", "gpu", "sklearn"}, default="auto"
        ``"exact"`` is faiss flat search, ``"hnsw"`` and ``"ivf"`` are faiss
        approximate indexes, ``"gpu"`` is flat search on a CUDA device,
        ``"sklearn"`` is :class:`~sklearn.neighbors.NearestNeighbors` (sparse X).
        ``"auto"`` picks by size, sparsity and device (:func:`resolve_backend`).
    index_params : dict, default=None
        Search settings of the approximate backends
        (:func:`resolve_index_params`).
    n_jobs : int, default=None
        Threads for the search (faiss OpenMP threads or scikit-learn jobs).
    chunk_size : int, default=None
        Query rows per search call; by default sized so the peak extra memory
        stays bounded whatever n_samples.
    random_state : int, default=None
        Seed of the IVF training sample.
    verbose : int, default=0
        Show a progress bar on stderr when positive.

    Returns
    -------
    result : KNNResult
        Indices, scores, metric, the backend used, the index and its timings.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.graph import knn_search
    >>> X = np.array([[0.0, 1.0], [0.0, 1.1], [1.0, 0.0], [1.1, 0.0]])
    >>> knn_search(X, 1, metric="euclidean").indices.ravel().tolist()
    [1, 0, 3, 2]
    """
    if metric not in METRICS:
        raise ValueError(
            f"metric={metric!r} is not supported; choose one of {METRICS}."
        )
    n = X.shape[0]
    if not 1 <= n_neighbors < n:
        raise ValueError(
            f"n_neighbors={n_neighbors} must be between 1 and n_samples - 1 = "
            f"{n - 1}; lower n_neighbors or pass more samples."
        )
    used = resolve_backend(backend, n, n_neighbors, sparse_input=sp.issparse(X))
    start = time.perf_counter()
    index = NeighborIndex(
        X,
        metric=metric,
        backend=used,
        n_neighbors=n_neighbors,
        index_params=index_params,
        n_jobs=n_jobs,
        random_state=random_state,
        verbose=verbose,
    )
    built = time.perf_counter()
    scores, indices = index.search_indexed(n_neighbors + 1, chunk_size=chunk_size)
    indices, scores = _drop_self(indices, scores, n_neighbors)
    timings = {"index": built - start, "search": time.perf_counter() - built}
    return KNNResult(
        indices=indices,
        scores=scores,
        metric=metric,
        backend=used,
        index=index,
        timings=timings,
    )


def _squared_distances(scores, metric):
    if metric in ("cosine", "ip"):
        # Unit rows: ||u - v||^2 = 2 - 2 u.v (for "ip" this is a proxy).
        return np.maximum(2.0 - 2.0 * scores, 0.0)
    return np.maximum(scores, 0.0)


def local_scales(indices, scores, *, metric, local_scale):
    """Distance of each row to its ``local_scale``-th neighbour (Gaussian sigma_i).

    Rows whose scale is zero (many duplicates) or undefined borrow the median
    scale of the others, so the kernel never divides by zero. With fewer than
    ``local_scale`` neighbours the farthest one sets the scale.

    Parameters
    ----------
    indices, scores : ndarray of shape (n_rows, k)
        As in :class:`KNNResult`.
    metric : {"cosine", "euclidean", "ip"}
    local_scale : int

    Returns
    -------
    sigma : ndarray of shape (n_rows,)
    """
    valid = indices >= 0
    d2 = np.where(valid, _squared_distances(scores.astype(np.float64), metric), np.inf)
    col = min(local_scale, d2.shape[1]) - 1
    sigma = np.sqrt(np.partition(d2, col, axis=1)[:, col])
    finite = np.isfinite(sigma) & (sigma > 0)
    fallback = np.median(sigma[finite]) if finite.any() else 1.0
    return np.where(finite, sigma, fallback)


def kernel_weights(
    indices,
    scores,
    *,
    metric,
    kernel="power",
    gamma=3.0,
    sigma_query=None,
    sigma_ref=None,
):
    """Edge weights for kNN results, zero where the neighbour is missing (-1).

    Parameters
    ----------
    indices, scores : ndarray of shape (n_queries, k)
        As in :class:`KNNResult`.
    metric : {"cosine", "euclidean", "ip"}
    kernel : {"power", "gaussian", "binary"}, default="power"
        See :func:`affinity_matrix`.
    gamma : float, default=3.0
    sigma_query, sigma_ref : ndarray, default=None
        Gaussian local scales of the query rows and of the indexed rows
        (:func:`local_scales`); required for ``kernel="gaussian"``.

    Returns
    -------
    weights : ndarray of shape (n_queries, k), float64
    """
    valid = indices >= 0
    s = scores.astype(np.float64)
    if kernel == "binary":
        return valid.astype(np.float64)
    if kernel == "power":
        if metric not in ("cosine", "ip"):
            raise ValueError(
                "kernel='power' (a_ij = [v_i.v_j]_+^gamma, DLP eq. 9) needs "
                f"similarities but metric={metric!r}; use metric='cosine' "
                "or 'ip', or kernel='gaussian'."
            )
        return np.where(valid, np.maximum(s, 0.0) ** gamma, 0.0)
    d2 = _squared_distances(s, metric)
    scale = sigma_query[:, None] * sigma_ref[np.where(valid, indices, 0)]
    return np.where(valid, np.exp(-d2 / scale), 0.0)


def affinity_matrix(knn, *, kernel="power", gamma=3.0, sigma=None, symmetrize="sum"):
    """Sparse symmetric affinity ``W`` with zero diagonal from a kNN result.

    Parameters
    ----------
    knn : KNNResult
        Output of :func:`knn_search`.
    kernel : {"power", "gaussian", "binary"}, default="power"
        ``"power"`` is ``a_ij = [v_i^T v_j]_+^gamma`` (Iscen et al. 2019, eq. 9);
        ``"gaussian"`` is ``exp(-d_ij^2 / (sigma_i sigma_j))`` with local scaling;
        ``"binary"`` puts 1 on every kNN edge.
    gamma : float, default=3.0
        Exponent of the power kernel.
    sigma : ndarray of shape (n_samples,), default=None
        Local scales of the rows (:func:`local_scales`); required for
        ``kernel="gaussian"``.
    symmetrize : {"sum", "max", "mutual"}, default="sum"
        ``W = A + A^T``, ``max(A, A^T)``, or ``min(A, A^T)`` (mutual neighbours).

    Returns
    -------
    W : scipy.sparse.csr_matrix of shape (n_samples, n_samples), float64
    """
    if kernel not in KERNELS:
        raise ValueError(
            f"kernel={kernel!r} is not supported; choose one of {KERNELS}."
        )
    if symmetrize not in SYMMETRIZE:
        raise ValueError(
            f"symmetrize={symmetrize!r} is not supported; choose one of {SYMMETRIZE}."
        )
    if kernel == "gaussian" and sigma is None:
        raise ValueError(
            "kernel='gaussian' needs the local scales sigma of the rows; compute "
            "them with local_scales(...) or use KNNGraph."
        )
    n, k = knn.indices.shape
    w = kernel_weights(
        knn.indices,
        knn.scores,
        metric=knn.metric,
        kernel=kernel,
        gamma=gamma,
        sigma_query=sigma,
        sigma_ref=sigma,
    )
    rows = np.repeat(np.arange(n), k)
    cols = knn.indices.ravel()
    vals = w.ravel()
    keep = (cols >= 0) & (vals > 0) & (cols != rows)
    A = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n))
    A.sum_duplicates()
    return _symmetric_zero_diagonal(A, symmetrize)


def _symmetric_zero_diagonal(A, symmetrize):
    """``A + A^T``, ``max(A, A^T)`` or ``min(A, A^T)``, with the diagonal removed."""
    if symmetrize == "sum":
        W = A + A.T
    elif symmetrize == "max":
        W = A.maximum(A.T)
    else:
        W = A.minimum(A.T)
    return _without_diagonal(W)


def _without_diagonal(W):
    """``W`` as CSR without its diagonal and explicit zeros.

    Entries are masked out rather than set to zero: ``setdiag`` on a CSR
    matrix first inserts every missing diagonal entry, which cost five times
    the symmetrization itself on a 10^5-row kNN graph.
    """
    W = sp.csr_matrix(W)
    W.sum_duplicates()
    rows = np.repeat(np.arange(W.shape[0], dtype=W.indices.dtype), np.diff(W.indptr))
    keep = (W.indices != rows) & (W.data != 0)
    if keep.all():
        return W
    indptr = np.zeros(W.shape[0] + 1, dtype=W.indptr.dtype)
    np.cumsum(np.bincount(rows[keep], minlength=W.shape[0]), out=indptr[1:])
    return sp.csr_matrix((W.data[keep], W.indices[keep], indptr), shape=W.shape)


def normalize_affinity(W):
    """Symmetric normalization ``D^{-1/2} W D^{-1/2}``.

    Rows of zero degree stay zero instead of producing NaN.

    Parameters
    ----------
    W : sparse matrix of shape (n_samples, n_samples)

    Returns
    -------
    W_norm : scipy.sparse.csr_matrix
    degree : ndarray of shape (n_samples,)
    """
    W = sp.csr_matrix(W, dtype=np.float64)
    degree = np.asarray(W.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(degree)
    positive = degree > 0
    inv_sqrt[positive] = 1.0 / np.sqrt(degree[positive])
    # Each stored w_ij scaled in place of two sparse products D @ W @ D (the
    # same matrix and sparsity in less than half the time at 10^5 rows).
    data = inv_sqrt[W.indices]
    data *= W.data
    data *= np.repeat(inv_sqrt, np.diff(W.indptr))
    W_norm = sp.csr_matrix((data, W.indices.copy(), W.indptr.copy()), shape=W.shape)
    return W_norm, degree


def _check_affinity_values(A):
    if A.nnz and (not np.all(np.isfinite(A.data)) or A.data.min() < 0):
        raise ValueError(
            "a precomputed affinity must be finite and non-negative; clip or "
            "rescale it first."
        )


def precomputed_affinity(A, *, symmetrize="sum"):
    """Validate a user-given affinity: square, non-negative, finite.

    It is symmetrized (when not already symmetric) and its diagonal zeroed.
    """
    if not sp.issparse(A) and not isinstance(A, np.ndarray):
        A = np.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(
            f"a precomputed affinity must be square, got shape {A.shape}; pass the "
            "(n_samples, n_samples) affinity or use a kNN backend with features."
        )
    # A copy: the steps below reorder and mask entries, and the fitted graph
    # must not share (or change) the caller's matrix.
    A = sp.csr_matrix(A, dtype=np.float64, copy=True)
    _check_affinity_values(A)
    if A.nnz and abs(A - A.T).max():
        return _symmetric_zero_diagonal(A, symmetrize)
    return _without_diagonal(A)


def _rows_as_neighbours(A):
    """Non-zeros of each row of a sparse matrix as padded ``(indices, weights)``."""
    A = sp.csr_matrix(A, dtype=np.float64)
    A.eliminate_zeros()
    counts = np.diff(A.indptr)
    width = max(int(counts.max(initial=0)), 1)
    indices = np.full((A.shape[0], width), -1, dtype=np.int64)
    weights = np.zeros((A.shape[0], width))
    rows = np.repeat(np.arange(A.shape[0]), counts)
    slot = np.arange(A.nnz) - np.repeat(A.indptr[:-1], counts)
    indices[rows, slot] = A.indices
    weights[rows, slot] = A.data
    return indices, weights


class KNNGraph(BaseEstimator):
    """The kNN affinity graph of a set of rows, and the way new rows attach to it.

    One object owns the neighbourhood: the search index, the metric, the kernel,
    the local scales of the fitted rows and the search settings. ``fit(X)``
    builds the sparse symmetric affinity ``W`` of the rows of ``X`` (zero
    diagonal, no NaN for zero-degree rows); ``query(Q)`` returns, for new rows,
    their nearest fitted rows and the edge weights of the same kernel. The
    estimators keep the fitted graph, so their ``fit`` and ``predict`` share one
    definition of the neighbourhood whatever their parameters later become.

    Parameters
    ----------
    n_neighbors : int, default=7
        Neighbours per row, the row itself excluded.
    metric : {"euclidean", "cosine", "ip"}, default="euclidean"
        ``"euclidean"`` suits raw features, ``"cosine"`` embeddings; ``"ip"``
        is the raw inner product.
    kernel : {"gaussian", "power", "binary"}, default="gaussian"
        ``"gaussian"`` is ``exp(-d_ij^2 / (sigma_i sigma_j))``, ``sigma_i`` the
        distance to the ``local_scale``-th neighbour (Zelnik-Manor and Perona
        2004); ``"power"`` is ``[v_i^T v_j]_+^gamma`` (Iscen et al. 2019,
        eq. 9; needs ``metric="cosine"`` or ``"ip"``); ``"binary"`` is 1 per edge.
    gamma : float, default=3.0
        Exponent of the power kernel.
    local_scale : int, default=7
        Which neighbour sets the Gaussian scale ``sigma_i``.
    symmetrize : {"sum", "max", "mutual"}, default="sum"
        ``W = A + A^T``, ``max(A, A^T)``, or ``min(A, A^T)`` (mutual neighbours).
    backend : {"auto", "exact", "hnsw", "ivf", "gpu", "sklearn", "precomputed"}, \
default="auto"
        kNN search (:func:`resolve_backend`): ``"auto"`` picks exact faiss search
        below 100,000 rows, IVF from there, a GPU when faiss sees one, and
        scikit-learn for sparse X. With
        ``"precomputed"``, ``fit`` takes a square affinity and ``query`` the
        (n_queries, n_fitted) affinities of new rows.
    index_params : dict, default=None
        Search settings of the approximate backends by faiss's names: HNSW
        ``M`` (32), ``efConstruction`` (40), ``efSearch`` (``max(2 k, 24)``);
        IVF ``nlist`` (about ``2 sqrt(n)``), ``nprobe`` (lists holding about
        600 rows, at least 4). Unset keys keep these measured defaults.
    n_jobs : int, default=None
        Threads for the search.
    random_state : int or None, default=None
        Seed of the IVF training sample.
    verbose : int, default=0
        Show a progress bar for the search.

    Attributes
    ----------
    affinity_ : scipy.sparse.csr_matrix of shape (n_fitted, n_fitted)
        The symmetric affinity ``W``.
    backend_ : str
        The backend used.
    index_params_ : dict
        The search settings used (empty for exact search).
    index_ : NeighborIndex or None
        The index of the fitted rows (None for ``"precomputed"``).
    local_scales_ : ndarray of shape (n_fitted,) or None
        ``sigma_i`` of the fitted rows (Gaussian kernel only).
    n_samples_fit_ : int
        Rows in the graph (``n_fitted``).
    timings_ : dict
        Seconds for ``"index"`` (build), ``"search"`` and ``"affinity"``.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.graph import KNNGraph
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> graph = KNNGraph(5).fit(X)
    >>> W = graph.affinity_
    >>> W.shape, bool(abs(W - W.T).max() == 0), graph.backend_
    ((50, 50), True, 'exact')
    >>> indices, weights = graph.query(X[:2] + 0.01)
    >>> indices.shape, bool((weights > 0).all())
    ((2, 5), True)
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "metric": [StrOptions(set(METRICS))],
        "kernel": [StrOptions(set(KERNELS))],
        "gamma": [Interval(numbers.Real, 0, None, closed="neither")],
        "local_scale": [Interval(numbers.Integral, 1, None, closed="left")],
        "symmetrize": [StrOptions(set(SYMMETRIZE))],
        "backend": [StrOptions(set(BACKENDS) | {"precomputed"})],
        "index_params": [dict, None],
        "n_jobs": [numbers.Integral, None],
        "random_state": [numbers.Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_neighbors=7,
        *,
        metric="euclidean",
        kernel="gaussian",
        gamma=3.0,
        local_scale=7,
        symmetrize="sum",
        backend="auto",
        index_params=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.kernel = kernel
        self.gamma = gamma
        self.local_scale = local_scale
        self.symmetrize = symmetrize
        self.backend = backend
        self.index_params = index_params
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X):
        """Build the affinity of the rows of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Rows to connect, or a square affinity with ``backend="precomputed"``.

        Returns
        -------
        self : KNNGraph
        """
        self._validate_params()
        if self.backend == "precomputed":
            start = time.perf_counter()
            W = precomputed_affinity(X, symmetrize=self.symmetrize)
            self._set_fitted(
                W,
                backend="precomputed",
                index=None,
                params={},
                sigma=None,
                timings={
                    "index": 0.0,
                    "search": 0.0,
                    "affinity": time.perf_counter() - start,
                },
            )
            return self
        if self.kernel == "power" and self.metric == "euclidean":
            raise ValueError(
                "kernel='power' needs similarities but metric='euclidean'; use "
                "metric='cosine' with kernel='power', or kernel='gaussian'."
            )
        if self.n_neighbors >= X.shape[0]:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} must be smaller than n_samples="
                f"{X.shape[0]}; lower n_neighbors or pass more samples."
            )
        knn = knn_search(
            X,
            self.n_neighbors,
            metric=self.metric,
            backend=self.backend,
            index_params=self.index_params,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            verbose=self.verbose,
        )
        start = time.perf_counter()
        sigma = None
        if self.kernel == "gaussian":
            sigma = local_scales(
                knn.indices,
                knn.scores,
                metric=knn.metric,
                local_scale=self.local_scale,
            )
        W = affinity_matrix(
            knn,
            kernel=self.kernel,
            gamma=self.gamma,
            sigma=sigma,
            symmetrize=self.symmetrize,
        )
        self._set_fitted(
            W,
            backend=knn.backend,
            index=knn.index,
            params=knn.index.params,
            sigma=sigma,
            timings={**knn.timings, "affinity": time.perf_counter() - start},
        )
        return self

    def _set_fitted(self, W, *, backend, index, params, sigma, timings):
        # query() uses the settings of this fit, whatever set_params does later.
        self._kernel_ = {
            name: getattr(self, name)
            for name in ("n_neighbors", "metric", "kernel", "gamma", "local_scale")
        }
        self.affinity_ = W
        self.backend_ = backend
        self.index_ = index
        self.index_params_ = params
        self.local_scales_ = sigma
        self.n_samples_fit_ = W.shape[0]
        self.timings_ = timings

    def query(self, Q, *, n_neighbors=None):
        """Nearest fitted rows of new rows, with the fitted graph's edge weights.

        Parameters
        ----------
        Q : {array-like, sparse matrix} of shape (n_queries, n_features)
            New rows; with ``backend="precomputed"``, their affinities to the
            fitted rows, of shape (n_queries, n_fitted).
        n_neighbors : int, default=None
            Fitted rows per query; None uses the ``n_neighbors`` of the fit.
            Retrieval attaches a query through fewer rows than the graph has
            per row (e.g. 10 against 50). Ignored with ``"precomputed"``.

        Returns
        -------
        indices : ndarray of shape (n_queries, k), int64
            Fitted rows, ``k = min(n_neighbors, n_fitted)``; -1 where a
            neighbour is missing (with ``"precomputed"``, the non-zeros of each
            row, padded with -1).
        weights : ndarray of shape (n_queries, k), float64
            Edge weights of the fitted kernel, 0 for missing neighbours.
        """
        check_is_fitted(self, "affinity_")
        if self.backend_ == "precomputed":
            A = Q if sp.issparse(Q) else np.asarray(Q, dtype=np.float64)
            if A.ndim != 2 or A.shape[1] != self.n_samples_fit_:
                raise ValueError(
                    f"with backend='precomputed', queries are affinities to the "
                    f"{self.n_samples_fit_} fitted rows, but got shape {A.shape}; "
                    f"pass an (n_queries, {self.n_samples_fit_}) matrix."
                )
            A = sp.csr_matrix(A, dtype=np.float64)
            _check_affinity_values(A)
            return _rows_as_neighbours(A)
        kernel = self._kernel_
        if n_neighbors is None:
            n_neighbors = kernel["n_neighbors"]
        elif not (isinstance(n_neighbors, numbers.Integral) and n_neighbors >= 1):
            raise ValueError(
                f"n_neighbors={n_neighbors!r} must be a positive int (fitted rows "
                "per query), or None for the n_neighbors of the fit."
            )
        k = min(int(n_neighbors), self.n_samples_fit_)
        scores, indices = self.index_.search(Q, k)
        sigma_query = None
        if kernel["kernel"] == "gaussian":
            sigma_query = local_scales(
                indices,
                scores,
                metric=kernel["metric"],
                local_scale=kernel["local_scale"],
            )
        weights = kernel_weights(
            indices,
            scores,
            metric=kernel["metric"],
            kernel=kernel["kernel"],
            gamma=kernel["gamma"],
            sigma_query=sigma_query,
            sigma_ref=self.local_scales_,
        )
        return indices, weights
