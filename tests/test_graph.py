import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from skssl.graph import (
    KNNGraph,
    NeighborIndex,
    affinity_matrix,
    kernel_weights,
    knn_search,
    local_scales,
    normalize_affinity,
    precomputed_affinity,
    resolve_backend,
    resolve_index_params,
)


@pytest.fixture
def X():
    return np.random.default_rng(0).normal(size=(300, 6))


def _brute_force(X, k, metric):
    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric).fit(X)
    return nn.kneighbors(X)[1][:, 1:]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("backend", ["exact", "sklearn"])
def test_knn_matches_brute_force(X, metric, backend):
    knn = knn_search(X, 5, metric=metric, backend=backend)
    expected = _brute_force(X, 5, metric)
    assert knn.backend == backend
    assert knn.indices.shape == (300, 5)
    assert np.array_equal(np.sort(knn.indices, 1), np.sort(expected, 1))


@pytest.mark.parametrize("backend", ["hnsw", "ivf"])
def test_approximate_backends_recall(X, backend):
    knn = knn_search(X, 10, metric="euclidean", backend=backend, random_state=0)
    expected = _brute_force(X, 10, "euclidean")
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(knn.indices, expected, strict=True)]
    )
    assert recall > 0.9
    assert not (knn.indices == np.arange(300)[:, None]).any()


def test_self_removed_by_index_with_duplicates():
    # Four copies of one point: faiss may list a copy before the row itself,
    # so dropping column 0 would keep a self match.
    X = np.vstack([np.ones((4, 3)), np.random.default_rng(1).normal(size=(20, 3))])
    knn = knn_search(X, 3, metric="euclidean", backend="exact")
    assert not (knn.indices == np.arange(len(X))[:, None]).any()
    for i in range(4):
        assert set(knn.indices[i]) == set(range(4)) - {i}


def test_scores_are_squared_distances_and_cosines(X):
    knn = knn_search(X, 3, metric="euclidean", backend="exact")
    i, j = 7, knn.indices[7, 0]
    assert knn.scores[7, 0] == pytest.approx(np.sum((X[i] - X[j]) ** 2), rel=1e-4)
    knn = knn_search(X, 3, metric="cosine", backend="exact")
    j = knn.indices[7, 0]
    cos = X[7] @ X[j] / np.linalg.norm(X[7]) / np.linalg.norm(X[j])
    assert knn.scores[7, 0] == pytest.approx(cos, rel=1e-4)


def test_float32_contiguous_not_required(X):
    Xf = np.asfortranarray(X)  # faiss needs C order: it must be converted
    a = knn_search(Xf, 4, metric="euclidean", backend="exact").indices
    b = knn_search(X, 4, metric="euclidean", backend="exact").indices
    assert np.array_equal(a, b)


def test_chunked_search_equals_single_chunk(X):
    index = NeighborIndex(X, metric="euclidean", backend="exact")
    s1, i1 = index.search(X, 6, chunk_size=7)
    s2, i2 = index.search(X, 6, chunk_size=10_000)
    assert np.array_equal(i1, i2)
    assert np.allclose(s1, s2)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_ivf_search_of_indexed_rows_equals_search(metric):
    # The self search probes the lists found while adding the rows; it must
    # return what a plain search of the same rows returns.
    X = np.random.default_rng(3).normal(size=(3000, 8)).astype(np.float32)
    index = NeighborIndex(
        X,
        metric=metric,
        backend="ivf",
        index_params={"nlist": 30, "nprobe": 3},
        random_state=0,
    )
    assert index._index.ntotal == len(X)
    s1, i1 = index.search_indexed(5, chunk_size=700)
    assert index._own_lists is None  # used once, then freed
    s2, i2 = index.search(X, 5)
    assert np.array_equal(i1, i2)
    assert np.allclose(s1, s2, atol=1e-5)
    # a second call (or one after unpickling) searches the rows afresh
    s3, i3 = pickle.loads(pickle.dumps(index)).search_indexed(5)
    assert np.array_equal(i3, i2)


def test_index_survives_pickling(X):
    index = NeighborIndex(X, metric="cosine", backend="exact")
    clone = pickle.loads(pickle.dumps(index))
    assert np.array_equal(clone.search(X[:5], 3)[1], index.search(X[:5], 3)[1])


def test_progress_bar_only_when_verbose(X, capsys):
    knn_search(X, 3, backend="exact")
    assert capsys.readouterr().err == ""
    knn_search(X, 3, backend="exact", verbose=1)
    assert "kNN (exact)" in capsys.readouterr().err


def test_sparse_input_uses_sklearn(X):
    Xs = sp.csr_matrix(np.where(X > 0.5, X, 0))
    knn = knn_search(Xs, 4, metric="cosine")
    assert knn.backend == "sklearn"
    with pytest.raises(ValueError, match="sparse"):
        knn_search(Xs, 4, backend="exact")


def test_resolve_backend_auto():
    from skssl.graph import _gpu_available

    assert resolve_backend("auto", 1000, 10) == "exact"
    assert resolve_backend("auto", 1_000_000, 10) in ("hnsw", "ivf", "gpu")
    assert resolve_backend("auto", 100, 10, sparse_input=True) == "sklearn"
    # A caller that rebuilds its graph often lowers the approximate threshold.
    lowered = resolve_backend("auto", 50_000, 10, approx_min_rows=20_000)
    assert lowered == ("gpu" if _gpu_available() else "ivf")
    assert resolve_backend("auto", 10_000, 10, approx_min_rows=20_000) in (
        "exact",
        "gpu",
    )
    with pytest.raises(ValueError, match="backend='nope'"):
        resolve_backend("nope", 10, 2)
    with pytest.raises(ValueError, match="approx_min_rows=0 must be a positive int"):
        resolve_backend("auto", 10, 2, approx_min_rows=0)


def test_gpu_backend_without_faiss_gpu_warns_and_searches_on_cpu(X):
    from skssl.graph import _gpu_available

    if _gpu_available():
        pytest.skip("faiss sees a GPU here: tests/test_gpu.py covers the GPU search")
    with pytest.warns(UserWarning, match="backend='gpu'.*CPU.*'exact'"):
        knn = knn_search(X, 5, backend="gpu")
    exact = knn_search(X, 5, backend="exact")
    assert knn.backend == "exact"
    np.testing.assert_array_equal(knn.indices, exact.indices)
    with pytest.warns(UserWarning, match="backend='gpu'"):
        graph = KNNGraph(5, backend="gpu").fit(X)
    assert graph.backend_ == "exact"


@pytest.mark.parametrize("k", [0, 300, 301])
def test_n_neighbors_out_of_range(X, k):
    with pytest.raises(ValueError, match=f"n_neighbors={k}"):
        knn_search(X, k)


def test_power_kernel_is_dlp_eq9(X):
    knn = knn_search(X, 5, metric="cosine", backend="exact")
    w = kernel_weights(knn.indices, knn.scores, metric="cosine", gamma=3.0)
    assert np.allclose(w, np.maximum(knn.scores, 0) ** 3)
    with pytest.raises(ValueError, match="kernel='power'"):
        kernel_weights(knn.indices, knn.scores, metric="euclidean", kernel="power")


def test_gaussian_local_scaling(X):
    knn = knn_search(X, 8, metric="euclidean", backend="exact")
    sigma = local_scales(knn.indices, knn.scores, metric="euclidean", local_scale=7)
    assert np.allclose(sigma, np.sqrt(knn.scores[:, 6]), rtol=1e-5)
    W = affinity_matrix(knn, kernel="gaussian", sigma=sigma, symmetrize="max")
    i, j = 3, knn.indices[3, 0]
    expected = np.exp(-knn.scores[3, 0] / (sigma[i] * sigma[j]))
    assert W[i, j] >= expected - 1e-6  # max with the reverse edge
    assert np.all(W.data <= 1.0 + 1e-12)


@pytest.mark.parametrize("symmetrize", ["sum", "max", "mutual"])
@pytest.mark.parametrize("kernel", ["power", "gaussian", "binary"])
def test_affinity_symmetric_nonnegative_zero_diagonal(X, symmetrize, kernel):
    W = KNNGraph(6, metric="cosine", kernel=kernel, symmetrize=symmetrize).fit(X)
    W = W.affinity_
    assert sp.issparse(W)
    assert abs(W - W.T).max() == 0
    assert W.diagonal().max() == 0
    assert W.data.min() > 0
    assert np.all(np.isfinite(W.data))


def test_symmetrize_relations(X):
    knn = knn_search(X, 6, metric="cosine", backend="exact")
    A = affinity_matrix(knn, symmetrize="sum")
    M = affinity_matrix(knn, symmetrize="max")
    U = affinity_matrix(knn, symmetrize="mutual")
    assert U.nnz <= M.nnz == A.nnz
    assert (M - U).min() >= 0
    assert np.allclose((A - M).toarray(), U.toarray())  # a + b = max + min


def test_duplicates_give_finite_gaussian_weights():
    X = np.vstack([np.zeros((12, 2)), np.random.default_rng(0).normal(size=(30, 2))])
    W = KNNGraph(5, metric="euclidean", kernel="gaussian").fit(X).affinity_
    assert np.all(np.isfinite(W.data))


def test_normalize_affinity_guards_zero_degree():
    W = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0.0]]))
    Wn, degree = normalize_affinity(W)
    assert degree.tolist() == [1, 1, 0]
    assert np.all(np.isfinite(Wn.toarray()))
    assert Wn[2].nnz == 0
    eig = np.linalg.eigvalsh(Wn.toarray())
    assert eig.max() <= 1 + 1e-12 and eig.min() >= -1 - 1e-12


def test_zero_rows_cosine_do_not_nan():
    X = np.vstack([np.zeros((2, 3)), np.random.default_rng(0).normal(size=(20, 3))])
    W = KNNGraph(4, metric="cosine", kernel="power").fit(X).affinity_
    Wn, _ = normalize_affinity(W)
    assert np.all(np.isfinite(Wn.data))


def test_precomputed_affinity_validated():
    A = sp.random(20, 20, density=0.2, random_state=0)
    W = precomputed_affinity(A)
    assert abs(W - W.T).max() == 0 and W.diagonal().max() == 0
    with pytest.raises(ValueError, match="square"):
        precomputed_affinity(np.ones((3, 4)))
    with pytest.raises(ValueError, match="non-negative"):
        precomputed_affinity(-np.eye(3))


@pytest.mark.parametrize("symmetric", [True, False])
def test_precomputed_affinity_drops_the_diagonal_and_leaves_the_input(symmetric):
    # Raw CSR arrays: a diagonal stored on some rows only (2 at (0, 0), an
    # explicit zero at (2, 2)), (0, 1) stored twice (0.5 + 0.5) and an
    # explicit zero at (1, 2). The result is the same matrix without them
    # (symmetrized when asked to be), and the caller's arrays are neither
    # changed nor shared.
    data = np.array([2.0, 0.5, 0.5, 1.0, 0.0, 0.0, 0.0])
    indices = np.array([0, 1, 1, 0, 2, 1, 2])
    indptr = np.array([0, 3, 5, 7, 7])
    if not symmetric:
        data[4] = 3.0  # (1, 2) = 3 but (2, 1) = 0
    A = sp.csr_matrix((data, indices, indptr), shape=(4, 4))
    before = [a.copy() for a in (A.data, A.indices, A.indptr)]
    W = precomputed_affinity(A)
    expected = np.zeros((4, 4))
    expected[0, 1] = expected[1, 0] = 1.0
    if not symmetric:
        expected = expected * 2
        expected[1, 2] = expected[2, 1] = 3.0
    assert np.array_equal(W.toarray(), expected)
    assert np.all(W.data != 0) and not W.diagonal().any()
    for kept, now in zip(before, (A.data, A.indices, A.indptr), strict=True):
        assert np.array_equal(kept, now)
    assert not np.shares_memory(W.data, A.data)


def test_normalize_affinity_scales_each_entry_by_both_degrees():
    W = sp.random(30, 30, density=0.2, random_state=1, format="csr")
    W = (W + W.T).tocsr()
    Wn, degree = normalize_affinity(W)
    d = np.where(degree > 0, degree, 1.0) ** -0.5
    assert np.allclose(Wn.toarray(), d[:, None] * W.toarray() * d[None, :])
    assert Wn.nnz == W.nnz


def test_gaussian_affinity_needs_local_scales(X):
    knn = knn_search(X, 4, metric="euclidean", backend="exact")
    with pytest.raises(ValueError, match="local scales"):
        affinity_matrix(knn, kernel="gaussian")


# --- the fitted graph object ------------------------------------------------------


def test_knn_graph_fit_records_what_it_used(X):
    graph = KNNGraph(6, random_state=0).fit(X)
    assert graph.backend_ == "exact" and graph.index_params_ == {}
    assert graph.n_samples_fit_ == 300
    assert graph.local_scales_.shape == (300,)
    assert set(graph.timings_) == {"index", "search", "affinity"}
    assert all(t >= 0 for t in graph.timings_.values())
    knn = knn_search(X, 6, metric="euclidean", backend="exact")
    sigma = local_scales(knn.indices, knn.scores, metric="euclidean", local_scale=7)
    expected = affinity_matrix(knn, kernel="gaussian", sigma=sigma)
    assert abs(graph.affinity_ - expected).max() < 1e-12


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(metric="cosine", kernel="power", gamma=2.0),
        dict(kernel="binary"),
        dict(local_scale=3),
    ],
)
def test_query_uses_the_fitted_kernel(X, params):
    # A query equal to a fitted row but not in the index sees that row's own
    # neighbours with the weights the graph gave its edges.
    graph = KNNGraph(5, **params).fit(X[1:])
    indices, weights = graph.query(X[:1])
    assert indices.shape == weights.shape == (1, 5)
    assert np.all(weights > 0) and np.all(np.isfinite(weights))
    full = KNNGraph(5, **params).fit(X)
    knn = knn_search(X, 5, metric=full.metric, backend="exact")
    assert set(indices[0] + 1) == set(knn.indices[0])
    if full.kernel != "gaussian":  # Gaussian scales depend on the other rows
        expected = kernel_weights(
            knn.indices[:1],
            knn.scores[:1],
            metric=full.metric,
            kernel=full.kernel,
            gamma=full.gamma,
        )
        assert np.allclose(np.sort(weights[0]), np.sort(expected[0]), rtol=1e-5)


def test_set_params_after_fit_does_not_change_queries(X):
    graph = KNNGraph(5).fit(X)
    before = graph.query(X[:3])
    graph.set_params(n_neighbors=0, kernel="binary")
    after = graph.query(X[:3])
    assert np.array_equal(before[0], after[0]) and np.allclose(before[1], after[1])


def test_knn_graph_pickles_and_queries_after(X):
    graph = KNNGraph(4).fit(X)
    restored = pickle.loads(pickle.dumps(graph))
    a, b = graph.query(X[:7]), restored.query(X[:7])
    assert np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1])


def test_knn_graph_precomputed_queries_are_rows_of_affinities():
    A = sp.random(30, 30, density=0.3, random_state=0)
    graph = KNNGraph(backend="precomputed").fit(A)
    assert graph.backend_ == "precomputed" and graph.index_ is None
    Q = sp.random(4, 30, density=0.2, random_state=1, format="csr")
    indices, weights = graph.query(Q)
    rebuilt = np.zeros((4, 30))
    for q in range(4):
        keep = indices[q] >= 0
        rebuilt[q, indices[q, keep]] = weights[q, keep]
    assert np.allclose(rebuilt, Q.toarray())
    with pytest.raises(ValueError, match=r"\(n_queries, 30\)"):
        graph.query(np.ones((2, 29)))
    with pytest.raises(ValueError, match="non-negative"):
        graph.query(-np.ones((2, 30)))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_neighbors=0), "n_neighbors"),
        (dict(n_neighbors=300), "n_neighbors=300 must be smaller"),
        (dict(metric="manhattan"), "metric"),
        (dict(kernel="power"), "kernel='power' needs similarities"),
        (dict(local_scale=0), "local_scale"),
        (dict(backend="annoy"), "backend"),
        (dict(index_params={"efSearch": 0}), "efSearch"),
        (dict(index_params={"nprobes": 4}), "unknown key"),
    ],
)
def test_knn_graph_bad_parameters(X, params, match):
    with pytest.raises(ValueError, match=match):
        KNNGraph(**params).fit(X)


def test_query_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        KNNGraph().query(np.zeros((1, 2)))


@pytest.mark.parametrize("backend", ["hnsw", "ivf"])
def test_index_params_reach_faiss(X, backend):
    params = {"M": 8, "efConstruction": 20, "efSearch": 50, "nlist": 5, "nprobe": 2}
    graph = KNNGraph(5, backend=backend, index_params=params, random_state=0).fit(X)
    index = graph.index_._index
    if backend == "hnsw":
        assert graph.index_params_ == {"M": 8, "efConstruction": 20, "efSearch": 50}
        assert index.hnsw.efConstruction == 20 and index.hnsw.efSearch == 50
    else:
        assert graph.index_params_ == {"nlist": 5, "nprobe": 2}
        assert index.nlist == 5 and index.nprobe == 2


def test_index_params_defaults():
    assert resolve_index_params(None, "exact", 10, 7) == {}
    hnsw = resolve_index_params(None, "hnsw", 10**6, 7)
    assert hnsw == {"M": 32, "efConstruction": 40, "efSearch": 24}
    assert resolve_index_params(None, "hnsw", 10**6, 50)["efSearch"] == 102
    # About 2 sqrt(n) lists, probed until about 2,000 candidate rows.
    ivf = resolve_index_params(None, "ivf", 10**6, 7)
    assert ivf == {"nlist": 2000, "nprobe": 4}
    assert resolve_index_params(None, "ivf", 10**5, 7) == {"nlist": 632, "nprobe": 4}
    assert resolve_index_params(None, "ivf", 10**8, 7)["nprobe"] == 4  # at least 4
    assert resolve_index_params(None, "ivf", 100, 7) == {"nlist": 2, "nprobe": 2}
    assert resolve_index_params({"nprobe": 5}, "ivf", 10**6, 7)["nprobe"] == 5
