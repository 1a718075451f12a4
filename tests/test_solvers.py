import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from skssl.graph import KNNGraph, normalize_affinity
from skssl.solvers import (
    conjugate_gradient,
    resolve_solver,
    solve_diffusion,
    spectral_eigenpairs,
    spectral_filter,
)


@pytest.fixture
def graph():
    X = np.random.default_rng(0).normal(size=(120, 4))
    Wn, _ = normalize_affinity(KNNGraph(8).fit(X).affinity_)
    Y = np.zeros((120, 3))
    Y[[0, 1, 2], [0, 1, 2]] = 1.0
    return Wn, Y


def _closed_form(Wn, Y, alpha):
    return np.linalg.inv(np.eye(Wn.shape[0]) - alpha * Wn.toarray()) @ Y


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.99])
@pytest.mark.parametrize("dense", [False, True])
def test_cg_matches_closed_form(graph, alpha, dense):
    Wn, Y = graph
    W = Wn.toarray() if dense else Wn
    res = solve_diffusion(W, Y, alpha=alpha, tol=1e-12, max_iter=5000)
    expected = _closed_form(Wn, Y, alpha)
    assert res.converged and res.solver == "cg"
    assert np.allclose(res.solution, expected, atol=1e-8)
    direct = solve_diffusion(Wn, Y, alpha=alpha, solver="dense")
    assert np.allclose(direct.solution, expected)
    assert direct.n_iter == 0 and direct.residuals[0] < 1e-10


def test_generic_cg_takes_matrix_or_function():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(30, 30))
    A = M @ M.T + 30 * np.eye(30)
    B = rng.normal(size=(30, 4))
    expected = np.linalg.solve(A, B)
    for operator in (A, sp.csr_matrix(A), lambda V: A @ V):
        res = conjugate_gradient(operator, B, tol=1e-12)
        assert np.allclose(res.solution, expected, atol=1e-8)


def test_residual_history_meets_tol(graph):
    Wn, Y = graph
    res = solve_diffusion(Wn, Y, alpha=0.99, tol=1e-6)
    assert len(res.residuals) == res.n_iter + 1
    assert res.residuals[0] == pytest.approx(1.0)
    assert res.residuals[-1] <= 1e-6
    A = np.eye(120) - 0.99 * Wn.toarray()
    true_rel = np.linalg.norm(Y - A @ res.solution, axis=0) / np.linalg.norm(Y, axis=0)
    assert true_rel.max() < 1e-5


def test_warm_start_needs_fewer_iterations(graph):
    Wn, Y = graph
    cold = solve_diffusion(Wn, Y, alpha=0.99, tol=1e-8)
    near = cold.solution + 1e-6
    warm = solve_diffusion(Wn, Y, alpha=0.99, tol=1e-8, x0=near)
    assert warm.n_iter < cold.n_iter
    assert np.allclose(warm.solution, cold.solution, atol=1e-6)


def test_max_iter_warns_unless_fixed_budget(graph):
    Wn, Y = graph
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        res = solve_diffusion(Wn, Y, alpha=0.99, tol=1e-12, max_iter=3)
    assert res.n_iter == 3 and not res.converged
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = solve_diffusion(Wn, Y, alpha=0.99, max_iter=3, warn=False)
    assert not res.converged


def test_convergence_warning_points_at_the_caller(graph):
    Wn, Y = graph
    with pytest.warns(ConvergenceWarning) as record:
        solve_diffusion(Wn, Y, alpha=0.99, tol=1e-12, max_iter=2)
    assert record[0].filename == __file__


def test_zero_columns_and_vector_rhs(graph):
    Wn, Y = graph
    Y = Y.copy()
    Y[:, 1] = 0
    res = solve_diffusion(Wn, Y, alpha=0.9, tol=1e-10)
    assert np.all(res.solution[:, 1] == 0)
    vec = solve_diffusion(Wn, Y[:, 0], alpha=0.9, tol=1e-10)
    assert vec.solution.shape == (120,)
    assert np.allclose(vec.solution, res.solution[:, 0])


def test_disconnected_rows_stay_finite():
    W = sp.csr_matrix(
        np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    )
    Wn, _ = normalize_affinity(W)
    for solver in ("cg", "dense"):
        res = solve_diffusion(Wn, np.eye(4)[:, :2], alpha=0.99, solver=solver)
        assert np.all(np.isfinite(res.solution))


@pytest.mark.parametrize("alpha", [-0.1, 1.0, 1.5])
@pytest.mark.parametrize("solver", ["cg", "spectral", "dense"])
def test_alpha_out_of_range(graph, alpha, solver):
    Wn, Y = graph
    with pytest.raises(ValueError, match="alpha="):
        solve_diffusion(Wn, Y, alpha=alpha, solver=solver, n_components=5)


@pytest.mark.parametrize("tol", [0.0, 1.0, 2.0])
def test_tol_must_be_below_one(graph, tol):
    # tol >= 1 would stop before the first iteration and return Z = 0.
    Wn, Y = graph
    with pytest.raises(ValueError, match=f"tol={tol}"):
        solve_diffusion(Wn, Y, tol=tol)


def test_shape_mismatch(graph):
    Wn, Y = graph
    with pytest.raises(ValueError, match="must match"):
        solve_diffusion(Wn, Y[:10])
    with pytest.raises(ValueError, match="must match"):
        conjugate_gradient(Wn, Y[:10])


def test_resolve_solver_names_the_fix():
    assert resolve_solver("cg", 10) == "cg"
    with pytest.raises(ValueError, match="solver='nope'"):
        resolve_solver("nope", 10)
    with pytest.raises(ValueError, match="n_components=None"):
        resolve_solver("spectral", 10)
    with pytest.raises(ValueError, match="n_components=11"):
        resolve_solver("spectral", 10, n_components=11)
    with pytest.raises(ValueError, match="solver='cg'"):
        resolve_solver("dense", 10**6)


def test_spectral_full_rank_is_exact(graph):
    Wn, Y = graph
    res = solve_diffusion(Wn, Y, alpha=0.9, solver="spectral", n_components=120)
    assert np.allclose(res.solution, _closed_form(Wn, Y, 0.9), atol=1e-8)
    assert res.solver == "spectral" and res.residuals[0] < 1e-8


def test_spectral_offline_eigenpairs_serve_many_right_hand_sides(graph):
    Wn, Y = graph
    eigenpairs = spectral_eigenpairs(Wn, 30, random_state=0)
    lam, U = eigenpairs
    assert lam.shape == (30,) and U.shape == (120, 30)
    assert np.allclose(Wn @ U, U * lam, atol=1e-8)
    one = spectral_filter(eigenpairs, Y[:, 0], alpha=0.99)
    block = spectral_filter(eigenpairs, Y, alpha=0.99)
    assert np.allclose(one, block[:, 0])
    via_dispatch = solve_diffusion(
        Wn, Y, alpha=0.99, solver="spectral", eigenpairs=eigenpairs
    )
    assert np.allclose(via_dispatch.solution, block)


def test_spectral_low_rank_keeps_labels(graph):
    Wn, Y = graph
    exact = _closed_form(Wn, Y, 0.99)
    approx = solve_diffusion(
        Wn, Y, alpha=0.99, solver="spectral", n_components=30, random_state=0
    )
    agreement = (exact.argmax(1) == approx.solution.argmax(1)).mean()
    assert agreement > 0.8
    assert approx.residuals[0] > 0  # an approximation, and it says how good


def _true_residual(Wn, Y, Z, alpha=0.99):
    R = Y - (Z - alpha * (Wn @ Z))
    return np.max(np.linalg.norm(R, axis=0) / np.linalg.norm(Y, axis=0))


def test_float32_solve_meets_tol_and_agrees_with_float64(graph):
    Wn, Y = graph
    low = solve_diffusion(Wn, Y, alpha=0.99, tol=1e-6, dtype="float32")
    high = solve_diffusion(Wn, Y, alpha=0.99, tol=1e-6, dtype="float64")
    assert low.converged and high.converged
    assert _true_residual(Wn, Y, low.solution) <= 1e-6
    assert low.residuals[-1] == pytest.approx(_true_residual(Wn, Y, low.solution))
    np.testing.assert_array_equal(low.solution.argmax(1), high.solution.argmax(1))


def test_float32_refines_in_float64_past_its_precision(graph):
    # float32 alone cannot reach 1e-11; the float64 refinement must.
    Wn, Y = graph
    res = solve_diffusion(Wn, Y, alpha=0.99, tol=1e-11, dtype="float32")
    assert res.converged
    assert _true_residual(Wn, Y, res.solution) <= 1e-11
    assert len(res.residuals) == res.n_iter + 1


def test_small_problems_solve_in_float64_by_default(graph):
    Wn, Y = graph
    auto = solve_diffusion(Wn, Y, alpha=0.99, tol=1e-8)
    high = solve_diffusion(Wn, Y, alpha=0.99, tol=1e-8, dtype="float64")
    np.testing.assert_array_equal(auto.solution, high.solution)


def test_most_columns_converged_take_the_gather_path():
    # Three columns converge at once (zero or easy right-hand sides), the
    # fourth needs many iterations: the solve switches to gathering it alone.
    rng = np.random.default_rng(1)
    d = np.r_[np.ones(50), np.linspace(1, 1e4, 50)]
    A = sp.diags(d).tocsr()
    B = np.zeros((100, 4))
    B[:50, 1] = 1.0
    B[0, 2] = 1.0
    B[:, 3] = rng.normal(size=100)
    res = conjugate_gradient(A, B, tol=1e-10, max_iter=500)
    assert res.converged
    assert np.allclose(A @ res.solution, B, atol=1e-8)
    assert np.all(res.solution[:, 0] == 0)


def test_precision_and_device_errors_name_the_fix(graph):
    Wn, Y = graph
    with pytest.raises(ValueError, match="dtype='float16'"):
        solve_diffusion(Wn, Y, dtype="float16")
    with pytest.raises(ValueError, match="callable operator"):
        conjugate_gradient(lambda V: V, Y, dtype="float32")
    with pytest.raises(ValueError, match="device='tpu0'.*'cpu'"):
        solve_diffusion(Wn, Y, device="tpu0")


def test_cuda_without_a_gpu_is_a_clear_error(graph):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible: the GPU tests cover this path")
    Wn, Y = graph
    with pytest.raises(ValueError, match="no CUDA device.*device='cpu'"):
        solve_diffusion(Wn, Y, device="cuda")
    # "auto" falls back to the CPU.
    assert solve_diffusion(Wn, Y, device="auto").converged


def _blobs_graph(n=1500, centers=5, seed=0):
    """Normalized 10-NN affinity of well-separated blobs: one component each."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n, centers=centers, cluster_std=0.3, random_state=seed)
    X += 100.0 * y[:, None]
    return normalize_affinity(KNNGraph(10).fit(X).affinity_)[0]


def _top_dense(Wn, r):
    return np.linalg.eigh(Wn.toarray())[0][-r:]


def test_eigenpairs_of_a_graph_with_components_keep_every_copy_of_one():
    # Five components: eigenvalue 1 five times, which Lanczos (ARPACK) does
    # not reliably return; the filtered block does.
    Wn = _blobs_graph()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        lam, U = spectral_eigenpairs(Wn, 12, random_state=0)
    assert lam.shape == (12,) and U.shape == (1500, 12)
    assert np.all(np.diff(lam) >= 0)
    assert np.sum(lam > 1 - 1e-9) == 5
    assert np.allclose(lam, _top_dense(Wn, 12), atol=1e-9)
    assert np.abs(Wn @ U - U * lam).max() < 1e-5
    assert np.allclose(U.T @ U, np.eye(12), atol=1e-10)


def test_eigenpairs_warn_when_components_fill_them():
    Wn = _blobs_graph()  # five components
    with pytest.warns(UserWarning, match="5 connected components, at least n_comp"):
        lam, _ = spectral_eigenpairs(Wn, 5, random_state=0)
    assert np.allclose(lam, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spectral_eigenpairs(Wn, 6, random_state=0)


def test_eigenpairs_of_a_connected_graph_match_the_dense_ones():
    X = np.random.default_rng(1).normal(size=(1500, 3))
    Wn = normalize_affinity(KNNGraph(10).fit(X).affinity_)[0]
    lam, U = spectral_eigenpairs(Wn, 10, random_state=0)
    assert np.allclose(lam, _top_dense(Wn, 10), atol=1e-9)
    assert np.abs(Wn @ U - U * lam).max() < 1e-8


def test_eigenpairs_warn_when_max_iter_stops_them():
    Wn = _blobs_graph()
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        lam, U = spectral_eigenpairs(Wn, 12, max_iter=1, random_state=0)
    assert lam.shape == (12,) and np.all(np.isfinite(U))


@pytest.mark.parametrize(
    "kwargs, match",
    [({"tol": 0.0}, "tol=0.0"), ({"max_iter": 0}, "max_iter=0")],
)
def test_eigenpairs_reject_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        spectral_eigenpairs(_blobs_graph(), 12, **kwargs)


def test_float32_cg_with_many_columns_matches_float64(graph):
    # More right-hand sides than one torch product block (16 columns).
    Wn, _ = graph
    Y = np.random.default_rng(0).normal(size=(120, 40))
    A = sp.identity(120, format="csr") - 0.9 * Wn
    low = conjugate_gradient(A, Y, tol=1e-10, dtype="float32").solution
    assert np.allclose(low, _closed_form(Wn, Y, 0.9), atol=1e-8)
