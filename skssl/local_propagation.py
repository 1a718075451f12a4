"""Local label propagation on embeddings (Zhuang et al., LLP, §3 eq. 1-5).

Pure numpy functions, usable on any embeddings a user already has (unit
vectors, as a network with an L2-normalized output gives); the deep estimator
:class:`skssl.LocalLabelPropagationClassifier` calls them on its memory bank:

- :func:`labeled_density` measures how crowded the unlabeled rows are around
  each labeled row (eq. 4);
- :func:`local_label_propagation` lets the labeled rows vote for the label of
  each unlabeled row, each vote weighted by similarity and divided by the
  voter's density (eq. 3-5);
- :func:`update_memory_bank` is the running average that keeps the bank
  close to the network's current embeddings (Wu et al. 2018);
- :func:`density_count_correlation` is the statistic of the paper's Fig. 3:
  do classes whose labeled rows sit in dense regions win more pseudo-labels?

The cost of a propagation is ``O(N M d)`` for ``N`` rows, ``M`` of them
labeled, in blocks of unlabeled rows, so memory stays ``O(chunk_size M)``: no
graph over all ``N`` rows is built.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import check_array

from .diffusion import knn_vote

__all__ = [
    "density_count_correlation",
    "labeled_density",
    "local_label_propagation",
    "update_memory_bank",
]

# Scores per block of unlabeled rows (block rows x labeled rows), and the
# fewest rows per block. Measured on 128-d float32 unit vectors, one thread:
# with 1,000 labeled and 99,000 unlabeled rows, 2**16 to 2**22 values per
# block ran within 10 % of each other (2.3-2.4 s); with 10,000 labeled rows,
# blocks of 16 rows took 7.8 s and of 128 to 512 rows 4.7-4.8 s, because every
# block also merges the running top-T densities of all labeled rows.
_BLOCK_VALUES = 2**20
_MIN_BLOCK_ROWS = 128


def _embeddings(V, name):
    return check_array(
        V, dtype=[np.float32, np.float64], ensure_min_samples=0, input_name=name
    )


def _check_count(value, name, hint):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"{name}={value!r} must be a positive integer ({hint}); pass an int >= 1."
        )


def _check_temperature(temperature):
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, numbers.Real)
        or not temperature > 0
        or not np.isfinite(temperature)
    ):
        raise ValueError(
            f"temperature={temperature!r} must be a positive number (the paper "
            "uses 0.07 on unit vectors); pass a float > 0."
        )


def _block_rows(chunk_size, n_columns):
    """Rows per block: ``chunk_size``, or about ``_BLOCK_VALUES`` scores."""
    if chunk_size is None:
        return max(_MIN_BLOCK_ROWS, _BLOCK_VALUES // max(n_columns, 1))
    _check_count(chunk_size, "chunk_size", "rows per block, or None for automatic")
    return int(chunk_size)


def labeled_density(
    V_labeled, V_unlabeled, *, n_density=25, temperature=0.07, chunk_size=None
):
    """Log local density of each labeled row among the unlabeled rows (eq. 4).

    ``rho(v_i) = sum_{j in N_T(v_i)} P(v_j, v_i)`` with the joint probability
    ``P(v_j, v_i) = exp(v_j^T v_i / tau) / Z`` of eq. 1 and ``N_T(v_i)`` the
    ``T`` unlabeled rows of largest ``v_j^T v_i`` (the nearest ones, for unit
    vectors). ``Z`` sums over every pair of rows, so it is one constant for
    all labeled rows; it cancels from the votes of
    :func:`local_label_propagation` and is left out here. The result is the
    logarithm, computed by log-sum-exp: with ``tau = 0.07`` a single term is
    already ``exp(14.3)``.

    Parameters
    ----------
    V_labeled : array-like of shape (n_labeled, d)
        Embeddings of the labeled rows.
    V_unlabeled : array-like of shape (n_unlabeled, d)
        Embeddings of the unlabeled rows.
    n_density : int, default=25
        ``T``, the unlabeled neighbours that count (all of them when there
        are fewer). The paper uses 25.
    temperature : float, default=0.07
        ``tau`` of eq. 1.
    chunk_size : int or None, default=None
        Unlabeled rows per block; memory is ``O(chunk_size * n_labeled)``.
        None chooses about a million scores per block (at least 128 rows).
        The result does not depend on it.

    Returns
    -------
    log_density : ndarray of shape (n_labeled,), float64
        ``log(Z rho(v_i))``. ``-inf`` for every row when there is no
        unlabeled row (an empty neighbourhood has density 0).

    See Also
    --------
    local_label_propagation : uses it to weight the votes.

    References
    ----------
    .. [1] C. Zhuang, X. Ding, D. Murli and D. Yamins, "Local label
       propagation for large-scale semi-supervised learning",
       arXiv:1905.11581, 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.local_propagation import labeled_density
    >>> V_l = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> V_u = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    >>> log_rho = labeled_density(V_l, V_u, n_density=2, temperature=1.0)
    >>> np.round(log_rho, 4).tolist()   # log(e^1 + e^0.8), log(e^1 + e^0.6)
    [1.5981, 1.513]
    """
    V_l = _embeddings(V_labeled, "V_labeled")
    V_u = _embeddings(V_unlabeled, "V_unlabeled")
    if V_l.shape[1] != V_u.shape[1]:
        raise ValueError(
            f"V_labeled has {V_l.shape[1]} columns and V_unlabeled {V_u.shape[1]}; "
            "pass embeddings of the same dimension."
        )
    _check_count(n_density, "n_density", "unlabeled neighbours per density")
    _check_temperature(temperature)
    block = _block_rows(chunk_size, V_l.shape[0])
    n_labeled, n_unlabeled = V_l.shape[0], V_u.shape[0]
    if n_unlabeled == 0:
        return np.full(n_labeled, -np.inf)
    T = min(n_density, n_unlabeled)
    dtype = np.result_type(V_l, V_u)
    # Running top-T similarities of each labeled row over the blocks seen.
    top = np.full((n_labeled, T), -np.inf, dtype=dtype)
    for lo in range(0, n_unlabeled, block):
        both = np.concatenate([top, V_l @ V_u[lo : lo + block].T], axis=1)
        top = np.partition(both, both.shape[1] - T, axis=1)[:, -T:]
    return logsumexp(top.astype(np.float64) / temperature, axis=1)


def local_label_propagation(
    V,
    y,
    *,
    n_voters=10,
    n_density=25,
    temperature=0.07,
    density_weighting=True,
    n_classes=None,
    chunk_size=None,
):
    """Class distributions of the unlabeled rows by density-weighted votes.

    Eq. 3-5 of Zhuang et al. For an unlabeled row ``v`` and each labeled row
    ``v_i``, the score is

    ``s_i(v) = v_i^T v / tau - log rho(v_i)``

    (without the second term when ``density_weighting=False``, the paper's
    "NoDW"). The ``n_voters`` labeled rows of highest score, ``N_K^L(v)``,
    vote, and class ``j`` gets ``p_j(v) = sum_{i in N_K^L(v), y_i = j}
    exp(s_i) / sum_{i in N_K^L(v)} exp(s_i)``, computed with the largest
    score subtracted so nothing overflows. This is eq. 5 exactly: its
    ``P(v_i | v) = exp(v_i^T v / tau) / sum_l exp(v^T v_l / tau)`` has a
    normalizer over the whole bank that is the same for every voter of
    ``v``, and the ``1 / Z`` in ``rho`` is the same for every labeled row;
    both cancel from the ranking of the voters and from ``p_j``, so neither
    is computed.

    The work is ``O(N M d)`` (``N`` rows, ``M`` labeled, dimension ``d``), in
    blocks of unlabeled rows so that memory stays ``O(chunk_size M)``.

    Parameters
    ----------
    V : array-like of shape (n_samples, d)
        Embeddings of every row, e.g. unit vectors.
    y : array-like of shape (n_samples,)
        Class index of each labeled row, ``0 .. n_classes - 1``, and ``-1`` for
        unlabeled rows. Class labels of another kind must be encoded first
        (the estimator does it, e.g. with
        :class:`~sklearn.preprocessing.LabelEncoder`).
    n_voters : int, default=10
        ``K``, the labeled rows that vote for each unlabeled row (all of them
        when there are fewer). The paper uses 10.
    n_density : int, default=25
        ``T``, the unlabeled neighbours of a labeled row that make its density
        (:func:`labeled_density`). The paper uses 25.
    temperature : float, default=0.07
        ``tau``: smaller values give the nearest voters more weight.
    density_weighting : bool, default=True
        Divide each vote by its voter's density (eq. 4). The density is
        returned either way.
    n_classes : int or None, default=None
        Number of columns of ``P``; None uses ``max(y) + 1``. A class without
        labeled rows gets a column of zeros.
    chunk_size : int or None, default=None
        Unlabeled rows per block; the result does not depend on it.

    Returns
    -------
    P : ndarray of shape (n_samples, n_classes)
        Rows sum to 1; a labeled row's distribution is its label (one-hot).
        The pseudo-label of an unlabeled row is ``P.argmax(axis=1)``, its
        confidence ``P.max(axis=1)``.
    log_density : ndarray of shape (n_labeled,)
        ``log(Z rho(v_i))`` of the labeled rows, in the order of
        ``np.flatnonzero(y >= 0)``; ``-inf`` when there is no unlabeled row.

    See Also
    --------
    labeled_density : the densities alone.
    skssl.diffusion.knn_vote : the weighted vote.
    skssl.LocalLabelPropagationClassifier : trains a network on these labels.

    References
    ----------
    .. [1] C. Zhuang, X. Ding, D. Murli and D. Yamins, "Local label
       propagation for large-scale semi-supervised learning",
       arXiv:1905.11581, 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.local_propagation import local_label_propagation
    >>> angle = np.array([0.0, 0.1, 1.5, 0.05, 1.4, 0.8])
    >>> V = np.c_[np.cos(angle), np.sin(angle)]          # unit vectors
    >>> y = np.array([0, 0, 1, -1, -1, -1])
    >>> P, log_density = local_label_propagation(V, y, n_voters=2, n_density=2)
    >>> P.argmax(axis=1).tolist(), P.shape, log_density.shape
    ([0, 0, 1, 0, 1, 1], (6, 2), (3,))
    >>> bool(np.all(P.max(axis=1) >= 0.5))
    True
    """
    V = _embeddings(V, "V")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != V.shape[0]:
        raise ValueError(
            f"y must be 1-d with one entry per row of V ({V.shape[0]}), got shape "
            f"{y.shape}."
        )
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < -1):
        raise ValueError(
            "y must hold class indices 0 .. n_classes - 1 and -1 for unlabeled "
            f"rows, got values such as {np.unique(y)[:5].tolist()}; encode the "
            "labels first, e.g. with sklearn.preprocessing.LabelEncoder."
        )
    labeled = np.flatnonzero(y >= 0)
    if labeled.size == 0:
        raise ValueError(
            "y has no labeled row (every entry is -1), so there is nothing to "
            "propagate; label at least one row."
        )
    y_labeled = y[labeled]
    if n_classes is None:
        n_classes = int(y_labeled.max()) + 1
    _check_count(n_classes, "n_classes", "columns of the label distributions")
    if y_labeled.max() >= n_classes:
        raise ValueError(
            f"y holds class index {int(y_labeled.max())}, but n_classes={n_classes}; "
            "pass n_classes > max(y) or None."
        )
    _check_count(n_voters, "n_voters", "labeled rows voting for each row")
    unlabeled = np.flatnonzero(y < 0)
    V_labeled = V[labeled]
    log_density = labeled_density(
        V_labeled,
        V[unlabeled],
        n_density=n_density,
        temperature=temperature,
        chunk_size=chunk_size,
    )
    one_hot = np.eye(n_classes)[y_labeled]
    P = np.zeros((V.shape[0], n_classes))
    P[labeled] = one_hot
    if unlabeled.size == 0:
        return P, log_density
    n_labeled = labeled.size
    K = min(n_voters, n_labeled)
    offset = (log_density if density_weighting else np.zeros(n_labeled)).astype(V.dtype)
    block = _block_rows(chunk_size, n_labeled)
    for lo in range(0, unlabeled.size, block):
        rows = unlabeled[lo : lo + block]
        scores = (V[rows] @ V_labeled.T) / V.dtype.type(temperature) - offset
        voters = np.argpartition(scores, n_labeled - K, axis=1)[:, n_labeled - K :]
        s = np.take_along_axis(scores, voters, axis=1).astype(np.float64)
        weights = np.exp(s - s.max(axis=1, keepdims=True))
        P[rows] = knn_vote(voters, weights, one_hot)
    return P, log_density


def update_memory_bank(bank, rows, V, momentum=0.5):
    """Running average of the embeddings: ``bank[rows] <- normalize(m b + (1 - m) v)``.

    The memory bank of Wu et al. (2018) that LLP propagates from: each step
    mixes the new embeddings of a batch into the rows it holds and projects
    them back onto the unit sphere. A row listed more than once takes its last
    embedding; an all-zero result stays zero.

    Parameters
    ----------
    bank : ndarray of shape (n_rows, d)
        Updated in place.
    rows : array-like of shape (batch,), int
        Rows of ``bank`` to update.
    V : array-like of shape (batch, d)
        Their new embeddings.
    momentum : float, default=0.5
        ``m`` in [0, 1), the share of the old value (the paper's 0.5); 0
        replaces the rows by the normalized new embeddings.

    Returns
    -------
    bank : ndarray of shape (n_rows, d)
        The same array.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.local_propagation import update_memory_bank
    >>> bank = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> update_memory_bank(bank, [0], np.array([[0.0, 1.0]])).round(4).tolist()
    [[0.7071, 0.7071], [0.0, 1.0]]
    """
    if (
        isinstance(momentum, bool)
        or not isinstance(momentum, numbers.Real)
        or not 0 <= momentum < 1
    ):
        raise ValueError(
            f"momentum={momentum!r} must be in [0, 1): the share of the old bank "
            "entry kept at each update (the paper uses 0.5)."
        )
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    V = np.asarray(V)
    if V.ndim != 2 or V.shape != (rows.shape[0], bank.shape[1]):
        raise ValueError(
            f"V must have one row of {bank.shape[1]} values per entry of rows "
            f"({rows.shape[0]}), got shape {V.shape}."
        )
    # Keep the last occurrence of each row (labeled rows recur within a batch).
    last = rows.shape[0] - 1 - np.unique(rows[::-1], return_index=True)[1]
    rows, V = rows[last], V[last]
    mixed = momentum * bank[rows] + (1 - momentum) * V
    norm = np.linalg.norm(mixed, axis=1, keepdims=True)
    bank[rows] = mixed / np.maximum(norm, np.finfo(bank.dtype).tiny)
    return bank


def density_count_correlation(log_density, y_labeled, counts):
    """Pearson correlation of the classes' labeled density and pseudo-label count.

    The statistic of Fig. 3 of Zhuang et al.: with ``D_i`` the mean of
    ``Z rho(v_j)`` over the labeled rows of class ``i`` and ``Q_i`` the number
    of unlabeled rows pseudo-labeled ``i``, plain weighted-kNN votes make
    ``corr(D, Q)`` strongly positive (classes in dense regions flood the
    pseudo-labels); density weighting decorrelates them. Classes without a
    labeled row are left out.

    Parameters
    ----------
    log_density : array-like of shape (n_labeled,)
        ``log(Z rho)`` of the labeled rows (:func:`labeled_density`).
    y_labeled : array-like of shape (n_labeled,)
        Their class indices.
    counts : array-like of shape (n_classes,)
        ``Q_i``, unlabeled rows pseudo-labeled as each class.

    Returns
    -------
    corr : float
        In [-1, 1]; NaN when fewer than two classes have labeled rows or when
        ``D`` or ``Q`` is the same for all of them (no correlation is defined).

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.local_propagation import density_count_correlation
    >>> log_density = np.log([1.0, 3.0, 2.0, 6.0])
    >>> round(density_count_correlation(log_density, [0, 0, 1, 1], [10, 30]), 3)
    1.0
    """
    log_density = np.asarray(log_density, dtype=np.float64)
    y_labeled = np.asarray(y_labeled)
    counts = np.asarray(counts, dtype=np.float64)
    present = np.flatnonzero(np.bincount(y_labeled, minlength=counts.size) > 0)
    if present.size < 2 or not np.all(np.isfinite(log_density)):
        return float("nan")
    # log D_i by log-sum-exp, then D up to one positive factor, which the
    # correlation ignores: exp(log rho) alone can overflow for small tau.
    log_D = np.array(
        [
            logsumexp(log_density[y_labeled == c]) - np.log(np.sum(y_labeled == c))
            for c in present
        ]
    )
    D = np.exp(log_D - log_D.max())
    Q = counts[present]
    D, Q = D - D.mean(), Q - Q.mean()
    scale = np.sqrt((D @ D) * (Q @ Q))
    if not scale > 0:
        return float("nan")
    return float(np.clip((D @ Q) / scale, -1.0, 1.0))
