"""Solvers for the diffusion system ``(I - alpha W) Z = Y``.

``W`` is a symmetrically normalized affinity (:func:`skssl.graph.normalize_affinity`),
whose eigenvalues lie in [-1, 1], so ``I - alpha W`` is symmetric positive
definite for ``0 <= alpha < 1`` (Zhou et al. 2004; Iscen et al. 2019, eq. 10).

One entry point, :func:`solve_diffusion`, resolves ``solver`` with
:func:`resolve_solver` and calls one flat private ``_solve_*`` function, each
returning a :class:`SolverResult`:

- ``"cg"``: block conjugate gradient (:func:`conjugate_gradient`) to a relative
  tolerance, all columns in one sparse product per iteration;
- ``"spectral"``: the low-rank filter ``U h(Lambda) U^T Y`` with
  ``h(l) = 1 / (1 - alpha l)`` (Iscen et al. 2018). Its offline part, the
  top eigenpairs (:func:`spectral_eigenpairs`), is computed once per graph and
  reused by the online part (:func:`spectral_filter`) for any number of
  right-hand sides;
- ``"dense"``: the closed form by a dense solve, for small graphs and as the
  test oracle.
"""

from __future__ import annotations

import numbers
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

__all__ = [
    "SOLVERS",
    "SolverResult",
    "conjugate_gradient",
    "resolve_solver",
    "solve_diffusion",
    "spectral_eigenpairs",
    "spectral_filter",
]

SOLVERS = ("cg", "spectral", "dense")

# A dense (n, n) float64 system above this many rows takes over 3 GB and an
# O(n^3) solve of minutes on a laptop: the sparse solvers are the way there.
_DENSE_MAX_ROWS = 20_000
# Up to this many rows, eigenpairs numbering at least n / _DENSE_EIGH_RATIO
# come faster from a dense partial decomposition (LAPACK evr) than from
# ARPACK, whose Lanczos basis holds 2 r + 1 vectors: on the mutual 50-NN graph
# of 4,000 MNIST-1D rows (one thread) r = 200 took 12 s either way and
# r = 1,000 took 18 s dense against 184 s with ARPACK (r = 50: 0.5 s ARPACK).
_DENSE_EIGH_MAX_ROWS = 8_000
_DENSE_EIGH_RATIO = 20
# Columns per torch CSR product on the CPU. Each non-zero gathers a row of the
# dense operand, and a block of 16 float32 columns keeps those rows in cache:
# 150 columns on the mutual 50-NN graph of 3 x 10^4 rows (1.1 x 10^6
# non-zeros, two threads) took 0.06 s in blocks of 16 against 0.22 s in one
# product (blocks of 8: 0.08 s, of 64: 0.12 s; scipy in float64: 0.44 s).
_PRODUCT_COLUMNS = 16
# Chebyshev-filtered subspace iteration (spectral_eigenpairs): polynomial
# degree per outer iteration, and guard vectors beyond the n_components wanted
# (at least _EIGEN_GUARD_MIN, else half of n_components): the filter damps
# everything below the block's smallest Ritz value, so the wanted eigenpairs
# converge at the rate of their gap to that value, not to their neighbours'.
_EIGEN_DEGREE = 20
_EIGEN_GUARD_MIN = 10
_EIGEN_FLOAT32_FLOOR = 1e-4
# Up to this many rows a connected graph's eigenpairs come from ARPACK
# (Lanczos), faster there than the filtered block: r = 100 on the mutual
# 50-NN graph of make_manifold_mixture took 1.2 s against 4.8 s at 10^4 rows
# and 6.6 s against 10.8 s at 3 x 10^4 (two threads). Lanczos misses copies of
# a repeated eigenvalue, and a graph with m components has eigenvalue 1 m
# times, so other graphs always take the block.
_ARPACK_MAX_ROWS = 50_000


@dataclass
class SolverResult:
    """Outcome of :func:`solve_diffusion` or :func:`conjugate_gradient`.

    Attributes
    ----------
    solution : ndarray of shape (n_samples, n_columns) or (n_samples,)
    n_iter : int
        Iterations run (0 for the direct solvers).
    residuals : list of float
        Largest relative residual ``||y_c - A z_c|| / ||y_c||`` over the columns:
        before the first iteration and after each one for ``"cg"``, of the
        returned solution for the direct solvers.
    converged : bool
        Whether every column met ``tol`` (the direct solvers report True: they
        have no tolerance).
    solver : str
        The solver that produced the solution.
    """

    solution: np.ndarray
    n_iter: int
    residuals: list = field(default_factory=list)
    converged: bool = False
    solver: str = "cg"


def _check_alpha(alpha):
    if not 0.0 <= alpha < 1.0:
        raise ValueError(
            f"alpha={alpha!r} must be in [0, 1): (I - alpha W) is only positive "
            "definite there. Use e.g. alpha=0.99."
        )


def _check_tol(tol):
    if not 0.0 < tol < 1.0:
        raise ValueError(
            f"tol={tol!r} must be in (0, 1): it is relative to the norm of the "
            "right-hand side, so tol >= 1 stops before the first iteration. Use "
            "e.g. tol=1e-6."
        )


def resolve_solver(solver, n_samples, *, n_components=None):
    """Check a solver choice against the problem and return the concrete solver.

    Parameters
    ----------
    solver : {"cg", "spectral", "dense"}
        Requested solver.
    n_samples : int
        Rows of the graph.
    n_components : int, default=None
        Eigenpairs for ``"spectral"``; required there.

    Returns
    -------
    solver : str

    Examples
    --------
    >>> from skssl.solvers import resolve_solver
    >>> resolve_solver("spectral", 500, n_components=50)
    'spectral'
    """
    if solver not in SOLVERS:
        raise ValueError(
            f"solver={solver!r} is not supported; choose one of {SOLVERS}."
        )
    if solver == "dense" and n_samples > _DENSE_MAX_ROWS:
        raise ValueError(
            f"solver='dense' forms an ({n_samples}, {n_samples}) matrix; above "
            f"{_DENSE_MAX_ROWS} rows use solver='cg' (exact to tol) or "
            "solver='spectral' (low rank)."
        )
    if solver == "spectral":
        if not (
            isinstance(n_components, numbers.Integral)
            and 1 <= n_components <= n_samples
        ):
            raise ValueError(
                f"n_components={n_components!r} must be an int between 1 and "
                f"n_samples={n_samples} for solver='spectral'; e.g. "
                f"n_components={min(100, n_samples)}."
            )
    return solver


def _torch_device(device):
    """A ``torch.device`` from ``"cpu"``, ``"cuda"``, ``"auto"`` or None (CPU)."""
    import torch

    from ._validation import resolve_device

    try:
        device = torch.device("cpu" if device is None else resolve_device(device))
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a torch device; use 'cpu', 'cuda', "
            "'cuda:<index>' or 'auto'."
        ) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={str(device)!r} but torch sees no CUDA device; install a "
            "CUDA build of PyTorch or use device='cpu' (or 'auto')."
        )
    return device


def _operator(A, dtype, device):
    """``V -> A V`` on the arrays the solve runs on.

    On the CPU in float64 (``device`` None or a CPU device) these are numpy
    arrays and the product is scipy's (or the callable itself): scipy's
    float64 product was faster than torch's CSR one (0.029 s against 0.048 s at
    n = 2 x 10^5, 10 columns, one thread), and small problems never import
    torch. In float32 or on a GPU they are torch tensors
    (:func:`_torch_product`). A callable works on numpy arrays, so it runs on
    the CPU in float64 only.
    """
    if _on_numpy(dtype, device):
        matmul = A if callable(A) else A.__matmul__
        return lambda V: np.asarray(matmul(V), dtype=np.float64)
    if callable(A) and not sp.issparse(A):
        raise ValueError(
            "a callable operator works on numpy float64 arrays on the CPU; give "
            "a sparse matrix or ndarray to solve in float32 or on a GPU."
        )
    return _torch_product(A, dtype, device)


def _torch_product(A, dtype, device):
    """``V -> A V`` on torch tensors of ``dtype`` on ``device``.

    A sparse ``A`` becomes a torch CSR tensor with 32-bit indices (0.014 s
    against scipy's 0.021 s for a float32 product at n = 2 x 10^5, 10
    columns). On the CPU a wide ``V`` goes through in blocks of
    ``_PRODUCT_COLUMNS`` columns, whose rows stay in cache while the non-zeros
    gather them (see there).
    """
    import torch

    if not sp.issparse(A):
        return torch.from_numpy(np.asarray(A, dtype=dtype)).to(device).__matmul__
    A = sp.csr_matrix(A)
    index = np.int32 if A.nnz < np.iinfo(np.int32).max else np.int64
    with warnings.catch_warnings():
        # torch calls its CSR support "beta"; the product used here is the
        # long-standing sparse-dense matmul.
        warnings.simplefilter("ignore", UserWarning)
        csr = torch.sparse_csr_tensor(
            torch.from_numpy(A.indptr.astype(index)),
            torch.from_numpy(A.indices.astype(index)),
            torch.from_numpy(np.asarray(A.data, dtype=dtype)),
            size=A.shape,
            check_invariants=False,
        ).to(device)
    width = _PRODUCT_COLUMNS
    if csr.device.type != "cpu":
        return csr.__matmul__

    def product(V):
        if V.ndim == 1 or V.shape[1] <= width:
            return csr @ V
        out = torch.empty_like(V)
        for lo in range(0, V.shape[1], width):
            out[:, lo : lo + width] = csr @ V[:, lo : lo + width].contiguous()
        return out

    return product


def _on_numpy(dtype, device):
    return dtype == np.float64 and (device is None or device.type == "cpu")


def _array(values, dtype, device):
    """``values`` (numpy) as the solve's array type: numpy or a torch tensor."""
    values = np.ascontiguousarray(values, dtype=dtype)
    if _on_numpy(dtype, device):
        return values
    import torch

    return torch.from_numpy(values).to(device)


def _numpy(values):
    return values if isinstance(values, np.ndarray) else values.cpu().numpy()


def _column_dots(U, V):
    """``sum_i U_ij V_ij`` per column, for numpy arrays or torch tensors.

    On the CPU numpy's einsum serves both (torch shares the memory): it took
    1.8 ms at (2 x 10^5, 10) against 16 ms for torch.einsum and 4 ms for
    ``(U * V).sum(0)``, which stays the GPU's way.
    """
    if isinstance(U, np.ndarray):
        return np.einsum("ij,ij->j", U, V)
    if U.device.type == "cpu":
        import torch

        return torch.from_numpy(np.einsum("ij,ij->j", U.numpy(), V.numpy()))
    return (U * V).sum(0)


@contextmanager
def _flush_denormals(device):
    """Flush float32 denormals to zero on the CPU for the block.

    Rows far from every label hold values that shrink by the edge weights at
    each hop and reach float32's denormal range (below 1e-38), whose
    arithmetic is many times slower on x86: flushing them took a 10^6-row
    float32 solve from 12.6 s to 9.9 s, and they are far below any tolerance.
    torch has no getter for the setting; it is off by default and turned off
    again afterwards.
    """
    import torch

    flushed = device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)


def _block_cg(apply, B, X, tol, max_iter):
    """Block CG, each column its own system; returns the state.

    ``B`` and ``X`` are numpy arrays or torch tensors: the operations below
    mean the same for both. While more than half of the columns are active,
    all of them go through the product and are updated in place (a converged
    column takes a zero step); after that only the active ones are gathered.
    """
    scale = _column_dots(B, B) ** 0.5
    X[:, scale == 0] = 0.0
    scale = scale + (scale == 0)
    R = B - apply(X) if bool(X.any()) else B * 1.0
    P = R * 1.0
    rs = _column_dots(R, R)
    rel = rs**0.5 / scale
    residuals = [float(rel.max())]
    active = rel > tol
    it = 0
    while it < max_iter and bool(active.any()):
        if 2 * int(active.sum()) > B.shape[1]:
            AP = apply(P)
            denom = _column_dots(P, AP)
            # denom > 0 for SPD A and non-zero P; guard round-off anyway.
            ok = active & (denom > 0)
            step = rs / (denom + ~ok) * ok
            X += P * step
            R -= AP * step
            rs_new = _column_dots(R, R)
            ok = active & (rs > 0)
            P *= rs_new / (rs + ~ok) * ok
            P += R
            rs = rs_new * active + rs * ~active
        else:
            Pa, Ra, rsa = P[:, active], R[:, active], rs[active]
            AP = apply(Pa)
            denom = _column_dots(Pa, AP)
            ok = denom > 0
            step = rsa / (denom + ~ok) * ok
            X[:, active] += Pa * step
            Ra -= AP * step
            rs_new = _column_dots(Ra, Ra)
            ok = rsa > 0
            R[:, active] = Ra
            P[:, active] = Ra + Pa * (rs_new / (rsa + ~ok) * ok)
            rs[active] = rs_new
        rel = rs**0.5 / scale
        it += 1
        residuals.append(float(rel.max()))
        active = rel > tol
    return X, it, residuals, not bool(active.any())


def conjugate_gradient(
    A,
    B,
    *,
    tol=1e-6,
    max_iter=1000,
    x0=None,
    dtype=None,
    device=None,
    warn=True,
    stacklevel=2,
):
    """Solve ``A X = B`` for all columns of ``B`` in one block (``A`` SPD).

    Each column keeps its own step sizes (the columns are independent systems),
    but they share one product with ``A`` per iteration, so C right-hand sides
    cost about as much as one. Converged columns are frozen. In float64 on
    the CPU the iterations run on numpy and scipy; in float32 or on a CUDA
    device, on PyTorch.

    Parameters
    ----------
    A : sparse matrix, ndarray or callable
        Symmetric positive definite operator of shape (n, n): anything with
        ``A @ V``, or a function ``V -> A V`` on (n, m) numpy arrays (CPU,
        float64 only).
    B : ndarray of shape (n,) or (n, n_columns)
        Right-hand sides.
    tol : float, default=1e-6
        Stop when ``||b_c - A x_c|| <= tol * ||b_c||`` for every column; in (0, 1).
    max_iter : int, default=1000
        Largest number of iterations.
    x0 : ndarray of the shape of ``B``, default=None
        Warm start (e.g. the previous epoch's solution).
    dtype : {"float64", "float32"} or None, default=None
        Precision of the iterations. With ``"float32"`` (half the memory
        traffic: 1.8x faster per iteration at n = 10^6) the true residual is
        then checked in float64 and, where it misses ``tol``, the solve goes
        on in float64 from there, so the result always meets ``tol``. None is
        float64.
    device : {"cpu", "cuda", "auto"} or torch.device, default=None
        Where the iterations run; None is the CPU, ``"auto"`` a CUDA device
        when torch sees one. A CUDA device needs a sparse matrix or ndarray
        ``A``.
    warn : bool, default=True
        Emit a :class:`~sklearn.exceptions.ConvergenceWarning` when ``max_iter``
        stops the solve before ``tol``. Callers that choose a fixed iteration
        budget set it to False and read ``converged`` instead.
    stacklevel : int, default=2
        Stack level of that warning, for callers that wrap this function.

    Returns
    -------
    result : SolverResult
        ``n_iter`` counts the iterations of both precisions.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skssl.solvers import conjugate_gradient
    >>> A = sp.csr_matrix(np.array([[2.0, -1, 0], [-1, 2, -1], [0, -1, 2]]))
    >>> B = np.eye(3)[:, :2]
    >>> res = conjugate_gradient(A, B, tol=1e-12)
    >>> bool(np.allclose(A @ res.solution, B)), res.n_iter <= 3
    (True, True)
    >>> res32 = conjugate_gradient(A, B, tol=1e-10, dtype="float32")
    >>> bool(np.allclose(A @ res32.solution, B, atol=1e-9))
    True
    """
    _check_tol(tol)
    if dtype not in (None, "float64", "float32", np.float64, np.float32):
        raise ValueError(
            f"dtype={dtype!r} is not supported; use 'float64', 'float32' or None."
        )
    low = np.dtype(dtype or np.float64) == np.float32
    cpu = device is None or (isinstance(device, str) and device == "cpu")
    device = None if cpu and not low else _torch_device(device)
    B = np.asarray(B, dtype=np.float64)
    squeeze = B.ndim == 1
    if squeeze:
        B = B[:, None]
    n, c = B.shape
    shape = getattr(A, "shape", (n, n))
    if tuple(shape) != (n, n):
        raise ValueError(
            f"the operator has shape {tuple(shape)} but the right-hand side has {n} "
            "rows; they must match."
        )
    X = np.zeros((n, c)) if x0 is None else np.array(x0, dtype=np.float64)
    X = X.reshape(n, c)
    n_iter, residuals = 0, []
    if low:
        with _flush_denormals(device):
            X32, n_iter, residuals, _ = _block_cg(
                _operator(A, np.float32, device),
                _array(B, np.float32, device),
                _array(X, np.float32, device),
                tol,
                max_iter,
            )
        X = _numpy(X32).astype(np.float64)
    # In float64 from X: after float32 iterations, the first residual of this
    # solve is the true one (the float32 recursion's can drift from it), and
    # it iterates on only if some column misses tol.
    Xd, more, extra, converged = _block_cg(
        _operator(A, np.float64, device),
        _array(B, np.float64, device),
        _array(X, np.float64, device),
        tol,
        max_iter - n_iter,
    )
    X = _numpy(Xd)
    residuals = residuals[:-1] + extra
    n_iter += more
    if warn and not converged:
        warnings.warn(
            f"conjugate gradient stopped at max_iter={max_iter} with relative "
            f"residual {residuals[-1]:.2e} > tol={tol:g}; raise max_iter or tol, "
            "or lower alpha.",
            ConvergenceWarning,
            stacklevel=stacklevel,
        )
    X = X[:, 0] if squeeze else X
    return SolverResult(
        solution=X, n_iter=n_iter, residuals=residuals, converged=converged, solver="cg"
    )


def _diffusion_matrix(W, alpha):
    """``I - alpha W`` as one matrix (CSR for a sparse ``W``): the diffusion's system.

    One sparse product per conjugate-gradient iteration, for all classes.
    """
    if sp.issparse(W):
        return sp.identity(W.shape[0], format="csr") - alpha * sp.csr_matrix(W)
    W = np.asarray(W, dtype=np.float64)
    return np.eye(W.shape[0]) - alpha * W


def _diffusion_operator(W, alpha):
    """``V -> (I - alpha W) V`` without forming the matrix (one-off products)."""

    def apply(V):
        return V - alpha * (W @ V)

    apply.shape = W.shape
    return apply


def spectral_eigenpairs(
    W,
    n_components,
    *,
    tol=1e-6,
    max_iter=100,
    random_state=None,
    warn=True,
    stacklevel=2,
):
    """The ``n_components`` largest eigenpairs of a normalized affinity (offline).

    Computed once per graph, they serve :func:`spectral_filter` for any number
    of right-hand sides (e.g. the queries of a ranking). A dense partial
    decomposition serves small graphs where ``n_components`` is a sizeable
    share of the rows, ARPACK (Lanczos) a connected graph of up to 50,000
    rows, and a block method, Chebyshev-filtered subspace iteration (Zhou
    and Saad 2007), the others: a block of
    ``n_components`` plus guard vectors goes through a degree-20 Chebyshev
    polynomial of ``W`` that damps the spectrum below the block's smallest
    Ritz value (float32 sparse products, in column blocks), then a
    Rayleigh-Ritz step in float64, until every wanted pair meets ``tol``.

    A block method finds repeated eigenvalues: a kNN graph with ``m``
    connected components (a mutual kNN graph has many) has eigenvalue 1 ``m``
    times, and a single-vector Lanczos method (ARPACK) returns only some of
    its copies, filling the rest with smaller eigenvalues. On the mutual
    10-NN graph of 20,000 rows in eight blobs (66 components with edges)
    ARPACK returned eight of the twenty eigenvalues 1; the filtered block
    returns all twenty. At 10^5 rows (the mutual 50-NN graph of
    ``make_manifold_mixture``, 46 components, r = 100) the block took 40 s on
    two threads; ARPACK took 65 to 311 s and missed copies of eigenvalue 1.

    With at least ``n_components`` such components the eigenpairs are all
    eigenvalue 1, and their vectors lie in the span of the components' degree
    vectors: a filter over them orders the rows of a component by degree
    alone, whatever the right-hand side. A ``UserWarning`` says so (the
    mutual 50-NN graph of 10^6 rows of ``make_manifold_mixture`` had 2,126
    components).

    Parameters
    ----------
    W : sparse matrix or ndarray of shape (n_samples, n_samples)
        Symmetric normalized affinity.
    n_components : int
        Number of eigenpairs, between 1 and n_samples.
    tol : float, default=1e-6
        Stop when every wanted pair has ``||W u - lambda u|| <= tol`` (unit
        ``u``); in (0, 1). The filter's products run in float32 until the
        residual stops halving per step below 1e-4, then in float64 (from
        the start below ``tol=1e-6``), so float32 rounding never stops it
        short of ``tol``.
    max_iter : int, default=100
        Largest number of filter steps (each ``_EIGEN_DEGREE`` products).
    random_state : int, RandomState instance or None, default=None
        Seed of the starting block (or of ARPACK's start vector).
    warn : bool, default=True
        Emit a :class:`~sklearn.exceptions.ConvergenceWarning` when
        ``max_iter`` stops the iteration before ``tol``.
    stacklevel : int, default=2
        Stack level of the components warning, for callers that wrap this
        function.

    Returns
    -------
    eigenvalues : ndarray of shape (n_components,)
        In increasing order.
    eigenvectors : ndarray of shape (n_samples, n_components)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skssl.solvers import spectral_eigenpairs
    >>> ring = sp.diags([np.ones(399), np.ones(399)], [-1, 1], format="lil")
    >>> ring[0, 399] = ring[399, 0] = 1
    >>> # two separate cycles: eigenvalues cos(2 pi j / 400), each twice
    >>> W = sp.csr_matrix(sp.block_diag([ring, ring])) / 2
    >>> lam, U = spectral_eigenpairs(W, 3, random_state=0)
    >>> np.round(lam, 6).tolist()
    [0.999877, 1.0, 1.0]
    >>> bool(np.allclose(W @ U, U * lam, atol=1e-5))
    True
    """
    from scipy.linalg import eigh

    _check_tol(tol)
    if not (isinstance(max_iter, numbers.Integral) and max_iter >= 1):
        raise ValueError(f"max_iter={max_iter!r} must be an integer >= 1.")
    n = W.shape[0]
    resolve_solver("spectral", n, n_components=n_components)
    r = int(n_components)
    n_linked = _edge_components(W)
    if n_linked >= r:
        warnings.warn(
            f"the graph has {n_linked} connected components, at least "
            f"n_components={r}: each adds an eigenvalue 1, so the eigenvectors "
            "only tell components apart and a spectral solve orders the rows "
            "within a component by their degree alone. Raise n_components well "
            f"above {n_linked}, connect the graph (more n_neighbors, or "
            "symmetrize='max'), or use solver='cg'.",
            UserWarning,
            stacklevel=stacklevel,
        )
    if r >= n - 1 or (n <= _DENSE_EIGH_MAX_ROWS and r * _DENSE_EIGH_RATIO >= n):
        # A dense partial decomposition is faster for many eigenpairs of a
        # small graph (see _DENSE_EIGH_MAX_ROWS).
        dense = W.toarray() if sp.issparse(W) else np.asarray(W, dtype=np.float64)
        return eigh(dense, subset_by_index=[n - r, n - 1], driver="evr")
    if n <= _ARPACK_MAX_ROWS and n_linked <= 1:
        # Connected: eigenvalue 1 is simple, and Lanczos is faster here.
        from scipy.sparse.linalg import eigsh
        from sklearn.utils import check_random_state

        v0 = check_random_state(random_state).uniform(-1, 1, n)
        return eigsh(sp.csr_matrix(W, dtype=np.float64), k=r, which="LA", v0=v0)
    return _filtered_subspace(
        W, r, tol=tol, max_iter=max_iter, random_state=random_state, warn=warn
    )


def _edge_components(W):
    """Connected components of ``W`` that hold an edge (isolated rows, whose
    eigenvalue is 0, do not count)."""
    from scipy.sparse.csgraph import connected_components

    W = sp.csr_matrix(W)
    _, labels = connected_components(W, directed=False)
    return np.unique(labels[np.diff(W.indptr) > 0]).size


def _filtered_subspace(W, r, *, tol, max_iter, random_state, warn):
    """The top ``r`` eigenpairs of symmetric ``W`` by Chebyshev-filtered
    subspace iteration; see :func:`spectral_eigenpairs`."""
    import torch
    from scipy.linalg import eigh
    from sklearn.utils import check_random_state

    n = W.shape[0]
    W = sp.csr_matrix(W, dtype=np.float64) if sp.issparse(W) else np.asarray(W)
    block = min(n, r + max(_EIGEN_GUARD_MIN, r // 2))
    cpu = torch.device("cpu")
    product = _torch_product(W, np.float64, cpu)
    # The filter runs in float32 (half the memory traffic) until the
    # residual stops halving per step below _EIGEN_FLOAT32_FLOOR (float32
    # rounding holds it near 1e-6 on clustered spectra), then in float64;
    # above that floor a slow step is slow convergence, not rounding.
    low = np.float32 if tol >= 1e-6 else np.float64
    filter_product = _torch_product(W, low, cpu) if low == np.float32 else product
    previous = np.inf
    # The filter damps [lower, cut] and needs the spectrum's bottom in it. Any
    # W: Gershgorin's -radius. A nonnegative W (an affinity): -lambda_max
    # (Perron-Frobenius), which is 1 for a normalized affinity while radius
    # can be several times larger (low-degree rows next to hubs); the top
    # Ritz value bounds lambda_max from below, so the bound is
    # max(1, theta_max), re-read at every step.
    radius = float(np.max(abs(W).sum(axis=1)))
    nonnegative = (W.data if sp.issparse(W) else W).min(initial=0.0) >= 0
    rng = check_random_state(random_state)
    V = _orthonormal(rng.standard_normal((n, block)))
    with _flush_denormals(cpu):
        for step in range(max_iter + 1):
            # Rayleigh-Ritz in float64: V spans the block, AV = W V.
            AV = product(torch.from_numpy(V)).numpy()
            H = V.T @ AV
            theta, S = eigh((H + H.T) / 2)
            top = slice(block - r, block)
            V = V @ S
            residual = np.linalg.norm(AV @ S[:, top] - V[:, top] * theta[top], axis=0)
            if residual.max() <= tol or step == max_iter:
                break
            if (
                low == np.float32
                and previous / 2 < residual.max() < _EIGEN_FLOAT32_FLOOR
            ):
                low, filter_product = np.float64, product
            previous = residual.max()
            lower = -min(radius, max(1.0, theta[-1])) if nonnegative else -radius
            filtered = _chebyshev_filter(filter_product, V, lower, theta[0], low)
            V = _orthonormal(filtered)
    if warn and residual.max() > tol:
        warnings.warn(
            f"the eigenpairs stopped at max_iter={max_iter} with residual "
            f"{residual.max():.2e} > tol={tol:g}; raise max_iter or tol.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return theta[top], np.ascontiguousarray(V[:, top])


def _orthonormal(V):
    """An orthonormal basis of the columns of ``V`` (Householder QR, float64):
    torch's took 0.18 s against numpy's 0.47 s at (30,000, 150), two threads."""
    import torch

    return torch.linalg.qr(torch.from_numpy(V))[0].numpy()


def _chebyshev_filter(product, V, lower, cut, dtype):
    """``T_d((W - c) / e) V`` for ``W`` given by ``product``: the Chebyshev
    polynomial of degree ``_EIGEN_DEGREE`` on ``[lower, cut]`` mapped to
    [-1, 1], at most 1 in magnitude there and growing fast above ``cut``.

    The three-term recurrence ``T_{k+1} = 2 L T_k - T_{k-1}`` runs in place;
    both terms are rescaled per column now and then (the polynomial is
    linear in V, so only each column's direction matters), so float32 never
    overflows however far the top lies above ``cut``.
    """
    import torch

    half, centre = (cut - lower) / 2, (cut + lower) / 2
    previous = torch.from_numpy(np.ascontiguousarray(V, dtype=dtype))
    current = product(previous).sub_(previous, alpha=centre).div_(half)
    for k in range(2, _EIGEN_DEGREE + 1):
        following = product(current).sub_(current, alpha=centre)
        following.mul_(2 / half).sub_(previous)
        previous, current = current, following
        if k % 5 == 0:
            scale = torch.linalg.vector_norm(current, dim=0).clamp_min_(1e-30)
            previous.div_(scale)
            current.div_(scale)
    return current.to(torch.float64).numpy()


def spectral_filter(eigenpairs, Y, *, alpha=0.99):
    """Low-rank diffusion ``U h(Lambda) U^T Y``, ``h(l) = 1 / (1 - alpha l)`` (online).

    Parameters
    ----------
    eigenpairs : tuple (eigenvalues, eigenvectors)
        From :func:`spectral_eigenpairs`.
    Y : ndarray or sparse matrix of shape (n_samples, n_columns)
        A sparse ``Y`` (e.g. ranking queries, each non-zero on a few rows)
        costs ``O(nnz r)`` to project instead of ``O(n r n_columns)``.
    alpha : float, default=0.99

    Returns
    -------
    Z : ndarray of shape (n_samples, n_columns)
    """
    _check_alpha(alpha)
    lam, U = eigenpairs
    if sp.issparse(Y):
        projected = np.asarray((sp.csr_matrix(Y, dtype=np.float64).T @ U).T)
    else:
        Y = np.asarray(Y, dtype=np.float64)
        projected = U.T @ Y
    filtered = projected / (1.0 - alpha * lam).reshape(
        (-1,) + (1,) * (projected.ndim - 1)
    )
    return U @ filtered


def _relative_residual(W, Y, Z, alpha):
    R = Y - _diffusion_operator(W, alpha)(Z)
    scale = np.linalg.norm(Y, axis=0)
    rel = np.linalg.norm(R, axis=0) / np.where(scale > 0, scale, 1.0)
    return float(np.max(rel, initial=0.0))


# From this many rows the conjugate gradient iterates in float32 first (then
# checks and, where needed, refines in float64): at n = 10^6 a float32
# iteration took 0.38 s against 0.66 s (benchmarks/results/propagation.md).
# Smaller problems solve in float64 directly, in well under a second.
_FLOAT32_MIN_ROWS = 20_000


def _solve_cg(W, Y, *, alpha, tol, max_iter, x0, dtype, device, warn, stacklevel):
    n = W.shape[0]
    small = n < _FLOAT32_MIN_ROWS
    if dtype is None:
        dtype = "float64" if small else "float32"
    if small and isinstance(device, str) and device == "auto":
        # A GPU does not pay for its transfers (nor torch for its import)
        # on a problem this small.
        device = None
    return conjugate_gradient(
        _diffusion_matrix(W, alpha),
        Y,
        tol=tol,
        max_iter=max_iter,
        x0=x0,
        dtype=dtype,
        device=device,
        warn=warn,
        stacklevel=stacklevel + 1,
    )


def _solve_spectral(W, Y, *, alpha, eigenpairs):
    Z = spectral_filter(eigenpairs, Y, alpha=alpha)
    return SolverResult(
        solution=Z,
        n_iter=0,
        residuals=[_relative_residual(W, Y, Z, alpha)],
        converged=True,
        solver="spectral",
    )


def _solve_dense(W, Y, *, alpha):
    Wd = W.toarray() if sp.issparse(W) else W
    Z = np.linalg.solve(_diffusion_matrix(Wd, alpha), Y)
    return SolverResult(
        solution=Z,
        n_iter=0,
        residuals=[_relative_residual(W, Y, Z, alpha)],
        converged=True,
        solver="dense",
    )


def solve_diffusion(
    W,
    Y,
    *,
    alpha=0.99,
    solver="cg",
    tol=1e-6,
    max_iter=1000,
    x0=None,
    n_components=None,
    eigenpairs=None,
    random_state=None,
    dtype=None,
    device=None,
    warn=True,
    stacklevel=2,
):
    """Solve ``(I - alpha W) Z = Y`` with the chosen solver.

    Parameters
    ----------
    W : sparse matrix or ndarray of shape (n_samples, n_samples)
        Symmetric normalized affinity.
    Y : ndarray of shape (n_samples,) or (n_samples, n_columns)
        Right-hand sides (one column per class or per query).
    alpha : float, default=0.99
        Diffusion strength in [0, 1).
    solver : {"cg", "spectral", "dense"}, default="cg"
        See the module docstring.
    tol, max_iter, x0, device, warn, stacklevel
        Conjugate gradient only; as in :func:`conjugate_gradient`.
    dtype : {"float64", "float32"} or None, default=None
        Conjugate gradient only, as in :func:`conjugate_gradient`; None
        iterates in float32 first (checked and refined in float64) from
        20,000 rows, in float64 below.
    n_components : int, default=None
        Spectral only: eigenpairs to compute when ``eigenpairs`` is not given.
    eigenpairs : tuple (eigenvalues, eigenvectors), default=None
        Spectral only: precomputed :func:`spectral_eigenpairs` of ``W``.
    random_state : int, RandomState instance or None, default=None
        Spectral only: seed of the eigensolver.

    Returns
    -------
    result : SolverResult

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from skssl.solvers import solve_diffusion
    >>> W = sp.csr_matrix(np.array([[0, .5, 0], [.5, 0, .5], [0, .5, 0]]))
    >>> Y = np.eye(3)[:, :2]
    >>> cg = solve_diffusion(W, Y, alpha=0.9, tol=1e-10)
    >>> dense = solve_diffusion(W, Y, alpha=0.9, solver="dense")
    >>> bool(np.allclose(cg.solution, dense.solution)), cg.solver, dense.n_iter
    (True, 'cg', 0)
    """
    _check_alpha(alpha)
    n = W.shape[0]
    Y = np.asarray(Y, dtype=np.float64)
    if Y.shape[0] != n or W.shape != (n, n):
        raise ValueError(
            f"W has shape {W.shape} but Y has {Y.shape[0]} rows; they must match."
        )
    if solver == "spectral" and eigenpairs is not None:
        n_components = len(eigenpairs[0])
    solver = resolve_solver(solver, n, n_components=n_components)
    if solver == "cg":
        return _solve_cg(
            W,
            Y,
            alpha=alpha,
            tol=tol,
            max_iter=max_iter,
            x0=x0,
            dtype=dtype,
            device=device,
            warn=warn,
            stacklevel=stacklevel + 1,
        )
    if solver == "spectral":
        if eigenpairs is None:
            eigenpairs = spectral_eigenpairs(
                W, n_components, random_state=random_state, stacklevel=stacklevel + 1
            )
        return _solve_spectral(W, Y, alpha=alpha, eigenpairs=eigenpairs)
    return _solve_dense(W, Y, alpha=alpha)
