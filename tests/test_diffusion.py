import numpy as np
import pytest
import scipy.sparse as sp

from skssl.diffusion import (
    certainty,
    clamp_labeled,
    class_mass_normalize,
    class_weights,
    diffuse,
    knn_vote,
    label_distributions,
    label_matrix,
    unreachable_rows,
)
from skssl.graph import KNNGraph, normalize_affinity


def test_label_matrix_normalizes_per_class():
    Y = label_matrix(np.array([0, 0, 1, -1]), 3)
    assert Y.tolist() == [[0.5, 0, 0], [0.5, 0, 0], [0, 1, 0], [0, 0, 0]]


def test_certainty_matches_hand_computed():
    P = np.array([[1.0, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]])
    expected = [1.0, 0.0, 1 - np.log(2) / np.log(3)]
    assert np.allclose(certainty(P), expected)


def test_class_weights_hand_computed_and_empty_class():
    zeta = class_weights(np.array([0, 0, 0, 1]), 3)
    # 1/3 and 1/1, normalized to mean 1 over the two present classes.
    assert np.allclose(zeta, [0.5, 1.5, 0.0])
    assert np.all(np.isfinite(zeta))


def test_label_distributions_zero_and_unreachable_rows_uniform():
    Z = np.array([[2.0, 2.0], [0, 0], [-1, 3], [5, 1]])
    assert label_distributions(Z).tolist() == [
        [0.5, 0.5],
        [0.5, 0.5],
        [0.0, 1.0],
        [5 / 6, 1 / 6],
    ]
    unreachable = np.array([False, False, False, True])
    assert label_distributions(Z, unreachable)[3].tolist() == [0.5, 0.5]


def test_clamp_labeled_keeps_unlabeled_rows():
    P = np.full((3, 3), 1 / 3)
    out = clamp_labeled(P, np.array([2, -1, 0]))
    assert out.tolist() == [[0, 0, 1], [1 / 3] * 3, [1, 0, 0]]
    assert P[0, 0] == 1 / 3  # a copy


def test_class_mass_normalize_columns_sum_to_one():
    Z = np.random.default_rng(0).uniform(size=(10, 3))
    assert np.allclose(class_mass_normalize(Z).sum(0), 1)
    assert np.all(class_mass_normalize(np.zeros((3, 2))) == 0)


def test_diffuse_takes_the_right_hand_side():
    X = np.random.default_rng(0).normal(size=(80, 2))
    W = KNNGraph(7).fit(X).affinity_
    Y = np.random.default_rng(1).uniform(size=(80, 3))
    res = diffuse(W, Y, alpha=0.9, tol=1e-12)
    Wn, _ = normalize_affinity(W)
    expected = np.linalg.solve(np.eye(80) - 0.9 * Wn.toarray(), Y)
    assert np.allclose(res.solution, expected, atol=1e-8)
    dense = diffuse(W, Y, alpha=0.9, solver="dense")
    assert np.allclose(dense.solution, expected)


def test_unreachable_rows_by_component_and_warning():
    W = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0.0]]))
    labeled = np.array([True, False, False])
    assert unreachable_rows(W, labeled).tolist() == [False, False, True]
    with pytest.warns(UserWarning, match="1 of 3 samples are not connected"):
        unreachable_rows(W, labeled, warn=True)


def test_knn_vote_weights_fallback_and_missing_neighbours():
    F = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    indices = np.array([[0, 1], [0, 1], [-1, -1], [2, -1]])
    weights = np.array([[3.0, 1.0], [0.0, 0.0], [0.0, 0.0], [2.0, 7.0]])
    P = knn_vote(indices, weights, F)
    assert P.tolist() == [[0.75, 0.25], [0.5, 0.5], [0.5, 0.5], [0.5, 0.5]]


def test_knn_vote_blocks_equal_one_pass(monkeypatch):
    import skssl.diffusion as diffusion

    rng = np.random.default_rng(0)
    F = rng.dirichlet(np.ones(4), size=50)
    indices = rng.integers(-1, 50, size=(300, 6))
    weights = rng.uniform(size=(300, 6))
    whole = knn_vote(indices, weights, F)
    monkeypatch.setattr(diffusion, "_VOTE_BLOCK_VALUES", 24 * 7)
    assert np.allclose(knn_vote(indices, weights, F), whole)
