"""Solvers for the diffusion system ``(I - alpha W) Z = Y``.

``W`` is a symmetrically normalized affinity (:func:`skssl.graph.normalize_affinity`),
whose eigenvalues lie in [-1, 1], so ``I - alpha W`` is symmetric positive
definite for ``0 <= alpha < 1`` and conjugate gradient applies (Zhou et al. 2004;
Iscen et al. 2019, eq. 10).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

__all__ = ["CGResult", "conjugate_gradient", "dense_diffusion", "spectral_diffusion"]


@dataclass
class CGResult:
    """Outcome of :func:`conjugate_gradient`.

    Attributes
    ----------
    solution : ndarray of shape (n_samples, n_columns)
    n_iter : int
        Iterations run.
    residuals : list of float
        Largest relative residual ``||y_c - A z_c|| / ||y_c||`` over the columns,
        before the first iteration and after each one.
    converged : bool
        Whether every column met ``tol``.
    """

    solution: np.ndarray
    n_iter: int
    residuals: list = field(default_factory=list)
    converged: bool = False


def _check_alpha(alpha):
    if not 0.0 <= alpha < 1.0:
        raise ValueError(
            f"alpha={alpha!r} must be in [0, 1): (I - alpha W) is only positive "
            "definite there. Use e.g. alpha=0.99."
        )


def conjugate_gradient(
    W,
    Y,
    *,
    alpha=0.99,
    tol=1e-6,
    max_iter=1000,
    x0=None,
    warn=True,
    stacklevel=2,
):
    """Solve ``(I - alpha W) Z = Y`` for all columns of ``Y`` in one block.

    Each column keeps its own step sizes (the columns are independent systems),
    but they share one sparse product per iteration, so C classes cost about as
    much as one. Converged columns are frozen.

    Parameters
    ----------
    W : sparse matrix or ndarray of shape (n_samples, n_samples)
        Symmetric normalized affinity.
    Y : ndarray of shape (n_samples, n_columns)
        Right-hand sides (one column per class).
    alpha : float, default=0.99
        Diffusion strength in [0, 1).
    tol : float, default=1e-6
        Stop when ``||y_c - A z_c|| <= tol * ||y_c||`` for every column.
    max_iter : int, default=1000
        Largest number of iterations.
    x0 : ndarray of shape (n_samples, n_columns), default=None
        Warm start (e.g. the previous epoch's solution).
    warn : bool, default=True
        Emit a :class:`~sklearn.exceptions.ConvergenceWarning` when ``max_iter``
        stops the solve before ``tol``. Callers that choose a fixed iteration
        budget set it to False and read ``converged`` instead.
    stacklevel : int, default=2
        Stack level of that warning, for callers that wrap this function.

    Returns
    -------
    result : CGResult

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skssl.solvers import conjugate_gradient, dense_diffusion
    >>> W = sp.csr_matrix(np.array([[0, .5, 0], [.5, 0, .5], [0, .5, 0]]))
    >>> Y = np.eye(3)[:, :2]
    >>> res = conjugate_gradient(W, Y, alpha=0.9, tol=1e-10)
    >>> bool(np.allclose(res.solution, dense_diffusion(W, Y, alpha=0.9)))
    True
    """
    _check_alpha(alpha)
    Y = np.asarray(Y, dtype=np.float64)
    squeeze = Y.ndim == 1
    if squeeze:
        Y = Y[:, None]
    n, c = Y.shape
    if W.shape != (n, n):
        raise ValueError(f"W has shape {W.shape} but Y has {n} rows; they must match.")

    def apply(V):
        return V - alpha * (W @ V)

    y_norm = np.linalg.norm(Y, axis=0)
    zero_rhs = y_norm == 0
    scale = np.where(zero_rhs, 1.0, y_norm)
    if x0 is None:
        Z = np.zeros((n, c))
        R = Y.copy()
    else:
        Z = np.array(x0, dtype=np.float64).reshape(n, c)
        Z[:, zero_rhs] = 0.0
        R = Y - apply(Z)
    P = R.copy()
    rs = np.einsum("ij,ij->j", R, R)
    rel = np.sqrt(rs) / scale
    residuals = [float(rel.max())]
    active = rel > tol
    it = 0
    while it < max_iter and active.any():
        cols = np.flatnonzero(active)
        Pa = P[:, cols]
        AP = apply(Pa)
        denom = np.einsum("ij,ij->j", Pa, AP)
        # denom > 0 for SPD A and non-zero P; guard round-off anyway.
        step = rs[cols] / np.where(denom > 0, denom, np.inf)
        Z[:, cols] += Pa * step
        R[:, cols] -= AP * step
        rs_new = np.einsum("ij,ij->j", R[:, cols], R[:, cols])
        beta = rs_new / np.where(rs[cols] > 0, rs[cols], np.inf)
        P[:, cols] = R[:, cols] + Pa * beta
        rs[cols] = rs_new
        rel = np.sqrt(rs) / scale
        it += 1
        residuals.append(float(rel.max()))
        active = rel > tol
    converged = not active.any()
    if warn and not converged:
        warnings.warn(
            f"conjugate gradient stopped at max_iter={max_iter} with relative "
            f"residual {residuals[-1]:.2e} > tol={tol:g}; raise max_iter or tol, "
            "or lower alpha.",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
    Z = Z[:, 0] if squeeze else Z
    return CGResult(solution=Z, n_iter=it, residuals=residuals, converged=converged)


def dense_diffusion(W, Y, *, alpha=0.99):
    """Closed form ``(I - alpha W)^{-1} Y`` by a dense solve (small n only).

    The test oracle for :func:`conjugate_gradient`.
    """
    _check_alpha(alpha)
    W = W.toarray() if sp.issparse(W) else np.asarray(W, dtype=np.float64)
    A = np.eye(W.shape[0]) - alpha * W
    return np.linalg.solve(A, np.asarray(Y, dtype=np.float64))


def spectral_diffusion(W, Y, *, alpha=0.99, n_components=100, random_state=None):
    """Low-rank diffusion ``U h(Lambda) U^T Y`` with ``h(l) = 1 / (1 - alpha l)``.

    Uses the ``n_components`` largest eigenpairs of ``W``. Cheap once the
    eigenpairs exist, so it suits many right-hand sides over one graph; it
    approximates :func:`conjugate_gradient` (exact when ``n_components = n``).

    Returns
    -------
    Z : ndarray of shape (n_samples, n_columns)
    """
    from scipy.sparse.linalg import eigsh

    _check_alpha(alpha)
    n = W.shape[0]
    Y = np.asarray(Y, dtype=np.float64)
    r = int(n_components)
    if not 1 <= r <= n:
        raise ValueError(
            f"n_components={n_components} must be between 1 and n_samples={n}."
        )
    if r >= n - 1:
        lam, U = np.linalg.eigh(W.toarray() if sp.issparse(W) else np.asarray(W))
        lam, U = lam[-r:], U[:, -r:]
    else:
        v0 = np.random.default_rng(random_state).uniform(-1, 1, n)
        lam, U = eigsh(sp.csr_matrix(W, dtype=np.float64), k=r, which="LA", v0=v0)
    return U @ ((U.T @ Y) / (1.0 - alpha * lam)[:, None])
