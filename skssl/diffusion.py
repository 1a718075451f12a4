"""From labels to diffusion and from diffusion scores to labels.

Pure functions shared by every graph-based estimator (label spreading, deep
label propagation, local label propagation) and the command line: arrays in,
arrays out. Each concept lives here once:

- :func:`label_matrix` turns labels into the right-hand side ``Y``;
- :func:`diffuse` normalizes the affinity and solves ``(I - alpha W) Z = Y``
  (:func:`skssl.solvers.solve_diffusion`);
- :func:`class_mass_normalize`, :func:`label_distributions`,
  :func:`clamp_labeled` and :func:`certainty` turn scores into the fitted
  ``label_distributions_`` and ``certainty_`` of every estimator;
- :func:`unreachable_rows` finds the rows no label can reach;
- :func:`class_weights` balances classes in a training loss;
- :func:`knn_vote` labels new points from their weighted neighbours.

The vocabulary, the same in every estimator:

``transduction_``
    The label of every fitted row; labeled rows keep their given label.
``label_distributions_``
    Class distribution of every fitted row, rows summing to 1; a labeled row's
    distribution is its given label (one-hot).
``certainty_``
    ``1 - H(p_i) / log C`` of that distribution, in [0, 1]: 1 for a labeled or
    sure row, 0 for a uniform (or unreachable) one.
"""

from __future__ import annotations

import warnings

import numpy as np

from .graph import normalize_affinity
from .solvers import solve_diffusion

__all__ = [
    "certainty",
    "clamp_labeled",
    "class_mass_normalize",
    "class_weights",
    "diffuse",
    "knn_vote",
    "label_distributions",
    "label_matrix",
    "unreachable_rows",
]

# Queries per block in knn_vote: the gathered (block, k, C) neighbour
# distributions stay near 2**24 values whatever the number of queries.
_VOTE_BLOCK_VALUES = 2**24


def label_matrix(y_encoded, n_classes):
    """Right-hand side ``Y`` of the diffusion: ``1 / |L_c|`` on labeled rows.

    Dividing each class column by its number of labels keeps a class with many
    labels from flooding the graph (as in the released DLP code).

    Parameters
    ----------
    y_encoded : ndarray of shape (n_samples,)
        Class indices, -1 for unlabeled rows.
    n_classes : int

    Returns
    -------
    Y : ndarray of shape (n_samples, n_classes)

    Examples
    --------
    >>> from skssl.diffusion import label_matrix
    >>> label_matrix([0, 0, 1, -1], 2).tolist()
    [[0.5, 0.0], [0.5, 0.0], [0.0, 1.0], [0.0, 0.0]]
    """
    y_encoded = np.asarray(y_encoded)
    labeled = np.flatnonzero(y_encoded >= 0)
    counts = np.bincount(y_encoded[labeled], minlength=n_classes).astype(float)
    Y = np.zeros((y_encoded.shape[0], n_classes))
    Y[labeled, y_encoded[labeled]] = 1.0 / counts[y_encoded[labeled]]
    return Y


def diffuse(W, Y, *, alpha=0.99, stacklevel=2, **solver_params):
    """Solve ``(I - alpha D^-1/2 W D^-1/2) Z = Y`` for all columns at once.

    Parameters
    ----------
    W : sparse matrix of shape (n_samples, n_samples)
        Symmetric affinity with zero diagonal (``KNNGraph.affinity_``).
    Y : ndarray of shape (n_samples, n_columns)
        Right-hand sides, e.g. :func:`label_matrix`.
    alpha : float, default=0.99
        Diffusion strength in [0, 1).
    stacklevel : int, default=2
        Stack level of a convergence warning, for callers that wrap this.
    **solver_params
        ``solver``, ``tol``, ``max_iter``, ``x0``, ``n_components``,
        ``random_state``, ``dtype``, ``device``, ``warn``: as in
        :func:`skssl.solvers.solve_diffusion`.

    Returns
    -------
    result : skssl.solvers.SolverResult
        ``result.solution`` holds the raw scores ``Z``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skssl.diffusion import diffuse, label_matrix
    >>> W = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    >>> Z = diffuse(W, label_matrix([0, -1, 1], 2), alpha=0.9).solution
    >>> Z.argmax(axis=1).tolist()
    [0, 0, 1]
    """
    W_norm, _ = normalize_affinity(W)
    return solve_diffusion(
        W_norm, Y, alpha=alpha, stacklevel=stacklevel + 1, **solver_params
    )


def class_mass_normalize(Z):
    """Divide each class column of ``Z`` by its total mass (Zhu et al. 2003).

    With few labels and ``alpha`` near 1, the diffusion's dominant component is
    proportional to the degrees of the labeled rows, so a class whose seeds sit
    in a dense region floods the graph. Equalising the column masses removes
    that bias; it is what keeps one-label-per-class problems stable.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.diffusion import class_mass_normalize
    >>> class_mass_normalize(np.array([[3.0, 1.0], [1.0, 1.0]])).tolist()
    [[0.75, 0.5], [0.25, 0.5]]
    """
    Z = np.maximum(np.asarray(Z, dtype=np.float64), 0.0)
    mass = Z.sum(axis=0)
    return Z / np.where(mass > 0, mass, 1.0)


def unreachable_rows(W, labeled, *, warn=False, stacklevel=2, components=None):
    """Rows of the graph ``W`` in a connected component without any labeled row.

    Diffusion cannot reach them whatever the number of iterations, unlike rows
    that are merely far away when the solve stops early. Computed once per fit
    and handed to :func:`label_distributions`.

    Parameters
    ----------
    W : sparse matrix of shape (n_samples, n_samples)
    labeled : ndarray of shape (n_samples,), bool
    warn : bool, default=False
        Emit a :class:`UserWarning` giving their number when there are any.
    stacklevel : int, default=2
        Stack level of that warning.
    components : ndarray of shape (n_samples,), int, default=None
        Connected-component label of every row, as returned by
        :func:`scipy.sparse.csgraph.connected_components`, for callers that
        have it already; computed from ``W`` when None.

    Returns
    -------
    mask : ndarray of shape (n_samples,), bool

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skssl.diffusion import unreachable_rows
    >>> W = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]]))
    >>> unreachable_rows(W, np.array([True, False, False])).tolist()
    [False, False, True]
    """
    if components is None:
        from scipy.sparse.csgraph import connected_components

        _, components = connected_components(W, directed=False)
    component = np.asarray(components)
    seeded = np.zeros(component.max() + 1, dtype=bool)
    seeded[component[labeled]] = True
    mask = ~seeded[component]
    if warn and mask.any():
        warnings.warn(
            f"{int(mask.sum())} of {mask.size} samples are not connected to any "
            "labeled sample in the kNN graph; they get a uniform label "
            "distribution and certainty 0. Raise n_neighbors to connect them.",
            UserWarning,
            stacklevel=stacklevel,
        )
    return mask


def label_distributions(Z, unreachable=None):
    """Row-normalize non-negative scores into class distributions.

    Rows in ``unreachable``, and rows without positive score (e.g. a solve
    stopped before the labels reached them), become uniform.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_classes)
        Diffusion scores (negative round-off counts as 0).
    unreachable : ndarray of shape (n_samples,), bool, default=None
        Rows no label reaches (:func:`unreachable_rows`).

    Returns
    -------
    P : ndarray of shape (n_samples, n_classes)
        Rows sum to 1.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.diffusion import label_distributions
    >>> label_distributions(np.array([[3.0, 1.0], [0.0, 0.0]])).tolist()
    [[0.75, 0.25], [0.5, 0.5]]
    """
    Z = np.maximum(np.asarray(Z, dtype=np.float64), 0.0)
    mass = Z.sum(axis=1)
    uniform = ~(mass > 0)
    if unreachable is not None:
        uniform |= unreachable
    P = np.empty_like(Z)
    P[~uniform] = Z[~uniform] / mass[~uniform, None]
    P[uniform] = 1.0 / Z.shape[1]
    return P


def clamp_labeled(P, y_encoded):
    """Set the distribution of every labeled row to its given label (one-hot).

    Parameters
    ----------
    P : ndarray of shape (n_samples, n_classes)
    y_encoded : ndarray of shape (n_samples,)
        Class indices, -1 for unlabeled rows.

    Returns
    -------
    P : ndarray of shape (n_samples, n_classes)
        A copy with the labeled rows replaced.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.diffusion import clamp_labeled
    >>> clamp_labeled(np.full((2, 2), 0.5), np.array([1, -1])).tolist()
    [[0.0, 1.0], [0.5, 0.5]]
    """
    P = np.array(P, dtype=np.float64)
    y_encoded = np.asarray(y_encoded)
    labeled = y_encoded >= 0
    P[labeled] = 0.0
    P[labeled, y_encoded[labeled]] = 1.0
    return P


def certainty(P):
    """Certainty ``omega_i = 1 - H(p_i) / log C`` of each distribution (DLP eq. 11).

    1 for a one-hot row, 0 for a uniform one; ``0 * log 0`` counts as 0.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.diffusion import certainty
    >>> certainty(np.array([[1.0, 0.0], [0.5, 0.5]])).tolist()
    [1.0, 0.0]
    """
    P = np.asarray(P, dtype=np.float64)
    n_classes = P.shape[1]
    if n_classes < 2:
        return np.ones(P.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(P > 0, P * np.log(P), 0.0)
    entropy = -plogp.sum(axis=1)
    return np.clip(1.0 - entropy / np.log(n_classes), 0.0, 1.0)


def class_weights(labels, n_classes):
    """Class-balance weights ``zeta_j`` proportional to ``1 / |L_j + U_j|``.

    Normalized to mean 1 over the classes present; an absent class gets 0
    instead of a division by zero.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
        Labels and pseudo-labels of all rows, as class indices.
    n_classes : int

    Returns
    -------
    zeta : ndarray of shape (n_classes,)

    Examples
    --------
    >>> from skssl.diffusion import class_weights
    >>> class_weights([0, 0, 0, 1], 3).tolist()
    [0.5, 1.5, 0.0]
    """
    counts = np.bincount(np.asarray(labels), minlength=n_classes).astype(float)
    present = counts > 0
    zeta = np.zeros(n_classes)
    zeta[present] = 1.0 / counts[present]
    if present.any():
        zeta[present] /= zeta[present].mean()
    return zeta


def knn_vote(indices, weights, F):
    """Class distributions of queries from a weighted vote of their neighbours.

    ``p_q ∝ sum_k w_qk F[i_qk]``: out-of-sample prediction of the graph
    estimators (``F`` = fitted label distributions, ``w`` = affinity kernel)
    and the density-weighted votes of local label propagation (``F`` =
    one-hot labels). A query whose weights are all zero falls back to an
    unweighted vote of its neighbours; one without any neighbour is uniform.

    Parameters
    ----------
    indices : ndarray of shape (n_queries, k), int
        Neighbour rows of ``F``; -1 where a neighbour is missing.
    weights : ndarray of shape (n_queries, k)
        Non-negative vote weights.
    F : ndarray of shape (n_rows, n_classes)
        What each row votes for.

    Returns
    -------
    P : ndarray of shape (n_queries, n_classes)
        Rows sum to 1.

    Examples
    --------
    >>> import numpy as np
    >>> from skssl.diffusion import knn_vote
    >>> F = np.eye(2)[[0, 0, 1]]
    >>> knn_vote(np.array([[0, 2], [1, -1]]), np.array([[1.0, 3.0], [0.0, 0.0]]),
    ...          F).tolist()
    [[0.25, 0.75], [1.0, 0.0]]
    """
    indices = np.asarray(indices)
    F = np.asarray(F, dtype=np.float64)
    n_queries, k = indices.shape
    valid = indices >= 0
    w = np.where(valid, np.asarray(weights, dtype=np.float64), 0.0)
    empty = ~(w.sum(axis=1) > 0)
    w[empty] = valid[empty]
    rows = np.where(valid, indices, 0)
    mass = np.empty((n_queries, F.shape[1]))
    block = max(1, _VOTE_BLOCK_VALUES // max(1, k * F.shape[1]))
    for lo in range(0, n_queries, block):
        hi = min(n_queries, lo + block)
        mass[lo:hi] = np.einsum("qk,qkc->qc", w[lo:hi], F[rows[lo:hi]])
    return label_distributions(mass)
