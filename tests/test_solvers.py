import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from skssl.graph import build_graph, normalize_affinity
from skssl.solvers import conjugate_gradient, dense_diffusion, spectral_diffusion


@pytest.fixture
def graph():
    X = np.random.default_rng(0).normal(size=(120, 4))
    W, _ = build_graph(X, 8, metric="euclidean", kernel="gaussian")
    Wn, _ = normalize_affinity(W)
    Y = np.zeros((120, 3))
    Y[[0, 1, 2], [0, 1, 2]] = 1.0
    return Wn, Y


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.99])
@pytest.mark.parametrize("dense", [False, True])
def test_cg_matches_closed_form(graph, alpha, dense):
    Wn, Y = graph
    W = Wn.toarray() if dense else Wn
    res = conjugate_gradient(W, Y, alpha=alpha, tol=1e-12, max_iter=5000)
    expected = np.linalg.inv(np.eye(120) - alpha * Wn.toarray()) @ Y
    assert res.converged
    assert np.allclose(res.solution, expected, atol=1e-8)
    assert np.allclose(dense_diffusion(Wn, Y, alpha=alpha), expected)


def test_residual_history_meets_tol(graph):
    Wn, Y = graph
    res = conjugate_gradient(Wn, Y, alpha=0.99, tol=1e-6)
    assert len(res.residuals) == res.n_iter + 1
    assert res.residuals[0] == pytest.approx(1.0)
    assert res.residuals[-1] <= 1e-6
    A = np.eye(120) - 0.99 * Wn.toarray()
    true_rel = np.linalg.norm(Y - A @ res.solution, axis=0) / np.linalg.norm(Y, axis=0)
    assert true_rel.max() < 1e-5


def test_warm_start_needs_fewer_iterations(graph):
    Wn, Y = graph
    cold = conjugate_gradient(Wn, Y, alpha=0.99, tol=1e-8)
    near = cold.solution + 1e-6
    warm = conjugate_gradient(Wn, Y, alpha=0.99, tol=1e-8, x0=near)
    assert warm.n_iter < cold.n_iter
    assert np.allclose(warm.solution, cold.solution, atol=1e-6)


def test_max_iter_warns_unless_fixed_budget(graph):
    Wn, Y = graph
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        res = conjugate_gradient(Wn, Y, alpha=0.99, tol=1e-12, max_iter=3)
    assert res.n_iter == 3 and not res.converged
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = conjugate_gradient(Wn, Y, alpha=0.99, max_iter=3, warn=False)
    assert not res.converged


def test_zero_columns_and_vector_rhs(graph):
    Wn, Y = graph
    Y = Y.copy()
    Y[:, 1] = 0
    res = conjugate_gradient(Wn, Y, alpha=0.9, tol=1e-10)
    assert np.all(res.solution[:, 1] == 0)
    vec = conjugate_gradient(Wn, Y[:, 0], alpha=0.9, tol=1e-10)
    assert vec.solution.shape == (120,)
    assert np.allclose(vec.solution, res.solution[:, 0])


def test_disconnected_rows_stay_finite():
    W = sp.csr_matrix(
        np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    )
    Wn, _ = normalize_affinity(W)
    res = conjugate_gradient(Wn, np.eye(4)[:, :2], alpha=0.99, tol=1e-10)
    assert np.all(np.isfinite(res.solution))


@pytest.mark.parametrize("alpha", [-0.1, 1.0, 1.5])
def test_alpha_out_of_range(graph, alpha):
    Wn, Y = graph
    with pytest.raises(ValueError, match="alpha="):
        conjugate_gradient(Wn, Y, alpha=alpha)


def test_shape_mismatch(graph):
    Wn, Y = graph
    with pytest.raises(ValueError, match="must match"):
        conjugate_gradient(Wn, Y[:10])


def test_spectral_full_rank_is_exact(graph):
    Wn, Y = graph
    Z = spectral_diffusion(Wn, Y, alpha=0.9, n_components=120)
    assert np.allclose(Z, dense_diffusion(Wn, Y, alpha=0.9), atol=1e-8)


def test_spectral_low_rank_keeps_labels(graph):
    Wn, Y = graph
    exact = dense_diffusion(Wn, Y, alpha=0.99)
    approx = spectral_diffusion(Wn, Y, alpha=0.99, n_components=30, random_state=0)
    agreement = (exact.argmax(1) == approx.argmax(1)).mean()
    assert agreement > 0.8
    with pytest.raises(ValueError, match="n_components"):
        spectral_diffusion(Wn, Y, n_components=0)
