"""Validation shared by every skssl estimator: targets, seeds, fitted state."""

from __future__ import annotations

import numbers
import warnings
from contextlib import contextmanager

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target

UNLABELED = -1


def unlabeled_mask(y):
    """Boolean mask of the entries of ``y`` equal to the unlabeled marker -1.

    Works for integer, float and object arrays (e.g. ``["cat", -1, "dog"]``);
    string arrays have no unlabeled entries.
    """
    y = np.asarray(y)
    if y.dtype.kind in "iuf":
        return y == UNLABELED
    if y.dtype.kind == "O":
        return np.array(
            [
                isinstance(v, (int, float, np.integer, np.floating)) and v == UNLABELED
                for v in y
            ],
            dtype=bool,
        )
    return np.zeros(y.shape, dtype=bool)


def _missing(value):
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN
    except TypeError:  # pd.NA: its truth value is ambiguous
        return True


def check_missing_targets(y):
    """Raise a clear error when labels are None, NaN or pd.NA.

    Called before scikit-learn's own checks of ``y``, whose errors on such
    values do not say how to mark unlabeled rows. Only object arrays (e.g. a
    pandas string Series) can hold them; numeric NaN is reported later.
    """
    if y is None:
        return
    y = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    if y.dtype.kind != "O" or y.ndim != 1:
        return
    missing = sum(_missing(v) for v in y)
    if missing:
        raise ValueError(
            f"y has {missing} missing value(s) (None, NaN or pd.NA); mark "
            "unlabeled samples with -1 instead, e.g. "
            "y.astype(object).fillna(-1) for a pandas Series."
        )


def encode_ssl_targets(y, *, min_classes=2, warn_no_unlabeled=True, stacklevel=4):
    """Check semi-supervised targets and encode the labeled ones.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels, ``-1`` marking unlabeled samples. Labels may be integers
        (contiguous or not), integral floats, or strings (in an object array
        when mixed with -1).
    min_classes : int, default=2
        Fewest distinct labeled classes accepted.
    warn_no_unlabeled : bool, default=True
        Warn when no sample is unlabeled.
    stacklevel : int, default=4
        Stack level of that warning; the default points at the caller of an
        estimator's ``fit`` decorated with scikit-learn's ``_fit_context``.

    Returns
    -------
    classes : ndarray of shape (n_classes,)
        Sorted labeled classes (-1 excluded).
    y_encoded : ndarray of shape (n_samples,), int64
        Index into ``classes``, -1 for unlabeled samples.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(
            f"y must be 1-D with one label per sample, got shape {y.shape}; "
            "multi-output targets are not supported."
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(
            "y contains NaN or infinity; mark unlabeled samples with -1 instead."
        )
    check_missing_targets(y)
    unlabeled = unlabeled_mask(y)
    labeled = y[~unlabeled]
    if labeled.size == 0:
        raise ValueError(
            "y has no labeled sample: every target is -1. Label at least one "
            "sample of each class."
        )
    if labeled.dtype.kind == "O":
        kinds = {type(v) for v in labeled}
        if len({k for k in kinds if issubclass(k, str)}) and len(kinds) > 1:
            raise ValueError(
                f"y mixes label types {sorted(k.__name__ for k in kinds)}; use "
                "one type for the labels and -1 only for unlabeled samples."
            )
    kind = type_of_target(labeled)
    if kind not in ("binary", "multiclass"):
        raise ValueError(
            f"Unknown label type: y must hold class labels, but its labeled "
            f"values look {kind!r} "
            f"(e.g. {labeled[:3].tolist()}). Use integer or string class labels "
            "and -1 for unlabeled samples; for float labels, round or encode them."
        )
    classes, encoded = np.unique(labeled, return_inverse=True)
    if classes.size < min_classes:
        raise ValueError(
            f"y has {classes.size} labeled class(es) ({classes.tolist()}) but at "
            f"least {min_classes} are needed; label samples of another class."
        )
    y_encoded = np.full(y.shape[0], UNLABELED, dtype=np.int64)
    y_encoded[~unlabeled] = encoded
    if warn_no_unlabeled and not unlabeled.any():
        warnings.warn(
            "y has no unlabeled sample (no -1): fitting on labeled data only.",
            UserWarning,
            stacklevel=stacklevel,
        )
    return classes, y_encoded


def resolve_device(device):
    """``"auto"`` is ``"cuda"`` when torch sees a GPU, else ``"cpu"``; others pass."""
    if isinstance(device, str) and device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def seed_from(random_state):
    """An int seed from ``random_state``, or None to leave the choice to the library.

    An int is used as is; a :class:`numpy.random.RandomState` instance gives one
    draw, so repeated fits with the same instance differ, as in scikit-learn.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl._validation import seed_from
    >>> seed_from(None), seed_from(3), seed_from(np.random.RandomState(0))
    (None, 3, 209652396)
    """
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _fitted_names(estimator):
    return [k for k in vars(estimator) if k.endswith("_") and not k.startswith("__")]


@contextmanager
def restore_on_failure(estimator):
    """Leave ``estimator`` exactly as it was if the block raises.

    Every fitted attribute (a name ending in ``_``) is put back as it was
    before the block, and any the block added is removed: a first fit that
    fails leaves nothing fitted, and a refit that fails leaves the previous
    fit whole instead of a mix of old and new state. The attributes are
    restored by reference, so the block must replace them, not mutate them.
    """
    before = {k: vars(estimator)[k] for k in _fitted_names(estimator)}
    try:
        yield
    except BaseException:
        for name in _fitted_names(estimator):
            del vars(estimator)[name]
        vars(estimator).update(before)
        raise
