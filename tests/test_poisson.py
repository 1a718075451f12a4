import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from sklearn.base import clone
from sklearn.datasets import load_digits, make_blobs, make_moons
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skssl.datasets import mask_labels
from skssl.graph import KNNGraph
from skssl.poisson import (
    PoissonLearning,
    _class_sizes,
    _volume_assign,
    auto_method,
    balance_scores,
    poisson_mbo,
    poisson_source,
    solve_laplace,
    solve_poisson,
)

# The same expected failure as LabelSpreadingCG, for the same reason.
EXPECTED_FAILED_CHECKS = {
    "check_classifiers_classes": "-1 is the unlabeled marker, not a class",
    "check_non_transformer_estimators_n_iter": (
        "the check labels every row; Laplace learning (method='auto' from 1 % "
        "of the rows labeled) then has no unlabeled row to solve for and runs 0 "
        "iterations, which n_iter_ reports"
    ),
}


@parametrize_with_checks(
    [PoissonLearning(n_neighbors=3)],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y has no unlabeled sample")
        warnings.filterwarnings("ignore", message=".*not connected to any labeled")
        check(estimator)


@pytest.fixture
def moons():
    X, y_true = make_moons(400, noise=0.08, random_state=0)
    return X, mask_labels(y_true, per_class=1, random_state=0), y_true


@pytest.fixture
def small_graph():
    """A tiny connected kNN graph and a few labels of each of three classes."""
    X, y_true = make_blobs(90, centers=3, cluster_std=3.0, random_state=1)
    W = KNNGraph(6).fit(X).affinity_
    assert connected_components(W, directed=False)[0] == 1
    return W, y_true


def _laplacian(W):
    return sp.diags(np.asarray(W.sum(axis=1)).ravel()) - W


# --- the method against GraphLearning ----------------------------------------


def test_same_scores_and_predictions_as_graphlearning(small_graph):
    gl = pytest.importorskip("graphlearning")
    W, y_true = small_graph
    train = np.r_[[np.flatnonzero(y_true == c)[:2] for c in range(3)]].ravel()
    y = np.full(y_true.size, -1)
    y[train] = y_true[train]
    model = gl.ssl.poisson(W, tol=1e-12)
    reference = model.fit(train, y_true[train])
    U = solve_poisson(W, poisson_source(y, 3), tol=1e-12).solution
    assert np.allclose(U, reference, atol=1e-9)
    clf = PoissonLearning(backend="precomputed", method="poisson", tol=1e-10)
    clf.fit(W, y)
    assert clf.method_ == "poisson"
    expected = model.predict()
    expected[train] = y_true[train]
    assert np.array_equal(clf.transduction_, expected)


def test_balance_step_matches_the_papers_scaling(small_graph):
    gl = pytest.importorskip("graphlearning")
    W, y_true = small_graph
    # Unequal label counts: 4, 2 and 1 labels.
    train = np.r_[
        np.flatnonzero(y_true == 0)[:4],
        np.flatnonzero(y_true == 1)[:2],
        np.flatnonzero(y_true == 2)[:1],
    ]
    y = np.full(y_true.size, -1)
    y[train] = y_true[train]
    raw = gl.ssl.poisson(W, tol=1e-12).fit(train, y_true[train])
    share = np.bincount(y_true[train]) / train.size
    prior = np.array([0.5, 0.3, 0.2])
    for given, weights in ((None, np.full(3, 1 / 3)), (prior, prior)):
        clf = PoissonLearning(
            backend="precomputed", method="poisson", class_prior=given, tol=1e-10
        )
        clf.fit(W, y)
        assert np.allclose(clf.scores_, raw * weights / share, atol=1e-9)
        expected = (raw * weights / share).argmax(axis=1)
        unl = y == -1
        assert np.array_equal(clf.transduction_[unl], expected[unl])


def test_laplace_method_matches_graphlearnings_mean_shifted_laplace(small_graph):
    gl = pytest.importorskip("graphlearning")
    W, y_true = small_graph
    y = mask_labels(y_true, per_class=3, random_state=0)
    train = np.flatnonzero(y >= 0)
    model = gl.ssl.laplace(W, tol=1e-12)
    harmonic = model.fit(train, y[train])
    U = solve_laplace(W, y, 3, tol=1e-12).solution
    assert np.allclose(U, harmonic, atol=1e-8)
    clf = PoissonLearning(backend="precomputed", tol=1e-10).fit(W, y)
    assert clf.method_ == "laplace"
    unl = y == -1
    assert np.allclose(clf.scores_[unl].mean(axis=0), 0, atol=1e-12)
    # GraphLearning shifts by the mean over all rows; with as many labels in
    # every class the two shifts differ by one constant, so the labels agree.
    shifted = gl.ssl.laplace(W, tol=1e-12, mean_shift=True).fit(train, y[train])
    assert np.array_equal(clf.transduction_[unl], shifted.argmax(axis=1)[unl])
    assert np.array_equal(clf.transduction_[train], y[train])


def test_laplace_solution_is_harmonic_off_the_labels(small_graph):
    W, y_true = small_graph
    y = mask_labels(y_true, per_class=2, random_state=1)
    result = solve_laplace(W, y, 3, tol=1e-12)
    U, unl = result.solution, y == -1
    assert result.converged and result.n_iter >= 1
    assert np.allclose(U[~unl], np.eye(3)[y[~unl]])
    assert np.allclose((_laplacian(W) @ U)[unl], 0, atol=1e-9)
    # The dense closed form L_uu^-1 W_ul Y_l.
    L = _laplacian(W).toarray()
    dense = np.linalg.solve(L[np.ix_(unl, unl)], W.toarray()[np.ix_(unl, ~unl)])
    assert np.allclose(U[unl], dense @ np.eye(3)[y[~unl]], atol=1e-9)
    assert np.allclose(U.sum(axis=1), 1)


def test_laplace_stops_at_max_iter_with_a_warning(small_graph):
    W, y_true = small_graph
    y = mask_labels(y_true, per_class=2, random_state=1)
    with pytest.warns(ConvergenceWarning, match="max_iter=2") as record:
        result = solve_laplace(W, y, 3, tol=1e-12, max_iter=2)
    assert not result.converged and result.n_iter == 2
    assert record[0].filename == __file__
    with pytest.warns(ConvergenceWarning, match="max_iter=2") as record:
        PoissonLearning(backend="precomputed", max_iter=2).fit(W, y)
    assert record[0].filename == __file__


@pytest.fixture(scope="module")
def rate_graph():
    """600 rows in 3 blobs: 1 % of the rows is 6 labels."""
    X, y_true = make_blobs(600, centers=3, cluster_std=2.0, random_state=2)
    return KNNGraph(7).fit(X).affinity_, y_true


@pytest.mark.parametrize(
    "per_class, params, expected",
    [
        (1, {}, "poisson"),
        (2, {}, "laplace"),
        (5, {}, "laplace"),
        (5, {"class_prior": [1, 1, 1]}, "poisson"),
        (5, {"mbo": True}, "poisson"),
        (1, {"method": "laplace"}, "laplace"),
        (5, {"method": "poisson"}, "poisson"),
    ],
)
def test_auto_method_follows_the_label_rate(rate_graph, per_class, params, expected):
    W, y_true = rate_graph
    y = mask_labels(y_true, per_class=per_class, random_state=0)
    clf = PoissonLearning(backend="precomputed", **params).fit(W, y)
    assert clf.method_ == expected
    reference = PoissonLearning(
        backend="precomputed", **{**params, "method": expected}
    ).fit(W, y)
    assert np.array_equal(clf.transduction_, reference.transduction_)


def test_auto_method_counts_labeled_rows_against_all_rows(rate_graph, small_graph):
    W, y_true = rate_graph
    y = np.full(y_true.size, -1)
    # 4 + 1 + 1 labels: 6 of 600 rows, 1 %, however they fall in the classes.
    for c, k in ((0, 4), (1, 1), (2, 1)):
        y[np.flatnonzero(y_true == c)[:k]] = c
    assert PoissonLearning(backend="precomputed").fit(W, y).method_ == "laplace"
    y[np.flatnonzero(y_true == 0)[3]] = -1
    assert PoissonLearning(backend="precomputed").fit(W, y).method_ == "poisson"
    # One label per class on 90 rows is 3 %: Laplace learning.
    W_small, y_small = small_graph
    y = mask_labels(y_small, per_class=1, random_state=0)
    assert PoissonLearning(backend="precomputed").fit(W_small, y).method_ == "laplace"
    assert auto_method(5, 600) == "poisson" and auto_method(6, 600) == "laplace"


@pytest.mark.parametrize(
    "n_labeled, n_samples, match",
    [
        (-1, 600, "n_labeled=-1"),
        (601, 600, "n_labeled=601"),
        (5, 0, "n_samples=0"),
        (2.5, 600, "n_labeled=2.5"),
    ],
)
def test_auto_method_rejects_bad_counts(n_labeled, n_samples, match):
    with pytest.raises(ValueError, match=match):
        auto_method(n_labeled, n_samples)


@pytest.mark.parametrize("params", [{"class_prior": [1, 2]}, {"mbo": True}])
def test_laplace_method_refuses_poisson_only_options(moons, params):
    X, y, _ = moons
    with pytest.raises(ValueError, match="method='laplace' with class_prior"):
        PoissonLearning(method="laplace", **params).fit(X, y)


def test_laplace_method_with_an_unlabeled_component_warns_without_nan():
    X, y_true = make_blobs(
        [60, 60, 60], centers=[[0, 0], [30, 0], [0, 30]], random_state=0
    )
    y = np.full(y_true.size, -1)
    for c in (0, 1):
        y[np.flatnonzero(y_true == c)[:3]] = c
    with pytest.warns(UserWarning, match="not connected to any labeled"):
        clf = PoissonLearning(method="laplace").fit(X, y)
    assert np.all(np.isfinite(clf.label_distributions_))
    assert np.allclose(clf.label_distributions_[y_true == 2], 0.5)
    assert np.array_equal(clf.transduction_[y_true < 2], y_true[y_true < 2])


def test_balance_scores_without_labels_of_a_class():
    U = np.ones((2, 3))
    out = balance_scores(U, np.array([0, 0, 1, -1]), 3, class_prior=[2, 1, 1])
    assert np.allclose(out[0], [0.5 / (2 / 3), 0.25 / (1 / 3), 0.0])


# --- the solution ------------------------------------------------------------


def test_solution_solves_the_equation_with_degree_weighted_mean_zero(small_graph):
    W, y_true = small_graph
    y = mask_labels(y_true, per_class=2, random_state=0)
    B = poisson_source(y, 3)
    assert np.allclose(B.sum(axis=0), 0)
    assert np.all(B[y == -1] == 0)
    result = solve_poisson(W, B, tol=1e-10)
    U = result.solution
    degree = np.asarray(W.sum(axis=1)).ravel()
    assert np.allclose(degree @ U, 0, atol=1e-10)
    assert np.allclose(_laplacian(W) @ U, B, atol=1e-7)
    assert result.converged and result.residuals[-1] <= 1e-10


def test_solution_is_mean_zero_on_each_component():
    rng = np.random.default_rng(0)
    A = sp.random(40, 40, density=0.3, random_state=0)
    A = sp.block_diag([A + A.T, A + A.T]).tocsr()
    A.setdiag(0)
    A.eliminate_zeros()
    n_components, component = connected_components(A, directed=False)
    assert n_components == 2
    y = np.full(80, -1)
    y[rng.choice(40, 4, replace=False)] = [0, 1, 2, 0]
    y[40 + rng.choice(40, 3, replace=False)] = [1, 2, 2]
    B = poisson_source(y, 3, components=component)
    U = solve_poisson(A, B, tol=1e-10).solution
    degree = np.asarray(A.sum(axis=1)).ravel()
    for c in range(2):
        rows = component == c
        assert np.allclose(B[rows].sum(axis=0), 0)
        assert np.allclose(degree[rows] @ U[rows], 0, atol=1e-10)
    assert np.allclose(_laplacian(A) @ U, B, atol=1e-7)


def test_warm_start_and_one_column(small_graph):
    W, y_true = small_graph
    y = mask_labels(y_true, per_class=1, random_state=0)
    B = poisson_source(y, 3)
    cold = solve_poisson(W, B, tol=1e-8)
    warm = solve_poisson(W, B, tol=1e-8, x0=cold.solution)
    assert warm.n_iter < cold.n_iter / 2
    single = solve_poisson(W, B[:, 0], tol=1e-8)
    assert single.solution.shape == (W.shape[0],)
    assert np.allclose(single.solution, cold.solution[:, 0], atol=1e-6)


def test_solver_shape_mismatch():
    with pytest.raises(ValueError, match="W has shape"):
        solve_poisson(sp.eye(4, format="csr"), np.zeros((3, 2)))


# --- the estimator -----------------------------------------------------------


def test_fitted_attributes_and_accuracy_at_one_label(moons):
    X, y, y_true = moons
    clf = PoissonLearning().fit(X, y)
    assert clf.classes_.tolist() == [0, 1]
    assert clf.transduction_.shape == (400,)
    P = clf.label_distributions_
    assert P.shape == (400, 2) and np.allclose(P.sum(axis=1), 1)
    unl = y == -1
    assert np.array_equal(P[unl].argmax(axis=1), clf.scores_[unl].argmax(axis=1))
    assert clf.certainty_.min() >= 0 and clf.certainty_.max() <= 1
    assert clf.n_iter_ == len(clf.residuals_) - 1 > 0
    assert clf.residuals_[-1] <= clf.tol
    assert set(clf.timings_) == {"index", "search", "affinity", "solve"}
    assert clf.backend_ == "exact" and clf.graph_.n_samples_fit_ == 400
    assert (clf.transduction_[unl] == y_true[unl]).mean() > 0.95


def test_labeled_rows_keep_their_label():
    X, y_true = load_digits(return_X_y=True)
    y = mask_labels(y_true, per_class=3, random_state=0)
    clf = PoissonLearning().fit(X, y)
    lab = y != -1
    assert np.array_equal(clf.transduction_[lab], y[lab])
    assert np.all(clf.certainty_[lab] == 1)
    assert (clf.transduction_[~lab] == y_true[~lab]).mean() > 0.9


def test_out_of_sample_predict(moons):
    X, y, _ = moons
    X_new, y_new = make_moons(100, noise=0.08, random_state=1)
    clf = PoissonLearning().fit(X, y)
    proba = clf.predict_proba(X_new)
    assert proba.shape == (100, 2) and np.allclose(proba.sum(axis=1), 1)
    assert np.array_equal(clf.classes_[proba.argmax(1)], clf.predict(X_new))
    assert clf.score(X_new, y_new) > 0.9
    assert (clf.predict(X) == clf.transduction_).mean() > 0.95


def test_one_class_absent_from_the_labels():
    X, y_true = make_blobs(150, centers=3, random_state=0)
    y = np.full(150, -1)
    y[np.flatnonzero(y_true == 0)[:2]] = 0
    y[np.flatnonzero(y_true == 2)[:2]] = 2
    clf = PoissonLearning().fit(X, y)
    assert clf.classes_.tolist() == [0, 2]
    assert set(clf.transduction_) == {0, 2}
    assert clf.label_distributions_.shape == (150, 2)
    assert set(clf.predict(X[:10])) <= {0, 2}
    with pytest.raises(ValueError, match=r"class_prior has shape \(3,\).*2 classes"):
        PoissonLearning(class_prior=[1, 1, 1]).fit(X, y)


def test_disconnected_components_warn_and_give_no_nan():
    rng = np.random.default_rng(0)
    blobs = [rng.normal(size=(30, 2)) + shift for shift in (0, 1000, 2000)]
    X = np.vstack(blobs)
    y = np.full(90, -1)
    y[[0, 1]] = [0, 1]  # two classes in the first part
    y[[30, 31]] = [1, 1]  # the second part: one class only
    # the third part: no label at all
    with pytest.warns(UserWarning, match="30 of 90 samples are not connected"):
        clf = PoissonLearning(n_neighbors=5).fit(X, y)
    P = clf.label_distributions_
    assert np.all(np.isfinite(P)) and np.all(np.isfinite(clf.scores_))
    assert np.allclose(P[60:], 0.5) and np.all(clf.certainty_[60:] == 0)
    assert np.all(clf.transduction_[30:60] == 1)
    assert set(clf.transduction_[:30]) == {0, 1}
    assert clf.residuals_[-1] <= clf.tol


def test_duplicate_rows():
    X, y_true = make_moons(60, noise=0.05, random_state=0)
    X, y_true = np.repeat(X, 10, axis=0), np.repeat(y_true, 10)
    y = np.full(600, -1)
    y[[0, 10]] = y_true[[0, 10]]
    y[np.flatnonzero(y_true == 1)[0]] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf = PoissonLearning(n_neighbors=5).fit(X, y)
    assert np.all(np.isfinite(clf.label_distributions_))
    assert np.allclose(clf.label_distributions_.sum(axis=1), 1)
    # Each copy of a row gets the same label.
    assert np.all(clf.transduction_.reshape(60, 10) == clf.transduction_[::10, None])


def test_string_labels_and_float_labels(moons):
    X, y, _ = moons
    names = np.array(["cat", "dog"], dtype=object)
    y_str = np.where(y == -1, -1, names[np.maximum(y, 0)]).astype(object)
    ref = PoissonLearning().fit(X, y)
    clf = PoissonLearning().fit(X, y_str)
    assert clf.classes_.tolist() == ["cat", "dog"]
    assert np.array_equal(clf.transduction_, names[ref.transduction_])
    assert PoissonLearning().fit(X, y.astype(float)).classes_.tolist() == [0.0, 1.0]


def test_permutation_equivariance(moons):
    X, y, _ = moons
    perm = np.random.default_rng(0).permutation(len(y))
    a = PoissonLearning(tol=1e-10).fit(X, y)
    b = PoissonLearning(tol=1e-10).fit(X[perm], y[perm])
    assert np.allclose(a.scores_[perm], b.scores_, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*not connected to any labeled")
def test_sparse_and_precomputed_input(moons):
    X, y, _ = moons
    ref = PoissonLearning(tol=1e-10).fit(X, y)
    W = KNNGraph(7).fit(X).affinity_
    pre = PoissonLearning(backend="precomputed", tol=1e-10).fit(W, y)
    assert np.allclose(pre.scores_, ref.scores_, atol=1e-8)
    assert np.array_equal(pre.predict(W[:10]), pre.transduction_[:10])
    clf = PoissonLearning(metric="cosine").fit(sp.csr_matrix(X), y)
    assert clf.backend_ == "sklearn"


def test_convergence_warning(moons):
    X, y, _ = moons
    with pytest.warns(ConvergenceWarning, match="max_iter=2") as record:
        PoissonLearning(max_iter=2).fit(X, y)
    assert record[0].filename == __file__


def test_verbose_prints_and_silent_by_default(moons, capsys):
    X, y, _ = moons
    PoissonLearning().fit(X, y)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    PoissonLearning(verbose=1).fit(X, y)
    assert "iterations=" in capsys.readouterr().out


# --- Poisson MBO -------------------------------------------------------------


def test_mbo_with_known_proportions_helps_and_keeps_them():
    X, y_true = make_blobs(
        [150, 50], centers=[[0, 0], [2.2, 0]], cluster_std=1.0, random_state=0
    )
    y = mask_labels(y_true, per_class=1, random_state=0)
    unl = y == -1
    prior = np.bincount(y_true) / y_true.size
    plain = PoissonLearning(class_prior=prior).fit(X, y)
    mbo = PoissonLearning(class_prior=prior, mbo=True).fit(X, y)
    assert "mbo" in mbo.timings_
    acc = [(m.transduction_[unl] == y_true[unl]).mean() for m in (plain, mbo)]
    assert acc[1] > acc[0] + 0.1
    sizes = np.bincount(mbo.transduction_) / y_true.size
    assert np.allclose(sizes, prior, atol=0.02)
    assert np.allclose(mbo.label_distributions_.sum(axis=1), 1)
    assert np.array_equal(mbo.transduction_[~unl], y[~unl])


def test_mbo_keeps_class_sizes_without_prior(small_graph):
    W, y_true = small_graph
    y = mask_labels(y_true, per_class=1, random_state=0)
    start = np.r_[np.zeros(40, int), np.ones(30, int), np.full(20, 2)]
    labels = poisson_mbo(W, y, start, n_outer=3)
    assert np.array_equal(np.bincount(labels), [40, 30, 20])


def test_volume_assign_meets_sizes_and_prefers_high_scores():
    S = np.random.default_rng(0).normal(size=(500, 4))
    sizes = _class_sizes([0.4, 0.3, 0.2, 0.1], 500)
    assert sizes.tolist() == [200, 150, 100, 50]
    labels = _volume_assign(S, sizes)
    assert np.abs(np.bincount(labels, minlength=4) - sizes).max() <= 1
    # Better than filling the classes at random with the same sizes.
    chosen = S[np.arange(500), labels].sum()
    shuffled = np.random.default_rng(1).permutation(np.repeat(np.arange(4), sizes))
    assert chosen > S[np.arange(500), shuffled].sum()


# --- bad input and fitted state ----------------------------------------------


def _fitted(clf):
    return [k for k in vars(clf) if k.endswith("_")]


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(class_prior=[1.0, -1.0]), r"class_prior=\[1.0, -1.0\] must be"),
        (dict(class_prior=[0.0, 0.0]), "positive sum"),
        (dict(class_prior=[[0.5, 0.5]]), r"shape \(1, 2\)"),
        (dict(tol=1.0), "'tol' parameter"),
        (dict(max_iter=0), "'max_iter' parameter"),
        (dict(mbo="yes"), "'mbo' parameter"),
        (dict(n_neighbors=0), "'n_neighbors' parameter"),
        (dict(kernel="power", metric="euclidean"), "kernel='power'"),
        (dict(n_neighbors=20), "n_neighbors=20 must be smaller than"),
        (dict(method="spectral"), "'method' parameter"),
        (dict(method="laplace", class_prior=[1, 1]), "method='laplace' with"),
    ],
)
def test_bad_parameters(params, match):
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.r_[[0, 1], np.full(18, -1)]
    clf = PoissonLearning(n_neighbors=3).set_params(**params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert _fitted(clf) == []


@pytest.mark.parametrize(
    "y, match",
    [
        (np.full(50, -1), "no labeled sample"),
        (np.r_[np.zeros(5, int), np.full(45, -1)], "1 labeled class"),
        (np.r_[[0.0, 1.0, np.nan], np.full(47, -1.0)], "NaN"),
    ],
)
def test_bad_targets(y, match):
    X = np.random.default_rng(0).normal(size=(50, 3))
    clf = PoissonLearning(n_neighbors=3)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert _fitted(clf) == []
    with pytest.raises(NotFittedError):
        clf.predict(X[:2])


def test_failed_refit_keeps_the_previous_fit_whole(moons):
    X, y, _ = moons
    clf = PoissonLearning().fit(X, y)
    state = dict(vars(clf))
    expected = clf.predict(X[:30])
    with pytest.raises(ValueError):
        clf.set_params(class_prior=[1, 2, 3]).fit(X, y)
    assert all(vars(clf)[k] is v for k, v in state.items() if k.endswith("_"))
    assert np.array_equal(clf.predict(X[:30]), expected)


def test_predict_wrong_n_features(moons):
    X, y, _ = moons
    clf = PoissonLearning().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.zeros((3, 5)))


@pytest.mark.filterwarnings("ignore:y has no unlabeled sample")
def test_pipeline_grid_search_clone_pickle():
    X, y_true = load_digits(return_X_y=True)
    y = mask_labels(y_true, per_class=10, random_state=0)
    pipe = make_pipeline(StandardScaler(), PoissonLearning())
    grid = GridSearchCV(
        pipe, {"poissonlearning__n_neighbors": [5, 10]}, cv=2, error_score="raise"
    )
    lab = y != -1
    grid.fit(X[lab], y[lab])
    assert grid.best_params_["poissonlearning__n_neighbors"] in (5, 10)
    clf = PoissonLearning(class_prior=np.full(10, 0.1)).fit(X, y)
    assert np.array_equal(clone(clf).get_params()["class_prior"], clf.class_prior)
    restored = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(restored.predict(X[:50]), clf.predict(X[:50]))
