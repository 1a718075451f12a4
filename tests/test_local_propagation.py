"""Local label propagation on embeddings: eq. 3-5, densities, memory bank."""

import subprocess
import sys

import numpy as np
import pytest

from skssl.local_propagation import (
    density_count_correlation,
    labeled_density,
    local_label_propagation,
    update_memory_bank,
)


def _unit(angles):
    angles = np.asarray(angles, dtype=float)
    return np.c_[np.cos(angles), np.sin(angles)]


def _reference(V, y, n_classes, K, T, tau, density_weighting=True):
    """Eq. 1-5 literally, loop by loop, normalizers Z and sum_l included."""
    N = len(V)
    E = np.array([[np.exp(V[a] @ V[b] / tau) for b in range(N)] for a in range(N)])
    Z = sum(E[k, m] for k in range(N) for m in range(N))  # eq. 1
    labeled = [i for i in range(N) if y[i] >= 0]
    unlabeled = [j for j in range(N) if y[j] < 0]

    def joint(i, j):  # P(v_i, v_j), eq. 1
        return E[i, j] / Z

    def conditional(i, v):  # P(v_i | v), eq. 2: a softmax over all N rows
        return E[v, i] / sum(E[v, m] for m in range(N))

    rho = {}
    for i in labeled:  # eq. 4: the T nearest unlabeled rows
        nearest = sorted(unlabeled, key=lambda j: -(V[j] @ V[i]))[:T]
        rho[i] = sum(joint(j, i) for j in nearest)
    P = np.zeros((N, n_classes))
    for v in unlabeled:  # eq. 5, with N_K^L: the K largest weighted terms
        weight = {
            i: conditional(i, v) / (rho[i] if density_weighting else 1.0)
            for i in labeled
        }
        for i in sorted(labeled, key=lambda i: -weight[i])[:K]:
            P[v, y[i]] += weight[i]
        P[v] /= P[v].sum()
    for i in labeled:
        P[i, y[i]] = 1.0
    log_density = np.array([np.log(Z * rho[i]) for i in labeled])
    return P, log_density


# Three labeled and five unlabeled unit vectors in the plane.
TOY_V = _unit([0.0, 0.5, 2.0, 0.2, 0.3, 1.0, 1.6, 2.4])
TOY_Y = np.array([0, 0, 1, -1, -1, -1, -1, -1])


@pytest.mark.parametrize("density_weighting", [True, False])
@pytest.mark.parametrize("K, T", [(2, 2), (1, 3), (3, 5)])
def test_hand_computed_toy(K, T, density_weighting):
    P, log_density = local_label_propagation(
        TOY_V,
        TOY_Y,
        n_voters=K,
        n_density=T,
        temperature=0.5,
        density_weighting=density_weighting,
    )
    P_ref, log_density_ref = _reference(
        TOY_V, TOY_Y, 2, K, T, 0.5, density_weighting=density_weighting
    )
    # The normalizers Z and sum_l exp(v^T v_l / tau) cancel: the reference
    # keeps them, the function never computes them.
    np.testing.assert_allclose(P, P_ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(log_density, log_density_ref, rtol=1e-12)


def test_one_vote_by_hand():
    # K=2, T=2, tau=0.5: the unlabeled row at 0.2 is voted for by the labeled
    # rows at 0 and 0.5, both of class 0.
    P, _ = local_label_propagation(
        TOY_V, TOY_Y, n_voters=2, n_density=2, temperature=0.5
    )
    assert P[3].tolist() == [1.0, 0.0]
    # K=3: all three labeled rows vote for the row at 1.6; its class-1 share
    # is the weight of the row at 2.0 over the sum of the three weights.
    P, log_rho = local_label_propagation(
        TOY_V, TOY_Y, n_voters=3, n_density=2, temperature=0.5
    )
    weights = [
        np.exp(np.cos(1.6 - angle) / 0.5 - log_rho_i)
        for angle, log_rho_i in zip([0.0, 0.5, 2.0], log_rho, strict=True)
    ]
    assert P[6, 1] == pytest.approx(weights[2] / sum(weights), rel=1e-12)


def test_density_weighting_flips_a_vote():
    # Query at angle 0. Class 0's labeled row (0.10) sits in a crowd of
    # unlabeled rows; class 1's (-0.14) is a little farther from the query but
    # alone. The plain vote goes to the nearer class 0; divided by their
    # densities, the votes go to class 1.
    crowd = 0.10 + np.linspace(-0.02, 0.02, 12)
    V = _unit([0.0, 0.10, -0.14, *crowd])
    y = np.array([-1, 0, 1, *[-1] * crowd.size])
    kwargs = dict(n_voters=1, n_density=5, temperature=0.07)
    plain, log_density = local_label_propagation(
        V, y, density_weighting=False, **kwargs
    )
    weighted, _ = local_label_propagation(V, y, **kwargs)
    assert plain[0].argmax() == 0 and weighted[0].argmax() == 1
    assert log_density[0] > log_density[1]  # the crowded voter is penalized


def test_distributions_and_confidences():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(200, 8))
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    y = np.full(200, -1)
    y[:30] = rng.integers(4, size=30)
    P, log_density = local_label_propagation(V, y)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    confidence = P.max(axis=1)
    assert np.all((confidence >= 0.25 - 1e-12) & (confidence <= 1.0))
    np.testing.assert_array_equal(P[:30], np.eye(4)[y[:30]])
    assert log_density.shape == (30,) and np.all(np.isfinite(log_density))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_equals_unchunked(dtype):
    rng = np.random.default_rng(1)
    V = rng.normal(size=(300, 16)).astype(dtype)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    y = np.full(300, -1)
    y[rng.choice(300, 40, replace=False)] = rng.integers(5, size=40)
    whole, d_whole = local_label_propagation(V, y, chunk_size=10_000)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    for chunk in (1, 7, 64):
        P, d = local_label_propagation(V, y, chunk_size=chunk)
        np.testing.assert_array_equal(P.argmax(axis=1), whole.argmax(axis=1))
        np.testing.assert_allclose(P, whole, rtol=rtol, atol=1e-6)
        np.testing.assert_allclose(d, d_whole, rtol=rtol)


def test_empty_class_duplicates_and_few_labels_are_nan_free():
    V = np.repeat(_unit([0.0, 1.0]), 10, axis=0)  # two points, ten copies each
    y = np.full(20, -1)
    y[[0, 10]] = [0, 1]
    # Class 2 has no labeled row; 2 labeled rows for K=10 voters.
    P, log_density = local_label_propagation(V, y, n_classes=3, n_voters=10)
    assert np.all(np.isfinite(P)) and np.all(np.isfinite(log_density))
    np.testing.assert_array_equal(P[:, 2], 0.0)
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    assert np.all(P[1:10].argmax(axis=1) == 0) and np.all(P[11:].argmax(axis=1) == 1)
    # Every row identical: a tie everywhere, still finite.
    P, log_density = local_label_propagation(np.ones((6, 3)), [0, 1, -1, -1, -1, -1])
    np.testing.assert_allclose(P[2:], 0.5)
    # All-zero embeddings: every score is 0.
    P, _ = local_label_propagation(np.zeros((4, 3)), [0, 1, -1, -1])
    np.testing.assert_allclose(P[2:], 0.5)


def test_no_unlabeled_row():
    P, log_density = local_label_propagation(_unit([0, 1, 2]), [0, 1, 1])
    np.testing.assert_array_equal(P, np.eye(2)[[0, 1, 1]])
    assert np.all(log_density == -np.inf)


def test_labeled_density_against_loops():
    rng = np.random.default_rng(2)
    V_l, V_u = rng.normal(size=(5, 3)), rng.normal(size=(9, 3))
    for T in (1, 4, 9, 20):  # 20 > 9 rows: all of them count
        expected = [
            np.log(np.sum(np.exp(np.sort(V_u @ v)[::-1][:T] / 0.3))) for v in V_l
        ]
        for chunk in (None, 2):
            got = labeled_density(
                V_l, V_u, n_density=T, temperature=0.3, chunk_size=chunk
            )
            np.testing.assert_allclose(got, expected, rtol=1e-12)
    # tau = 0.07 on unit vectors: exp(1 / tau) terms, no overflow in log form.
    big = labeled_density(_unit([0.0]), _unit([0.0] * 30), temperature=0.001)
    assert big[0] == pytest.approx(1000 + np.log(25))


def test_update_memory_bank_rule():
    rng = np.random.default_rng(3)
    bank = rng.normal(size=(6, 4)).astype(np.float32)
    bank /= np.linalg.norm(bank, axis=1, keepdims=True)
    before = bank.copy()
    V = rng.normal(size=(3, 4)).astype(np.float32)
    out = update_memory_bank(bank, [4, 1, 4], V, momentum=0.3)
    assert out is bank
    for row, v in ((1, V[1]), (4, V[2])):  # row 4 takes its last embedding
        mixed = 0.3 * before[row] + 0.7 * v
        np.testing.assert_allclose(bank[row], mixed / np.linalg.norm(mixed), rtol=1e-6)
    untouched = [0, 2, 3, 5]
    np.testing.assert_array_equal(bank[untouched], before[untouched])
    # momentum 0 stores the normalized embeddings; a zero vector stays zero.
    update_memory_bank(bank, [0, 2], np.array([[3.0, 4, 0, 0], [0, 0, 0, 0]]), 0.0)
    np.testing.assert_allclose(bank[0], [0.6, 0.8, 0, 0], rtol=1e-6)
    np.testing.assert_array_equal(bank[2], 0.0)


def test_density_count_correlation():
    rng = np.random.default_rng(4)
    log_density = rng.normal(size=40)
    y = rng.integers(5, size=40)
    counts = rng.integers(100, size=5)
    D = [np.exp(log_density[y == c]).mean() for c in range(5)]
    expected = np.corrcoef(D, counts)[0, 1]
    assert density_count_correlation(log_density, y, counts) == pytest.approx(expected)
    # A class without labeled rows is left out; overflow-safe in log space.
    y[y == 4] = 3
    D = [np.exp(log_density[y == c]).mean() for c in range(4)]
    expected = np.corrcoef(D, counts[:4])[0, 1]
    got = density_count_correlation(log_density + 1000, y, counts)
    assert got == pytest.approx(expected)
    assert np.isnan(density_count_correlation([0.0, 1.0], [0, 0], [3, 4]))
    assert np.isnan(density_count_correlation([0.0, 1.0], [0, 1], [3, 3]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(temperature=0.0), r"temperature=0.0 must be a positive number"),
        (dict(temperature=-1), r"temperature=-1 must be a positive number"),
        (dict(n_voters=0), r"n_voters=0 must be a positive integer"),
        (dict(n_density=0), r"n_density=0 must be a positive integer"),
        (dict(n_voters=2.5), r"n_voters=2.5 must be a positive integer"),
        (dict(chunk_size=0), r"chunk_size=0 must be a positive integer"),
        (dict(n_classes=1), r"n_classes=1; pass n_classes > max\(y\)"),
    ],
)
def test_bad_arguments_name_value_and_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        local_label_propagation(TOY_V, TOY_Y, **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="no labeled row"):
        local_label_propagation(TOY_V, np.full(8, -1))
    with pytest.raises(ValueError, match="LabelEncoder"):
        local_label_propagation(TOY_V, np.array(["a"] * 8))
    with pytest.raises(ValueError, match="one entry per row of V"):
        local_label_propagation(TOY_V, TOY_Y[:3])
    with pytest.raises(ValueError, match="same dimension"):
        labeled_density(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"momentum=1.0 must be in \[0, 1\)"):
        update_memory_bank(np.ones((2, 2)), [0], np.ones((1, 2)), momentum=1.0)
    with pytest.raises(ValueError, match=r"momentum=-0.1 must be in \[0, 1\)"):
        update_memory_bank(np.ones((2, 2)), [0], np.ones((1, 2)), momentum=-0.1)
    with pytest.raises(ValueError, match="one row of 2 values per entry"):
        update_memory_bank(np.ones((2, 2)), [0, 1], np.ones((1, 2)))


def test_module_does_not_import_torch():
    code = "import sys, skssl.local_propagation; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
