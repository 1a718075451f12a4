"""k-nearest-neighbour graphs and affinity matrices.

Pure functions: arrays in, arrays or sparse matrices out. They are shared by
:class:`~skssl.LabelSpreadingCG`, the deep estimators and the ranking code, so
each concept (self-match removal, affinity kernel, symmetrization,
normalization) is computed here and nowhere else.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = [
    "KNNResult",
    "NeighborIndex",
    "affinity_matrix",
    "build_graph",
    "kernel_weights",
    "knn_search",
    "local_scales",
    "normalize_affinity",
    "resolve_backend",
]

BACKENDS = ("auto", "exact", "hnsw", "ivf", "gpu", "sklearn")
METRICS = ("cosine", "euclidean", "ip")
KERNELS = ("power", "gaussian", "binary")
SYMMETRIZE = ("sum", "max", "mutual")

# Above this many rows an exact O(n^2 d) search stops being the sensible default
# on a CPU; below it exact search is both faster to build and error free.
_APPROX_MIN_ROWS = 200_000
# Above this many rows IVF builds faster than HNSW and uses less memory.
_IVF_MIN_ROWS = 5_000_000
# faiss GPU k-selection is limited to this many neighbours.
_GPU_MAX_K = 2048
# Queries per chunk are chosen so that the (chunk, k) result buffers stay near
# this many values. faiss tiles exact search internally (4096 x 1024 blocks), so
# no (chunk, n) tile is materialised, and it only takes its BLAS path when
# chunk * d >= 128,000: small chunks made exact search 3.7x slower at d = 64
# (benchmarks/bench_propagation.py --tuning).
_TILE_FLOATS = 2**26
# HNSW search breadth: efSearch = max(2 k, this). At k = 8 (n_neighbors=7 plus
# the self match), 24 instead of 64 cut search time 2.7x at n = 1e6 for recall
# 0.94 instead of 0.97, with no loss of LabelSpreadingCG accuracy (ibid.).
_HNSW_MIN_EF_SEARCH = 24


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
    """

    indices: np.ndarray
    scores: np.ndarray
    metric: str
    backend: str
    index: NeighborIndex | None = None

    @property
    def is_similarity(self):
        return self.metric in ("cosine", "ip")


def _import_faiss():
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
        raise ImportError(
            "skssl needs faiss for kNN search: `pip install faiss-cpu` "
            "(or `pip install skssl[gpu]` for faiss-gpu)."
        ) from exc
    return faiss


def _gpu_available():
    try:
        faiss = _import_faiss()
    except ImportError:  # pragma: no cover
        return False
    get_num_gpus = getattr(faiss, "get_num_gpus", None)
    return bool(get_num_gpus is not None and get_num_gpus() > 0)


def resolve_backend(backend, n_samples, n_neighbors, *, sparse_input=False):
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

    Returns
    -------
    backend : str
        The concrete backend.
    """
    if backend not in BACKENDS:
        raise ValueError(
            f"backend={backend!r} is not supported; choose one of {BACKENDS}."
        )
    if sparse_input:
        if backend not in ("auto", "sklearn"):
            raise ValueError(
                f"backend={backend!r} needs dense X but X is sparse; use "
                "backend='sklearn' or 'auto', or densify X with X.toarray()."
            )
        return "sklearn"
    if backend == "gpu" and not _gpu_available():
        raise ValueError(
            "backend='gpu' needs faiss-gpu and a visible CUDA device; install "
            "`skssl[gpu]` or use backend='auto'."
        )
    if backend != "auto":
        return backend
    if _gpu_available() and n_neighbors + 1 <= _GPU_MAX_K:
        return "gpu"
    if n_samples < _APPROX_MIN_ROWS:
        return "exact"
    if n_samples < _IVF_MIN_ROWS:
        return "hnsw"
    return "ivf"


def _prepare(X, metric):
    X = np.ascontiguousarray(X, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        # A zero row has no direction: it stays zero and matches nothing.
        X = np.ascontiguousarray(X / np.maximum(norms, np.finfo(np.float32).tiny))
    return X


def _faiss_index(backend, d, metric, n_samples, *, random_state, faiss):
    inner = metric in ("cosine", "ip")
    faiss_metric = faiss.METRIC_INNER_PRODUCT if inner else faiss.METRIC_L2
    if backend in ("exact", "gpu"):
        index = faiss.IndexFlatIP(d) if inner else faiss.IndexFlatL2(d)
        if backend == "gpu":
            res = faiss.StandardGpuResources()
            index = faiss.index_cpu_to_gpu(res, 0, index)
            index.referenced_resources = res
        return index
    if backend == "hnsw":
        index = faiss.IndexHNSWFlat(d, 32, faiss_metric)
        index.hnsw.efConstruction = 40
        return index
    # IVF: about 4 sqrt(n) lists, trained on a seeded subsample.
    nlist = int(max(1, min(4 * np.sqrt(n_samples), n_samples // 39)))
    quantizer = faiss.IndexFlatIP(d) if inner else faiss.IndexFlatL2(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss_metric)
    index.cp.seed = int(random_state) if random_state is not None else 1234
    return index


def _progress(verbose, done, total, start, label):
    if not verbose:
        return
    frac = done / max(total, 1)
    bar = "#" * int(30 * frac)
    elapsed = time.perf_counter() - start
    end = "\n" if done >= total else ""
    sys.stderr.write(f"\r{label} [{bar:<30}] {done}/{total} rows {elapsed:6.1f}s{end}")
    sys.stderr.flush()


class NeighborIndex:
    """A searchable index over the rows of ``X`` (faiss or scikit-learn).

    Estimators keep one after ``fit`` to attach new points to the fitted data.
    The faiss index itself is not pickled: it is rebuilt from the stored rows
    on first use after unpickling.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
    metric : {"cosine", "euclidean", "ip"}
    backend : str
        A concrete backend from :func:`resolve_backend`.
    n_jobs, random_state, verbose
        As in :func:`knn_search`.
    """

    def __init__(
        self, X, *, metric, backend, n_jobs=None, random_state=None, verbose=0
    ):
        self.metric = metric
        self.backend = backend
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.data = X if backend == "sklearn" else _prepare(X, metric)
        self._index = None
        self._build()

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_index"] = None
        return state

    def _build(self):
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
        with _faiss_threads(self.n_jobs):
            index = _faiss_index(
                self.backend,
                d,
                self.metric,
                n,
                random_state=self.random_state,
                faiss=faiss,
            )
            if self.backend == "ivf":
                rng = np.random.default_rng(self.random_state)
                n_train = min(n, 64 * index.nlist)
                index.train(X[np.sort(rng.choice(n, size=n_train, replace=False))])
                index.nprobe = min(index.nlist, 16)
            index.add(X)
        self._index = index

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
        Q = _prepare(Q, self.metric)
        n = Q.shape[0]
        if self.backend == "hnsw":
            self._index.hnsw.efSearch = max(2 * k, _HNSW_MIN_EF_SEARCH)
        indices = np.empty((n, k), dtype=np.int64)
        scores = np.empty((n, k), dtype=np.float32)
        if chunk_size is None:
            # Every backend keeps only (chunk, k) results per call (faiss tiles
            # exact search itself); large chunks keep faiss on its BLAS path.
            chunk_size = int(np.clip(_TILE_FLOATS // (16 * k), 256, 65_536))
        start = time.perf_counter()
        with _faiss_threads(self.n_jobs):
            for lo in range(0, n, chunk_size):
                hi = min(n, lo + chunk_size)
                scores[lo:hi], indices[lo:hi] = self._index.search(Q[lo:hi], k)
                _progress(self.verbose, hi, n, start, f"kNN ({self.backend})")
        return scores, indices


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


def _drop_self(indices, scores, k):
    """Remove each row's own index from its k + 1 neighbours.

    The self match is found by index, not by position: with duplicate rows or an
    approximate index the row itself need not come first, or at all. Rows whose
    own index is absent drop their farthest neighbour instead.
    """
    n = indices.shape[0]
    is_self = indices == np.arange(n)[:, None]
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
        ``"auto"`` picks by size, sparsity and device.
    n_jobs : int, default=None
        Threads for the search (faiss OpenMP threads or scikit-learn jobs).
    chunk_size : int, default=None
        Query rows per search call; by default sized so the peak extra memory
        stays bounded whatever n_samples.
    random_state : int, default=None
        Seed of the IVF training sample.
    verbose : int, default=0
        Print a progress bar on stderr when positive.

    Returns
    -------
    result : KNNResult
        Indices, scores, metric and the backend used.

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
    index = NeighborIndex(
        X,
        metric=metric,
        backend=used,
        n_jobs=n_jobs,
        random_state=random_state,
        verbose=verbose,
    )
    scores, indices = index.search(X, n_neighbors + 1, chunk_size=chunk_size)
    indices, scores = _drop_self(indices, scores, n_neighbors)
    return KNNResult(
        indices=indices, scores=scores, metric=metric, backend=used, index=index
    )


def _squared_distances(scores, metric):
    if metric in ("cosine", "ip"):
        # Unit rows: ||u - v||^2 = 2 - 2 u.v (for "ip" this is a proxy).
        return np.maximum(2.0 - 2.0 * scores, 0.0)
    return np.maximum(scores, 0.0)


def local_scales(knn, local_scale=7):
    """Distance of each row to its ``local_scale``-th neighbour (Gaussian sigma_i).

    Rows whose scale is zero (many duplicates) or undefined borrow the median
    scale of the others, so the kernel never divides by zero.
    """
    valid = knn.indices >= 0
    d2 = np.where(
        valid, _squared_distances(knn.scores.astype(np.float64), knn.metric), np.inf
    )
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


def affinity_matrix(
    knn,
    *,
    kernel="power",
    gamma=3.0,
    local_scale=7,
    symmetrize="sum",
):
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
    local_scale : int, default=7
        Which neighbour's distance sets ``sigma_i`` for the Gaussian kernel.
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
    n, k = knn.indices.shape
    sigma = local_scales(knn, local_scale) if kernel == "gaussian" else None
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
    W = sp.csr_matrix(W)
    W.setdiag(0.0)
    W.eliminate_zeros()
    return W


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
    D = sp.diags(inv_sqrt)
    return sp.csr_matrix(D @ W @ D), degree


def build_graph(
    X,
    n_neighbors,
    *,
    metric="cosine",
    kernel="power",
    gamma=3.0,
    local_scale=7,
    symmetrize="sum",
    backend="auto",
    n_jobs=None,
    random_state=None,
    verbose=0,
):
    """kNN search followed by :func:`affinity_matrix` (one call for estimators).

    ``X`` may also be a precomputed sparse affinity (``backend="precomputed"``),
    which is only symmetrized and stripped of its diagonal.

    Returns
    -------
    W : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        Symmetric non-negative affinity with zero diagonal.
    knn : KNNResult or None
        The search result (None for a precomputed affinity).

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.graph import build_graph
    >>> X = np.random.default_rng(0).normal(size=(50, 3))
    >>> W, knn = build_graph(X, 5, metric="euclidean", kernel="gaussian")
    >>> W.shape, bool(abs(W - W.T).max() == 0), knn.backend
    ((50, 50), True, 'exact')
    """
    if backend == "precomputed":
        return precomputed_affinity(X, symmetrize=symmetrize), None
    knn = knn_search(
        X,
        n_neighbors,
        metric=metric,
        backend=backend,
        n_jobs=n_jobs,
        random_state=random_state,
        verbose=verbose,
    )
    W = affinity_matrix(
        knn, kernel=kernel, gamma=gamma, local_scale=local_scale, symmetrize=symmetrize
    )
    return W, knn


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
    A = sp.csr_matrix(A, dtype=np.float64)
    if A.nnz and (not np.all(np.isfinite(A.data)) or A.data.min() < 0):
        raise ValueError(
            "a precomputed affinity must be finite and non-negative; clip or "
            "rescale it before fitting."
        )
    if A.nnz and abs(A - A.T).max():
        return _symmetric_zero_diagonal(A, symmetrize)
    A.setdiag(0.0)
    A.eliminate_zeros()
    return A
