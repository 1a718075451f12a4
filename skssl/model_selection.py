"""Cross-validation and scoring that respect the unlabeled marker -1.

scikit-learn's splitters and scorers treat -1 as an ordinary class: unlabeled
rows land in test folds and are scored as wrong answers, and stratification
balances the folds on "unlabeled" (scikit-learn issue #2593). The splitter here
keeps every unlabeled row in every training fold and tests on labeled rows
only; the scorers drop -1 rows before scoring, so they are right with any
splitter.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.model_selection._split import BaseCrossValidator
from sklearn.utils.validation import check_array

from ._validation import unlabeled_mask

__all__ = [
    "SemiSupervisedKFold",
    "labeled_accuracy",
    "labeled_balanced_accuracy",
    "labeled_neg_log_loss",
]


class SemiSupervisedKFold(BaseCrossValidator):
    """Stratified K-fold over the labeled rows; unlabeled rows always train.

    Each split tests on one stratified fold of the labeled rows and trains on
    the other labeled folds plus every unlabeled row (``y == -1``), which is
    what a semi-supervised estimator needs: the unlabeled rows build its graph
    or feed its unsupervised loss, and are never scored.

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds; at least 2. Every class needs at least ``n_splits``
        labeled rows.
    shuffle : bool, default=False
        Shuffle the labeled rows of each class before splitting.
    random_state : int, RandomState instance or None, default=None
        Seed of the shuffle; only used when ``shuffle=True``.

    See Also
    --------
    sklearn.model_selection.StratifiedKFold : the labeled-only splitter inside.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.model_selection import SemiSupervisedKFold
    >>> y = np.array([0, 0, 1, 1, -1, -1])
    >>> for train, test in SemiSupervisedKFold(n_splits=2).split(np.zeros(6), y):
    ...     print(train.tolist(), test.tolist())
    [1, 3, 4, 5] [0, 2]
    [0, 2, 4, 5] [1, 3]
    """

    def __init__(self, n_splits=5, *, shuffle=False, random_state=None):
        if not isinstance(n_splits, numbers.Integral) or n_splits < 2:
            raise ValueError(f"n_splits={n_splits!r} must be an integer of at least 2.")
        if not shuffle and random_state is not None:
            raise ValueError(
                "random_state has no effect when shuffle=False; set shuffle=True "
                "or leave random_state=None."
            )
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def split(self, X, y, groups=None):
        """Generate (train, test) indices.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Only its length is used.
        y : array-like of shape (n_samples,)
            Labels with -1 for unlabeled rows.
        groups : None
            Ignored, present for API compatibility.

        Yields
        ------
        train : ndarray
            Training fold: labeled rows of the other folds and all unlabeled rows.
        test : ndarray
            Test fold: labeled rows only.
        """
        if y is None:
            raise ValueError(
                "SemiSupervisedKFold needs y to find the labeled rows; pass y "
                "(with -1 for unlabeled rows) to split or to the search's fit."
            )
        y = np.asarray(y)
        if y.ndim != 1:
            y = check_array(y, ensure_2d=False, dtype=None).ravel()
        n = len(X) if hasattr(X, "__len__") else X.shape[0]
        if y.shape[0] != n:
            raise ValueError(f"X has {n} rows but y has {y.shape[0]}; they must match.")
        unlabeled = unlabeled_mask(y)
        labeled_idx = np.flatnonzero(~unlabeled)
        unlabeled_idx = np.flatnonzero(unlabeled)
        y_lab = y[labeled_idx]
        classes, counts = np.unique(y_lab, return_counts=True)
        if labeled_idx.size == 0:
            raise ValueError("y has no labeled rows (all -1): nothing to test on.")
        short = classes[counts < self.n_splits]
        if short.size:
            raise ValueError(
                f"n_splits={self.n_splits} is more than the labeled rows of class(es) "
                f"{short.tolist()} (fewest: {counts.min()}); lower n_splits to at "
                f"most {counts.min()} or label more rows of those classes."
            )
        inner = StratifiedKFold(
            self.n_splits, shuffle=self.shuffle, random_state=self.random_state
        )
        for train, test in inner.split(labeled_idx, y_lab):
            yield (
                np.sort(np.concatenate([labeled_idx[train], unlabeled_idx])),
                labeled_idx[test],
            )

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splits (``n_splits``)."""
        return self.n_splits


def _labeled_only(y):
    y = np.asarray(y)
    keep = ~unlabeled_mask(y)
    if not keep.any():
        raise ValueError(
            "every target in this fold is -1 (unlabeled), so there is nothing to "
            "score; use SemiSupervisedKFold, which tests on labeled rows only."
        )
    return keep


def labeled_accuracy(estimator, X, y):
    """Accuracy on the labeled rows only (``y != -1``); use as ``scoring=``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> from skssl.model_selection import labeled_accuracy
    >>> clf = DummyClassifier(strategy="constant", constant=1).fit([[0]] * 2, [0, 1])
    >>> labeled_accuracy(clf, [[0]] * 4, [1, 1, 0, -1])
    0.6666666666666666
    """
    keep = _labeled_only(y)
    return float(accuracy_score(np.asarray(y)[keep], estimator.predict(_rows(X, keep))))


def labeled_balanced_accuracy(estimator, X, y):
    """Balanced accuracy on the labeled rows only; use as ``scoring=``."""
    keep = _labeled_only(y)
    return float(
        balanced_accuracy_score(np.asarray(y)[keep], estimator.predict(_rows(X, keep)))
    )


def labeled_neg_log_loss(estimator, X, y):
    """Negative log loss on the labeled rows only (greater is better)."""
    keep = _labeled_only(y)
    proba = estimator.predict_proba(_rows(X, keep))
    return -float(log_loss(np.asarray(y)[keep], proba, labels=estimator.classes_))


def _rows(X, keep):
    if hasattr(X, "iloc"):
        return X.iloc[np.flatnonzero(keep)]
    if isinstance(X, list):
        return [row for row, k in zip(X, keep, strict=True) if k]
    return X[keep]
