import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import make_moons
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skssl import ranking as ranking_module
from skssl.ranking import ManifoldRanking, MinedPairs

ALPHA = 0.9


@parametrize_with_checks([ManifoldRanking(n_neighbors=3)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture
def blobs():
    X = np.random.default_rng(0).normal(size=(40, 5))
    return X


@pytest.fixture
def moons():
    X, y = make_moons(300, noise=0.05, random_state=0)
    return X - X.mean(axis=0), y


def raw_features(n_neighbors=10, **params):
    """A ranking for raw 2-D points, where cosine similarity means little."""
    return ManifoldRanking(n_neighbors, metric="euclidean", kernel="gaussian", **params)


def closed_form(ranking):
    """``(1 - alpha) (I - alpha W)^-1``: column i is the score of query e_i."""
    W = ranking.normalized_affinity_.toarray()
    n = W.shape[0]
    return (1 - ranking.alpha) * np.linalg.inv(np.eye(n) - ranking.alpha * W)


def exact(**params):
    return ManifoldRanking(8, alpha=ALPHA, max_iter=1000, tol=1e-12, **params)


@pytest.mark.parametrize("solver", ["cg", "dense"])
def test_database_queries_equal_the_closed_form(blobs, solver):
    ranking = exact(solver=solver).fit(blobs)
    F = closed_form(ranking)
    scores, indices = ranking.rank(n_results=39)
    assert np.allclose(scores, np.take_along_axis(F.T, indices, axis=1), atol=1e-12)
    # The whole ranking: every other row, in the closed form's order.
    np.fill_diagonal(F, -np.inf)
    expected = -np.sort(-F.T, axis=1)[:, :39]
    assert np.allclose(scores, expected, atol=1e-12)


def test_new_queries_equal_the_closed_form_of_their_kernel_weights(blobs):
    ranking = exact(n_query_neighbors=4).fit(blobs[:30])
    Q = blobs[30:]
    neighbours, weights = ranking.graph_.query(Q, n_neighbors=4)
    Y = np.zeros((30, len(Q)))
    np.put_along_axis(Y.T, neighbours, weights, axis=1)
    F = closed_form(ranking) @ Y
    scores, indices = ranking.rank(Q, n_results=30)
    assert np.allclose(scores, np.take_along_axis(F.T, indices, axis=1), atol=1e-12)
    assert np.allclose(scores, -np.sort(-F.T, axis=1), atol=1e-12)


def test_spectral_with_all_but_one_eigenpair_is_the_closed_form_without_it(blobs):
    spectral = exact(solver="spectral", n_components=39).fit(blobs)
    lam, U = np.linalg.eigh(spectral.normalized_affinity_.toarray())
    assert np.allclose(spectral.eigenvalues_, lam[1:])
    dropped = (1 - ALPHA) / (1 - ALPHA * lam[0]) * np.outer(U[:, 0], U[:, 0])
    F = closed_form(spectral) - dropped
    scores, indices = spectral.rank(n_results=39)
    assert np.allclose(scores, np.take_along_axis(F.T, indices, axis=1), atol=1e-12)
    # The dropped high-frequency part is small: the top 5 agree with CG.
    _, cg = exact().fit(blobs).rank(n_results=5)
    assert (indices[:, :5] == cg).mean() > 0.85


@pytest.mark.parametrize(
    "params",
    [{}, {"solver": "dense"}, {"solver": "spectral", "n_components": 20}],
    ids=["cg", "dense", "spectral"],
)
def test_scores_descend_and_a_query_never_returns_itself(moons, params):
    X, y = moons
    ranking = raw_features(**params).fit(X)
    scores, indices = ranking.rank(n_results=50)
    assert scores.shape == indices.shape == (300, 50)
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert not (indices == np.arange(300)[:, None]).any()
    assert all(len(set(row)) == 50 for row in indices.tolist())
    assert (y[indices[:, :10]] == y[:, None]).mean() > 0.95


def test_new_query_equal_to_a_database_row_finds_it_first_when_local(moons):
    X, _ = moons
    ranking = raw_features(alpha=0.5).fit(X)
    _, indices = ranking.rank(X[[3, 100, 250]], n_results=5)
    assert indices[:, 0].tolist() == [3, 100, 250]


@pytest.mark.parametrize("solver", ["cg", "dense", "spectral"])
def test_disconnected_components_rank_last_with_score_zero(solver):
    # Two triangles and an isolated row.
    A = np.zeros((7, 7))
    for i, j in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]:
        A[i, j] = A[j, i] = 1.0
    ranking = ManifoldRanking(
        backend="precomputed", solver=solver, n_components=6, alpha=ALPHA
    ).fit(A)
    assert ranking.component_labels_.tolist() == [0, 0, 0, 1, 1, 1, 2]
    scores, indices = ranking.rank(n_results=6)
    assert np.isfinite(scores).all()
    assert set(indices[0, :2]) == {1, 2} and np.all(scores[0, :2] > 0)
    assert np.all(scores[0, 2:] == 0) and set(indices[0, 2:]) == {3, 4, 5, 6}
    assert np.all(scores[6] == 0)
    # A new query touching the second triangle only.
    scores, indices = ranking.rank([[0, 0, 0, 1.0, 0, 0, 0]], n_results=7)
    assert indices[0, 0] == 3 and set(indices[0, :3]) == {3, 4, 5}
    assert np.all(scores[0, :3] > 0) and np.all(scores[0, 3:] == 0)


def test_query_without_positive_weight_still_joins_its_neighbours(blobs):
    ranking = ManifoldRanking(8).fit(blobs)
    scores, _ = ranking.rank(-blobs[:2], n_results=5)
    assert np.isfinite(scores).all() and np.all(scores[:, 0] > 0)


def test_query_blocks_do_not_change_the_ranking(moons, monkeypatch):
    X, _ = moons
    ranking = ManifoldRanking(10).fit(X)
    expected = ranking.rank(n_results=20)
    monkeypatch.setattr(ranking_module, "_QUERY_BLOCK_VALUES", 300 * 7)
    for got, want in zip(ranking.rank(n_results=20), expected, strict=True):
        assert np.array_equal(got, want)


def test_alpha_is_read_at_rank_time(moons):
    X, _ = moons
    ranking = ManifoldRanking(10, solver="spectral", n_components=30).fit(X)
    refit = clone(ranking).set_params(alpha=0.5).fit(X)
    ranking.set_params(alpha=0.5, solver="cg")
    assert ranking.solver_ == "spectral"
    pairs = zip(ranking.rank(n_results=5), refit.rank(n_results=5), strict=True)
    for got, want in pairs:
        assert np.allclose(got, want)


def test_sparse_input_and_euclidean_gaussian_graph(moons):
    X, y = moons
    ranking = ManifoldRanking(10, metric="euclidean", kernel="gaussian")
    _, indices = ranking.fit(sp.csr_matrix(X)).rank(n_results=10)
    assert ranking.graph_.backend_ == "sklearn"
    assert (y[indices] == y[:, None]).mean() > 0.95


def test_fitted_attributes(moons):
    X, _ = moons
    ranking = ManifoldRanking(10, solver="spectral", n_components=30).fit(X)
    assert ranking.n_features_in_ == 2 and ranking.n_samples_fit_ == 300
    assert ranking.eigenvectors_.shape == (300, 30)
    assert np.all(np.diff(ranking.eigenvalues_) >= 0)
    assert set(ranking.timings_) == {"index", "search", "affinity", "eigenpairs"}
    ranking.set_params(solver="cg").fit(X)
    assert ranking.eigenvalues_ is None and ranking.eigenvectors_ is None


def test_clone_and_pickle(moons):
    X, _ = moons
    ranking = ManifoldRanking(10, solver="spectral", n_components=30).fit(X)
    restored = pickle.loads(pickle.dumps(ranking))
    for got, want in zip(restored.rank(X[:5]), ranking.rank(X[:5]), strict=True):
        assert np.array_equal(got, want)
    assert clone(ranking).get_params() == ranking.get_params()
    assert not hasattr(clone(ranking), "graph_")


def test_mined_pairs_follow_their_definitions(moons):
    X, _ = moons
    ranking = raw_features().fit(X)
    k_e = k_m = 20
    pairs = ranking.mine_pairs(k_euclidean=k_e, k_manifold=k_m, n_positives=15)
    assert isinstance(pairs, MinedPairs)
    assert pairs.anchors.tolist() == list(range(300))
    assert pairs.positives.shape == (300, 15) and pairs.negatives.shape == (300, 20)
    _, manifold = ranking.rank(n_results=k_m)
    distance = ((X[:, None] - X[None]) ** 2).sum(axis=2)
    np.fill_diagonal(distance, np.inf)
    euclidean = np.argsort(distance, axis=1, kind="stable")[:, :k_e]
    n_pos = n_neg = 0
    for a in range(300):
        pos = pairs.positives[a][pairs.positives[a] >= 0]
        neg = pairs.negatives[a][pairs.negatives[a] >= 0]
        n_pos, n_neg = n_pos + pos.size, n_neg + neg.size
        # Positives: manifold top-k, never Euclidean top-k; negatives: the reverse.
        assert not set(pos) & set(euclidean[a]) and not set(neg) & set(manifold[a])
        in_e, in_m = set(euclidean[a]), set(manifold[a])
        assert pos.tolist() == [r for r in manifold[a] if r not in in_e][:15]
        assert neg.tolist() == [r for r in euclidean[a] if r not in in_m]
        assert a not in set(pos) | set(neg)
        scores = pairs.positive_scores[a, : pos.size]
        assert np.all(scores > 0) and np.all(np.diff(scores) <= 0)
        assert np.all(pairs.positive_scores[a, pos.size :] == 0)
    assert n_pos > 300 and n_neg > 300


def test_mined_negatives_may_lie_in_another_component():
    # Mutual 1-NN pairs {0, 1} and {2, 3}: row 2 is Euclidean-close to row 1
    # but on another component.
    X = np.array([[0.0, 0.0], [0.0, 0.1], [0.0, 0.25], [0.0, 0.35]])
    ranking = ManifoldRanking(1, metric="euclidean", kernel="gaussian").fit(X)
    assert ranking.component_labels_.tolist() == [0, 0, 1, 1]
    pairs = ranking.mine_pairs([1], k_euclidean=2, k_manifold=1)
    assert pairs.negatives.tolist() == [[2, -1]]
    assert pairs.negative_scores.tolist() == [[0.0, 0.0]]
    assert pairs.positives.tolist() == [[-1]]


def test_failed_fit_leaves_nothing_fitted_and_refit_keeps_the_previous(moons):
    X, _ = moons
    ranking = ManifoldRanking(10, solver="spectral", n_components=300)
    with pytest.raises(ValueError, match="n_components=300 must be smaller"):
        ranking.fit(X)
    assert not any(k.endswith("_") for k in vars(ranking))
    ranking.set_params(n_components=20).fit(X)
    graph = ranking.graph_
    with pytest.raises(ValueError, match="n_neighbors=400"):
        ranking.set_params(n_neighbors=400).fit(X)
    assert ranking.graph_ is graph and ranking.eigenvectors_.shape == (300, 20)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda r, X: r.rank(n_results=300), r"n_results=300 must be .* \[1, 299\]"),
        (lambda r, X: r.rank(X[:2], n_results=301), r"n_results=301 .*\[1, 300\]"),
        (lambda r, X: r.rank(n_results=0), "n_results=0"),
        (lambda r, X: r.rank(np.ones((2, 3))), "3 features, but ManifoldRanking"),
        (lambda r, X: r.mine_pairs([0, 300]), r"anchors must be .* \[0, 299\]"),
        (lambda r, X: r.mine_pairs([0.5]), "anchors must be"),
        (lambda r, X: r.mine_pairs(k_euclidean=300), "k_euclidean=300"),
        (lambda r, X: r.mine_pairs(k_manifold=0), "k_manifold=0"),
        (lambda r, X: r.mine_pairs(n_positives=0), "n_positives=0"),
    ],
)
def test_bad_arguments_name_the_argument_and_the_fix(moons, call, match):
    X, _ = moons
    ranking = ManifoldRanking(10).fit(X)
    with pytest.raises(ValueError, match=match):
        call(ranking, X)


def test_bad_parameters_and_unfitted_use(moons):
    X, _ = moons
    with pytest.raises(NotFittedError):
        ManifoldRanking().rank()
    with pytest.raises(ValueError, match="n_neighbors=300 must be smaller"):
        ManifoldRanking(300).fit(X)
    with pytest.raises(ValueError, match="kernel='power' needs similarities"):
        ManifoldRanking(10, metric="euclidean").fit(X)
    with pytest.raises(ValueError, match="'alpha' parameter"):
        ManifoldRanking(alpha=1.0).fit(X)
    ranking = ManifoldRanking(backend="precomputed").fit(np.ones((5, 5)))
    with pytest.raises(ValueError, match="backend='precomputed'; fit it on"):
        ranking.mine_pairs()


def _triangles(count):
    """Affinity of ``count`` disjoint triangles: ``count`` components."""
    A = np.zeros((3 * count, 3 * count))
    for c in range(count):
        for i, j in [(0, 1), (1, 2), (0, 2)]:
            A[3 * c + i, 3 * c + j] = A[3 * c + j, 3 * c + i] = 1.0
    return A


def test_spectral_warns_when_components_fill_the_eigenpairs():
    ranking = ManifoldRanking(backend="precomputed", solver="spectral", n_components=8)
    with pytest.warns(UserWarning, match="12 connected components") as caught:
        ranking.fit(_triangles(12))
    (warning,) = [w for w in caught if "connected components" in str(w.message)]
    assert warning.filename == __file__
    assert np.allclose(ranking.eigenvalues_, 1.0)
    # More eigenpairs than components: no warning, and eigenvalue 1 once per
    # component among them.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ranking.set_params(n_components=20).fit(_triangles(12))
    assert np.isclose(ranking.eigenvalues_, 1.0).sum() == 12
