import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_digits, make_blobs, make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from skssl import LabelSpreadingCG
from skssl.datasets import mask_labels
from skssl.graph import KNNGraph

# Common checks fit on fully labeled data, which is legitimate (nothing to
# spread) but warns each time; they only need a small graph.
EXPECTED_FAILED_CHECKS = {
    # Its last problem labels the classes [-1, 1], but -1 marks unlabeled
    # samples in every semi-supervised estimator (scikit-learn exempts its own
    # LabelSpreading from this case by name).
    "check_classifiers_classes": "-1 is the unlabeled marker, not a class",
}


def _checks_estimator():
    return LabelSpreadingCG(n_neighbors=3)


@parametrize_with_checks(
    [_checks_estimator()],
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
    y = mask_labels(y_true, per_class=2, random_state=0)
    return X, y, y_true


@pytest.fixture
def digits():
    X, y_true = load_digits(return_X_y=True)
    return X, mask_labels(y_true, per_class=10, random_state=0), y_true


def test_fitted_attributes(moons):
    X, y, y_true = moons
    clf = LabelSpreadingCG().fit(X, y)
    assert clf.classes_.tolist() == [0, 1]
    assert clf.transduction_.shape == (400,)
    assert clf.label_distributions_.shape == (400, 2)
    assert np.allclose(clf.label_distributions_.sum(1), 1)
    assert clf.certainty_.min() >= 0 and clf.certainty_.max() <= 1
    assert clf.backend_ == "exact"
    assert clf.n_iter_ == len(clf.residuals_) - 1
    assert clf.residuals_[-1] <= clf.tol
    assert clf.n_features_in_ == 2
    unl = y == -1
    assert (clf.transduction_[unl] == y_true[unl]).mean() > 0.97


def test_labeled_points_keep_their_label(digits):
    X, y, _ = digits
    clf = LabelSpreadingCG(n_neighbors=15).fit(X, y)
    lab = y != -1
    assert np.array_equal(clf.transduction_[lab], y[lab])
    assert np.all(clf.certainty_[lab] == 1)


def test_digits_accuracy_and_out_of_sample(digits):
    X, y, y_true = digits
    clf = LabelSpreadingCG().fit(X[:1500], y[:1500])
    unl = y[:1500] == -1
    assert (clf.transduction_[unl] == y_true[:1500][unl]).mean() > 0.9
    assert clf.score(X[1500:], y_true[1500:]) > 0.9
    proba = clf.predict_proba(X[1500:])
    assert np.allclose(proba.sum(1), 1)
    assert np.array_equal(clf.classes_[proba.argmax(1)], clf.predict(X[1500:]))


def test_predict_on_fitted_rows_agrees_with_transduction(moons):
    X, y, _ = moons
    clf = LabelSpreadingCG().fit(X, y)
    # A fitted row's neighbours (itself excluded at fit time) vote the same way
    # almost everywhere on a clean manifold.
    assert (clf.predict(X) == clf.transduction_).mean() > 0.97


def test_string_and_noncontiguous_labels(moons):
    X, y, _ = moons
    names = np.array(["cat", "dog"], dtype=object)
    y_str = np.where(y == -1, -1, names[np.maximum(y, 0)]).astype(object)
    clf = LabelSpreadingCG().fit(X, y_str)
    assert clf.classes_.tolist() == ["cat", "dog"]
    assert set(clf.predict(X[:20])) <= {"cat", "dog"}
    y_int = np.where(y == -1, -1, np.where(y == 0, 3, 17))
    ref = LabelSpreadingCG().fit(X, y)
    clf = LabelSpreadingCG().fit(X, y_int)
    assert clf.classes_.tolist() == [3, 17]
    assert np.array_equal(clf.transduction_, np.where(ref.transduction_ == 0, 3, 17))


def test_float_integral_labels_accepted(moons):
    X, y, _ = moons
    clf = LabelSpreadingCG().fit(X, y.astype(float))
    assert clf.classes_.tolist() == [0.0, 1.0]


def test_permutation_equivariance(moons):
    X, y, _ = moons
    perm = np.random.default_rng(0).permutation(len(y))
    a = LabelSpreadingCG(tol=1e-10).fit(X, y)
    b = LabelSpreadingCG(tol=1e-10).fit(X[perm], y[perm])
    assert np.allclose(a.label_distributions_[perm], b.label_distributions_, atol=1e-6)


@pytest.mark.parametrize(
    "params",
    [
        dict(metric="cosine", kernel="power"),
        dict(metric="cosine", kernel="gaussian"),
        dict(kernel="binary", symmetrize="mutual", n_neighbors=12),
        dict(backend="hnsw"),
        dict(backend="ivf", random_state=0),
        dict(backend="sklearn"),
        dict(class_mass_normalization=False),
    ],
)
def test_options_all_work(digits, params):
    X, y, y_true = digits
    clf = LabelSpreadingCG(**params).fit(X, y)
    unl = y == -1
    assert (clf.transduction_[unl] == y_true[unl]).mean() > 0.85
    assert clf.predict(X[:5]).shape == (5,)


def test_sparse_input(digits):
    X, y, y_true = digits
    clf = LabelSpreadingCG(metric="cosine").fit(sp.csr_matrix(X), y)
    assert clf.backend_ == "sklearn"
    assert clf.score(sp.csr_matrix(X[:100]), y_true[:100]) > 0.85


def test_precomputed_affinity(moons):
    X, y, y_true = moons
    W = KNNGraph(7).fit(X).affinity_
    clf = LabelSpreadingCG(backend="precomputed").fit(W, y)
    ref = LabelSpreadingCG().fit(X, y)
    assert np.allclose(clf.label_distributions_, ref.label_distributions_, atol=1e-6)
    assert clf.backend_ == "precomputed"
    assert np.array_equal(clf.predict(W[:10]), clf.transduction_[:10])
    with pytest.raises(ValueError, match="square"):
        LabelSpreadingCG(backend="precomputed").fit(X, y)


def test_pipeline_grid_search_clone_pickle(digits):
    X, y, y_true = digits
    pipe = make_pipeline(StandardScaler(), LabelSpreadingCG())
    grid = GridSearchCV(
        pipe,
        {"labelspreadingcg__n_neighbors": [5, 10]},
        cv=2,
        error_score="raise",
    )
    lab = y != -1
    grid.fit(X[lab], y[lab])
    assert grid.best_params_["labelspreadingcg__n_neighbors"] in (5, 10)
    clf = LabelSpreadingCG(alpha=0.9).fit(X, y)
    assert clone(clf).get_params() == clf.get_params()
    restored = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(restored.predict(X[:50]), clf.predict(X[:50]))


def test_verbose_prints_and_silent_by_default(moons, capsys):
    X, y, _ = moons
    LabelSpreadingCG().fit(X, y)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    LabelSpreadingCG(verbose=1).fit(X, y)
    out = capsys.readouterr()
    assert "iterations=" in out.out and "kNN (exact)" in out.err


def test_convergence_warning(digits):
    X, y, _ = digits
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        LabelSpreadingCG(max_iter=2).fit(X, y)


# --- bad input: each a clear error naming the argument and the fix -----------


def _assert_unfitted(clf):
    assert not hasattr(clf, "classes_")
    assert not hasattr(clf, "label_distributions_")


@pytest.mark.parametrize(
    "y, match",
    [
        (np.full(50, -1), "no labeled sample"),
        (np.r_[np.zeros(5, int), np.full(45, -1)], "1 labeled class"),
        (np.r_[np.linspace(0, 1, 5), np.full(45, -1.0)], "class labels"),
        (np.r_[[0.0, 1.0, np.nan], np.full(47, -1.0)], "NaN"),
        (np.zeros((50, 2), int), "1d|1-D"),
    ],
)
def test_bad_targets(y, match):
    X = np.random.default_rng(0).normal(size=(50, 3))
    clf = LabelSpreadingCG(n_neighbors=3)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    _assert_unfitted(clf)


def test_mixed_string_and_number_labels():
    X = np.random.default_rng(0).normal(size=(6, 2))
    y = np.array(["a", 2, "b", -1, -1, -1], dtype=object)
    with pytest.raises(ValueError, match="mixes label types"):
        LabelSpreadingCG(n_neighbors=2).fit(X, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_X(bad):
    X = np.random.default_rng(0).normal(size=(20, 3))
    X[3, 1] = bad
    y = np.r_[[0, 1], np.full(18, -1)]
    with pytest.raises(ValueError, match="NaN|infinity"):
        LabelSpreadingCG(n_neighbors=3).fit(X, y)


def test_length_mismatch():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        LabelSpreadingCG().fit(X, np.zeros(9))


def test_empty_X():
    with pytest.raises(ValueError, match="0 sample"):
        LabelSpreadingCG().fit(np.empty((0, 3)), np.empty(0))


def test_n_neighbors_too_large():
    X = np.random.default_rng(0).normal(size=(8, 2))
    y = np.r_[[0, 1], np.full(6, -1)]
    clf = LabelSpreadingCG(n_neighbors=8)
    with pytest.raises(ValueError, match="n_neighbors=8 must be smaller than"):
        clf.fit(X, y)
    _assert_unfitted(clf)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(alpha=1.0), "'alpha' parameter"),
        (dict(n_neighbors=0), "'n_neighbors' parameter"),
        (dict(metric="manhattan"), "'metric' parameter"),
        (dict(backend="annoy"), "'backend' parameter"),
        (dict(kernel="power", metric="euclidean"), "kernel='power'"),
        (dict(tol=1.0), "'tol' parameter"),
        (dict(solver="lsqr"), "'solver' parameter"),
        (dict(index_params={"ef": 3}), "unknown key"),
    ],
)
def test_bad_parameters(params, match):
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.r_[[0, 1], np.full(18, -1)]
    with pytest.raises(ValueError, match=match):
        LabelSpreadingCG(**params).fit(X, y)


def test_unreachable_points_warn_and_get_uniform():
    rng = np.random.default_rng(0)
    # Two far-apart blobs; only the first carries labels.
    X = np.vstack([rng.normal(size=(30, 2)), rng.normal(size=(10, 2)) + 1000])
    y = np.full(40, -1)
    y[:2] = [0, 1]
    with pytest.warns(UserWarning, match="10 of 40 samples are not connected"):
        clf = LabelSpreadingCG(n_neighbors=5, kernel="binary").fit(X, y)
    assert np.allclose(clf.label_distributions_[30:], 0.5)
    assert np.all(clf.certainty_[30:] == 0)
    assert np.all(np.isfinite(clf.label_distributions_))


def test_predict_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        LabelSpreadingCG().predict(np.zeros((2, 2)))


def test_predict_wrong_n_features(moons):
    X, y, _ = moons
    clf = LabelSpreadingCG().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.zeros((3, 5)))


# --- solvers, graph ownership, fitted state -----------------------------------


@pytest.mark.parametrize("solver", ["dense", "spectral"])
def test_solver_parameter(moons, solver):
    X, y, y_true = moons
    cg = LabelSpreadingCG(tol=1e-10).fit(X, y)
    other = LabelSpreadingCG(solver=solver, n_components=400).fit(X, y)
    assert other.n_iter_ == 0 and other.residuals_[0] < 1e-8
    assert np.allclose(other.label_distributions_, cg.label_distributions_, atol=1e-6)
    low_rank = LabelSpreadingCG(solver="spectral", n_components=40, random_state=0)
    unl = y == -1
    assert (low_rank.fit(X, y).transduction_[unl] == y_true[unl]).mean() > 0.9


def test_spectral_solver_warns_when_components_fill_the_eigenpairs():
    # Six far-apart blobs: six components of the kNN graph, so 4 eigenpairs
    # are all eigenvalue 1; the warning points at the caller's line.
    X, y = make_blobs(
        600, centers=6, cluster_std=0.2, center_box=(-50, 50), random_state=0
    )
    y = mask_labels(y, per_class=2, random_state=0)
    clf = LabelSpreadingCG(solver="spectral", n_components=4, random_state=0)
    with pytest.warns(UserWarning, match="6 connected components") as caught:
        clf.fit(X, y)
    (warning,) = [w for w in caught if "connected components" in str(w.message)]
    assert warning.filename == __file__


def test_fit_records_its_phase_times(moons):
    X, y, _ = moons
    clf = LabelSpreadingCG().fit(X, y)
    assert set(clf.timings_) == {"index", "search", "affinity", "solve"}
    assert all(t >= 0 for t in clf.timings_.values())
    assert clf.graph_.n_samples_fit_ == 400


def test_set_params_after_fit_keeps_predict_working(moons):
    X, y, _ = moons
    clf = LabelSpreadingCG().fit(X, y)
    before = clf.predict_proba(X[:20])
    clf.set_params(n_neighbors=0, kernel="binary")
    assert np.array_equal(clf.predict_proba(X[:20]), before)
    with pytest.raises(ValueError, match="'n_neighbors' parameter"):
        clf.fit(X, y)


def test_failed_first_fit_leaves_nothing_fitted(moons):
    from sklearn.exceptions import NotFittedError

    X, y, _ = moons
    clf = LabelSpreadingCG()
    with pytest.raises(ValueError):
        clf.fit(X, np.full(len(y), -1))
    assert [k for k in vars(clf) if k.endswith("_")] == []
    with pytest.raises(NotFittedError):
        clf.predict(X[:2])


@pytest.mark.parametrize(
    "bad_call",
    [
        lambda clf, X, y: clf.fit(X[:, :1], np.full(len(y), -1)),
        lambda clf, X, y: clf.fit(
            np.where(np.arange(len(y))[:, None] == 3, np.nan, X), y
        ),
        lambda clf, X, y: clf.set_params(n_neighbors=len(y)).fit(X, y),
    ],
    ids=["bad y and new width", "NaN", "n_neighbors too large"],
)
def test_failed_refit_keeps_the_previous_fit_whole(moons, bad_call):
    X, y, _ = moons
    clf = LabelSpreadingCG().fit(X, y)
    state = dict(vars(clf))
    expected = clf.predict(X[:30])
    with pytest.raises(ValueError):
        bad_call(clf, X, y)
    fitted = {k: v for k, v in vars(clf).items() if k.endswith("_")}
    assert fitted.keys() == {k for k in state if k.endswith("_")}
    assert all(fitted[k] is state[k] for k in fitted)
    assert clf.n_features_in_ == 2
    assert np.array_equal(clf.predict(X[:30]), expected)


class _NAType:
    """Behaves like pandas.NA: comparisons give NA, whose truth is ambiguous."""

    def __eq__(self, other):
        return self

    __ne__ = __eq__

    def __bool__(self):
        raise TypeError("boolean value of NA is ambiguous")

    __hash__ = object.__hash__


@pytest.mark.parametrize("missing", [None, float("nan"), _NAType()])
def test_missing_labels_are_a_clear_error(missing):
    X = np.random.default_rng(0).normal(size=(12, 2))
    y = np.array(["a", "b"] + [missing] * 10, dtype=object)
    clf = LabelSpreadingCG(n_neighbors=3)
    with pytest.raises(ValueError, match=r"10 missing value\(s\).*-1"):
        clf.fit(X, y)
    assert not hasattr(clf, "n_features_in_")


def test_pandas_string_labels_with_missing_values():
    # Runs where pandas is installed (it is no dependency of skssl); the test
    # above covers the same values without it.
    pd = pytest.importorskip("pandas")
    X = np.random.default_rng(0).normal(size=(12, 2))
    y = pd.Series(["a", "b"] + [pd.NA] * 10, dtype="string")
    with pytest.raises(ValueError, match="10 missing"):
        LabelSpreadingCG(n_neighbors=3).fit(X, y)
    clf = LabelSpreadingCG(n_neighbors=3).fit(X, y.astype(object).fillna(-1))
    assert clf.classes_.tolist() == ["a", "b"]
