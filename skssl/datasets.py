"""Offline datasets for semi-supervised experiments and a label-hiding helper.

Nothing here downloads: digits ships with scikit-learn and MNIST-1D is generated
locally from its templates by the ``mnist1d`` package (``pip install
skssl[datasets]``).
"""

from __future__ import annotations

import numbers
import random

import numpy as np
from sklearn.utils import Bunch, check_random_state

from ._validation import UNLABELED

__all__ = ["load_digits_ssl", "load_mnist1d", "mask_labels"]


def mask_labels(y, *, per_class=None, fraction=None, random_state=None):
    """Hide labels: keep ``per_class`` labels of each class, or a ``fraction``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Fully labeled integer targets.
    per_class : int, default=None
        Labels kept per class (chosen uniformly at random within the class).
    fraction : float in (0, 1], default=None
        Share of labels kept, stratified by class (at least one per class).
        Give exactly one of ``per_class`` and ``fraction``.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    y_masked : ndarray of shape (n_samples,)
        A copy of ``y`` with hidden labels set to -1.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.datasets import mask_labels
    >>> y = np.array([0, 0, 0, 1, 1, 1])
    >>> masked = mask_labels(y, per_class=1, random_state=0)
    >>> int((masked != -1).sum()), sorted(set(masked[masked != -1].tolist()))
    (2, [0, 1])
    """
    y = np.asarray(y)
    if (per_class is None) == (fraction is None):
        raise ValueError(
            f"give exactly one of per_class and fraction, got per_class={per_class!r}"
            f" and fraction={fraction!r}."
        )
    if per_class is not None and (
        not isinstance(per_class, numbers.Integral) or per_class < 1
    ):
        raise ValueError(f"per_class={per_class!r} must be a positive integer.")
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction!r} must be in (0, 1].")
    if np.any(y == UNLABELED):
        raise ValueError(
            "y already contains -1 (unlabeled); mask_labels expects fully "
            "labeled targets."
        )
    rng = check_random_state(random_state)
    keep = np.zeros(y.shape[0], dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        if per_class is not None:
            if per_class > members.size:
                raise ValueError(
                    f"per_class={per_class} exceeds the {members.size} samples of "
                    f"class {c!r}; lower per_class."
                )
            n_keep = per_class
        else:
            n_keep = max(1, int(round(fraction * members.size)))
        keep[rng.choice(members, size=n_keep, replace=False)] = True
    out = y.copy()
    out[~keep] = UNLABELED
    return out


def load_digits_ssl(labels_per_class=10, *, random_state=None):
    """scikit-learn's 8x8 digits with all but ``labels_per_class`` labels hidden.

    Returns
    -------
    data : Bunch
        ``X`` (1797, 64) float64 pixels in [0, 16], ``y`` with -1 for hidden
        labels, and ``y_true`` with every label.

    Examples
    --------
    >>> from skssl.datasets import load_digits_ssl
    >>> d = load_digits_ssl(labels_per_class=1, random_state=0)
    >>> d.X.shape, int((d.y != -1).sum())
    ((1797, 64), 10)
    """
    from sklearn.datasets import load_digits

    X, y_true = load_digits(return_X_y=True)
    y = mask_labels(y_true, per_class=labels_per_class, random_state=random_state)
    return Bunch(X=X, y=y, y_true=y_true)


def load_mnist1d(n_samples=5000, *, random_state=0, test_size=0.0):
    """MNIST-1D (Greydanus 2020), generated offline with the ``mnist1d`` package.

    The generator seeds NumPy's and Python's global random states; both are saved
    and restored
    here so calling this function never changes the caller's random stream.

    Parameters
    ----------
    n_samples : int, default=5000
        Total rows generated (rounded down to a multiple of 10, one tenth per
        digit).
    random_state : int, default=0
        Seed of the generator: the same seed gives the same data.
    test_size : float in [0, 1), default=0.0
        Share of rows returned separately as a test set.

    Returns
    -------
    data : Bunch
        ``X`` of shape (n, 40) float32 sequences and ``y`` int64 labels in 0..9;
        with ``test_size > 0`` also ``X_test`` and ``y_test``.

    Examples
    --------
    >>> from skssl.datasets import load_mnist1d
    >>> d = load_mnist1d(200, random_state=0)
    >>> d.X.shape, sorted(set(d.y.tolist())) == list(range(10))
    ((200, 40), True)
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:
        raise ImportError(
            "load_mnist1d needs the mnist1d package: `pip install skssl[datasets]`."
        ) from exc
    if not isinstance(n_samples, numbers.Integral) or n_samples < 10:
        raise ValueError(f"n_samples={n_samples!r} must be an integer of at least 10.")
    if not isinstance(random_state, numbers.Integral):
        raise ValueError(
            f"random_state={random_state!r} must be an integer seed for the "
            "MNIST-1D generator."
        )
    if not 0 <= test_size < 1:
        raise ValueError(f"test_size={test_size!r} must be in [0, 1).")
    args = get_dataset_args()
    args.num_samples = int(n_samples)
    args.seed = int(random_state)
    args.train_split = 1.0 - test_size
    # mnist1d seeds the global generators; restore them for the caller.
    saved_np = np.random.get_state()  # noqa: NPY002
    saved_py = random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(saved_np)  # noqa: NPY002
        random.setstate(saved_py)
    out = Bunch(
        X=np.asarray(data["x"], dtype=np.float32),
        y=np.asarray(data["y"], dtype=np.int64),
    )
    if test_size > 0:
        out.X_test = np.asarray(data["x_test"], dtype=np.float32)
        out.y_test = np.asarray(data["y_test"], dtype=np.int64)
    return out
