import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.semi_supervised import LabelSpreading, SelfTrainingClassifier

from skssl import LabelSpreadingCG
from skssl.datasets import mask_labels
from skssl.model_selection import (
    SemiSupervisedKFold,
    labeled_accuracy,
    labeled_balanced_accuracy,
    labeled_neg_log_loss,
)


@pytest.fixture(scope="module")
def digits():
    X, y_true = load_digits(return_X_y=True)
    X, y_true = X[:600], y_true[:600]
    return X, mask_labels(y_true, per_class=6, random_state=0), y_true


def test_folds_test_labeled_only_and_train_all_unlabeled(digits):
    X, y, _ = digits
    unl = np.flatnonzero(y == -1)
    lab = np.flatnonzero(y != -1)
    tests = []
    for train, test in SemiSupervisedKFold(3).split(X, y):
        assert np.all(y[test] != -1)
        assert np.isin(unl, train).all()
        assert not np.intersect1d(train, test).size
        # Stratified: every class appears twice in each test fold (6 / 3).
        assert np.all(np.bincount(y[test], minlength=10) == 2)
        tests.append(test)
    assert np.array_equal(np.sort(np.concatenate(tests)), lab)


def test_shuffle_is_seeded(digits):
    X, y, _ = digits
    a = [
        t.tolist()
        for _, t in SemiSupervisedKFold(3, shuffle=True, random_state=0).split(X, y)
    ]
    b = [
        t.tolist()
        for _, t in SemiSupervisedKFold(3, shuffle=True, random_state=0).split(X, y)
    ]
    c = [t.tolist() for _, t in SemiSupervisedKFold(3).split(X, y)]
    assert a == b and a != c
    assert SemiSupervisedKFold(4).get_n_splits() == 4


def test_too_few_labels_per_class_is_clear(digits):
    X, y, _ = digits
    with pytest.raises(ValueError, match="n_splits=7 is more than the labeled rows"):
        list(SemiSupervisedKFold(7).split(X, y))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_splits=1), "n_splits=1"),
        (dict(random_state=0), "random_state has no effect"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SemiSupervisedKFold(**kwargs)


def test_split_needs_y_and_matching_lengths():
    with pytest.raises(ValueError, match="needs y"):
        list(SemiSupervisedKFold(2).split(np.zeros((4, 1)), None))
    with pytest.raises(ValueError, match="must match"):
        list(SemiSupervisedKFold(2).split(np.zeros((4, 1)), [0, 1, 0]))
    with pytest.raises(ValueError, match="no labeled rows"):
        list(SemiSupervisedKFold(2).split(np.zeros((3, 1)), [-1, -1, -1]))


def test_scorers_ignore_unlabeled_rows(digits):
    X, y, y_true = digits
    clf = LogisticRegression(max_iter=500).fit(X, y_true)
    keep = y != -1
    pred = clf.predict(X[keep])
    assert labeled_accuracy(clf, X, y) == pytest.approx(accuracy_score(y[keep], pred))
    assert labeled_balanced_accuracy(clf, X, y) == pytest.approx(
        balanced_accuracy_score(y[keep], pred)
    )
    expected = -log_loss(y[keep], clf.predict_proba(X[keep]), labels=clf.classes_)
    assert labeled_neg_log_loss(clf, X, y) == pytest.approx(expected)
    with pytest.raises(ValueError, match="nothing to score"):
        labeled_accuracy(clf, X[:3], [-1, -1, -1])


def test_naive_cv_is_wrong_and_ours_is_right(digits):
    X, y, y_true = digits
    est = LabelSpreadingCG()
    naive = cross_val_score(est, X, y, cv=KFold(3, shuffle=True, random_state=0))
    ours = cross_val_score(
        est, X, y, cv=SemiSupervisedKFold(3), scoring=labeled_accuracy
    )
    # Plain CV scores unlabeled rows as class -1, which is never predicted.
    assert naive.max() < 0.2
    assert ours.min() > 0.7


@pytest.mark.parametrize(
    "estimator, grid",
    [
        (
            make_pipeline(StandardScaler(), LabelSpreadingCG()),
            {
                "labelspreadingcg__n_neighbors": [5, 10],
                "labelspreadingcg__alpha": [0.9, 0.99],
            },
        ),
        (LabelSpreading(kernel="knn", max_iter=100), {"n_neighbors": [5, 7]}),
        (
            SelfTrainingClassifier(LogisticRegression(max_iter=300)),
            {"threshold": [0.75, 0.9]},
        ),
    ],
)
def test_grid_search_with_peers_and_n_jobs(digits, estimator, grid):
    X, y, _ = digits
    search = GridSearchCV(
        estimator,
        grid,
        cv=SemiSupervisedKFold(3),
        scoring={
            "accuracy": labeled_accuracy,
            "balanced_accuracy": labeled_balanced_accuracy,
        },
        refit="accuracy",
        n_jobs=2,
        error_score="raise",
    )
    search.fit(X, y)
    assert search.best_score_ > 0.6
    assert np.all(np.isfinite(search.cv_results_["mean_test_balanced_accuracy"]))


def test_log_loss_scoring_in_search(digits):
    X, y, _ = digits
    search = GridSearchCV(
        LabelSpreadingCG(),
        {"n_neighbors": [5, 10]},
        cv=SemiSupervisedKFold(2),
        scoring=labeled_neg_log_loss,
        error_score="raise",
    ).fit(X, y)
    assert np.isfinite(search.best_score_) and search.best_score_ <= 0
