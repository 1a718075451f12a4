"""CCLP: the loss as a pure function, and CCLPClassifier."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV

from skssl import CCLPClassifier
from skssl.deep.cclp import _PerClassBatchSampler
from skssl.deep.losses import (
    cclp_loss,
    label_propagation_closed_form,
    transition_matrix,
)
from skssl.model_selection import SemiSupervisedKFold, labeled_accuracy

# --- the loss ------------------------------------------------------------------


def _batch(seed=0, n_l=6, n_u=9, d=3, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    Z_l = torch.randn(n_l, d, generator=g, dtype=dtype)
    Z_u = torch.randn(n_u, d, generator=g, dtype=dtype)
    y = torch.arange(n_l) % 3
    return Z_l, y, Z_u


@pytest.mark.parametrize("similarity", ["dot", "euclidean"])
def test_closed_form_matches_iterated_clamped_propagation(similarity):
    Z_l, y, Z_u = _batch()
    H = transition_matrix(torch.cat([Z_l, Z_u]), similarity, 1e-5)
    assert torch.allclose(H.sum(1), torch.ones(15, dtype=H.dtype))
    Y = torch.nn.functional.one_hot(y, 3).double()
    phi = label_propagation_closed_form(H, Y)
    iterated = torch.zeros(9, 3, dtype=torch.float64)
    for _ in range(3000):  # Phi_U <- H_UU Phi_U + H_UL Y_L, labels clamped
        iterated = H[6:, 6:] @ iterated + H[6:, :6] @ Y
    assert torch.allclose(phi, iterated, atol=1e-10)
    assert torch.allclose(phi.sum(1), torch.ones(9, dtype=phi.dtype))


def test_euclidean_graph_is_the_softmax_of_negative_squared_distances():
    Z_l, _, Z_u = _batch(d=5)
    Z = torch.cat([Z_l, Z_u]) * 3.0 + 10.0  # off the origin, as embeddings are
    diff = Z[:, None, :] - Z[None, :, :]
    direct = torch.softmax(-(diff**2).sum(-1), dim=1)
    H = transition_matrix(Z, "euclidean", eps=0.0)
    assert torch.allclose(H, direct, atol=1e-12)


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("similarity", ["dot", "euclidean"])
def test_gradcheck(steps, similarity):
    Z_l, y, Z_u = _batch(n_l=4, n_u=5, d=2)
    Z_l.requires_grad_(True)
    Z_u.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: cclp_loss(a, y[:4], b, 3, steps=steps, similarity=similarity),
        (Z_l, Z_u),
    )


def test_matches_hand_computed_one_step():
    # Two labeled points, one unlabeled, S = 1: eq. (6)-(7) by hand.
    Z_l = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    Z_u = torch.tensor([[0.5, 0.2]], dtype=torch.float64)
    y = torch.tensor([0, 1])
    Z = torch.cat([Z_l, Z_u])
    A = torch.exp(Z @ Z.T)
    H = A / A.sum(1, keepdim=True)
    H = 1e-5 / 3 + (1 - 1e-5) * H
    phi_u = torch.linalg.solve(torch.eye(1, dtype=Z.dtype) - H[2:, 2:], H[2:, :2])
    Phi = torch.cat([torch.eye(2, dtype=Z.dtype), phi_u])
    T = (Phi / Phi.sum(0)) @ Phi.T
    expected = -(T * torch.log(H + 1e-6)).sum() / 9
    assert torch.allclose(
        cclp_loss(Z_l, y, Z_u, 2, steps=1, reduction="pairs"), expected
    )
    # The released code's scale: the mean over rows, N = 3 times larger.
    assert torch.allclose(cclp_loss(Z_l, y, Z_u, 2, steps=1), 3 * expected)


def test_compact_clusters_score_lower_than_mixed():
    g = torch.Generator().manual_seed(0)
    centers = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    y = torch.arange(9) % 3
    y_u = torch.arange(30) % 3
    compact = cclp_loss(
        centers[y] + 0.1 * torch.randn(9, 2, generator=g),
        y,
        centers[y_u] + 0.1 * torch.randn(30, 2, generator=g),
        3,
    )
    mixed = cclp_loss(
        torch.randn(9, 2, generator=g), y, torch.randn(30, 2, generator=g), 3
    )
    assert compact < 0.7 * mixed


def test_permutation_invariant_within_unlabeled_batch():
    Z_l, y, Z_u = _batch(n_u=12)
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    a = cclp_loss(Z_l, y, Z_u, 3)
    b = cclp_loss(Z_l, y, Z_u[perm], 3)
    assert torch.allclose(a, b)


def test_no_nan_for_duplicates_or_absent_class():
    Z = torch.zeros(4, 2, requires_grad=True)
    U = torch.zeros(5, 2, requires_grad=True)
    loss = cclp_loss(Z, torch.tensor([0, 0, 1, 1]), U, 4)  # classes 2, 3 absent
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(Z.grad).all() and torch.isfinite(U.grad).all()
    big = 1e3 * torch.randn(6, 2)
    assert torch.isfinite(cclp_loss(big, torch.arange(6) % 2, big.flip(0), 2))


def test_empty_unlabeled_batch_and_bad_arguments():
    Z_l, y, _ = _batch()
    loss = cclp_loss(Z_l, y, Z_l[:0], 3)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="steps=0"):
        cclp_loss(Z_l, y, Z_l, 3, steps=0)
    with pytest.raises(ValueError, match="similarity='cosine'"):
        cclp_loss(Z_l, y, Z_l, 3, similarity="cosine")
    with pytest.raises(ValueError, match="reduction='sum'"):
        cclp_loss(Z_l, y, Z_l, 3, reduction="sum")


# --- the estimator ---------------------------------------------------------------

FAST = dict(
    min_batches_per_epoch=1,
    max_epochs=3,
    lr=0.01,
    labeled_per_class=3,
    batch_size_unlabeled=20,
    random_state=0,
    module__hidden=(16,),
)


@pytest.fixture(scope="module")
def data():
    X, y_true = make_blobs(90, centers=3, n_features=4, random_state=0)
    y = np.full(90, -1)
    for c in range(3):
        y[np.flatnonzero(y_true == c)[:4]] = c
    return X.astype(np.float32), y, y_true


def _clf(**params):
    return CCLPClassifier(**{**FAST, **params})


def test_fits_records_both_terms_and_predicts_labels(data):
    X, y, y_true = data
    clf = _clf(max_epochs=15).fit(X, y)
    hist = clf.history
    assert len(hist) == 15
    assert all(h["cclp_loss"] > 0 and h["sup_loss"] > 0 for h in hist)
    # train_loss is the weighted sum of the two recorded terms, per batch.
    batch = hist[-1, "batches", -1]
    expected = batch["sup_loss"] + clf.weight * batch["cclp_loss"]
    assert batch["train_loss"] == pytest.approx(expected)
    assert clf.score(X, y_true) > 0.9
    assert set(clf.predict(X)) <= {0, 1, 2}
    assert clf.embed(X).shape == (90, 16)


def test_per_class_batches():
    y = np.array([0] * 5 + [1] * 2 + [-1] * 45)
    sampler = _PerClassBatchSampler(
        y, per_class=3, batch_size_unlabeled=10, random_state=0
    )
    batches = list(sampler)
    assert len(batches) == 5  # one pass over 45 unlabeled rows, 10 per batch
    for b in batches:
        labels = y[b]
        assert (labels == 0).sum() == 3 and (labels == 1).sum() == 3
        assert len(set(b[labels == 0])) == 3  # enough rows: no repeats
    assert sorted(np.concatenate([b[y[b] == -1] for b in batches])) == list(
        range(7, 52)
    )


def test_cclp_gradient_reaches_features_not_head(data):
    X, y, _ = data
    clf = _clf(max_epochs=1).fit(X, y)
    module = clf.module_
    idx = np.r_[np.flatnonzero(y >= 0), np.flatnonzero(y < 0)[:20]]
    Xb = torch.as_tensor(X[idx])
    lab = torch.as_tensor(y[idx] >= 0)
    Z = module.embed(Xb)
    module.zero_grad()
    cclp_loss(Z[lab], torch.as_tensor(y[idx][y[idx] >= 0]), Z[~lab], 3).backward()
    assert all(p.grad is None or not p.grad.any() for p in module.head.parameters())
    assert any(
        p.grad is not None and p.grad.any() for p in module.features.parameters()
    )


def test_default_module_is_unnormalized(data):
    X, y, _ = data
    clf = _clf(max_epochs=1).fit(X, y)
    assert clf.module_.normalize is False
    clf = _clf(max_epochs=1, module__normalize=True).fit(X, y)
    assert clf.module_.normalize is True


def test_lr_reaches_the_optimizer_and_the_supervised_reference(data):
    X, y, _ = data
    assert CCLPClassifier().lr == 1e-3  # the documented default for tabular rows
    for unlabeled in ("use", "ignore"):
        clf = CCLPClassifier(lr=3e-3, max_epochs=1, unlabeled=unlabeled)
        clf.set_params(batch_size_unlabeled=30, random_state=0).fit(X, y)
        assert [g["lr"] for g in clf.optimizer_.param_groups] == [3e-3]
        assert clone(clf).get_params()["lr"] == 3e-3


def test_weight_zero_is_supervised_training(data):
    X, y, _ = data
    a = _clf(weight=0.0).fit(X, y)
    b = _clf(weight=1.0).fit(X, y)
    pa = [p.detach().clone() for p in a.module_.parameters()]
    pb = [p.detach().clone() for p in b.module_.parameters()]
    assert any(not torch.equal(u, v) for u, v in zip(pa, pb, strict=True))


def test_deterministic(data):
    X, y, _ = data
    a = _clf().fit(X, y).predict_proba(X)
    b = _clf().fit(X, y).predict_proba(X)
    assert np.array_equal(a, b)


def test_string_labels_grid_search_clone_pickle(data):
    X, y, y_true = data
    names = np.array(["a", "b", "c"], dtype=object)
    y_str = np.where(y < 0, -1, names[np.maximum(y, 0)]).astype(object)
    clf = _clf().fit(X, y_str)
    assert clf.classes_.tolist() == ["a", "b", "c"]
    restored = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(restored.predict(X), clf.predict(X))
    assert clone(clf).get_params()["steps"] == 3
    search = GridSearchCV(
        _clf(max_epochs=2),
        {"lr": [0.01, 0.05], "module__hidden": [(8,), (16,)]},
        cv=SemiSupervisedKFold(2),
        scoring=labeled_accuracy,
        error_score="raise",
    ).fit(X, y)
    assert search.best_params_["module__hidden"] in [(8,), (16,)]


def test_warns_once_when_a_class_has_too_few_labels(data):
    X, y, _ = data
    with pytest.warns(UserWarning, match="fewer than labeled_per_class=10") as rec:
        _clf(labeled_per_class=10).fit(X, y)
    assert sum("labeled_per_class" in str(w.message) for w in rec) == 1


def test_no_unlabeled_batch_degrades_to_supervised(data):
    X, y, y_true = data
    with pytest.warns(UserWarning, match="without the CCLP term"):
        clf = _clf(batch_size_unlabeled=0).fit(X, y)
    assert all(h["cclp_loss"] == 0 for h in clf.history)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(steps=0), "'steps' parameter"),
        (dict(similarity="cosine"), "'similarity' parameter"),
        (dict(weight=-1.0), "'weight' parameter"),
        (dict(labeled_per_class=0), "'labeled_per_class' parameter"),
    ],
)
def test_bad_parameters_leave_no_fitted_state(data, params, match):
    X, y, _ = data
    clf = _clf(**params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "classes_") and not hasattr(clf, "module_")


def test_no_labeled_rows(data):
    X, _, _ = data
    with pytest.raises(ValueError, match="no labeled sample"):
        _clf().fit(X, np.full(len(X), -1))


def test_silent_unless_verbose(data, capsys):
    X, y, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _clf(max_epochs=1).fit(X, y)
        assert capsys.readouterr().out == ""
        _clf(max_epochs=1, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "cclp_loss" in out and "sup_loss" in out


def test_huge_features_stop_with_a_clear_error(data):
    # Without the module's input standardization, exp(z_i . z_j) of embeddings
    # of features near 1e20 overflows: the fit stops with a message naming the
    # fix instead of predicting NaN.
    X, y, _ = data
    clf = _clf(module__standardize=False)
    with pytest.raises(ValueError, match="Standardize X"):
        clf.fit(X * 1e20, y)
    assert not hasattr(clf, "classes_") and not clf.initialized_
    # With it (the default) the same features train.
    proba = _clf().fit(X * 1e20, y).predict_proba(X * 1e20)
    assert np.all(np.isfinite(proba))


def test_per_class_sampler_comes_through_the_base_hook(data):
    X, y, _ = data
    clf = _clf(max_epochs=1).fit(X, y)
    sampler = clf.get_batch_sampler(clf.get_split_datasets(X, y)[0])
    assert isinstance(sampler, _PerClassBatchSampler)
    # The base still refuses iterator settings that would bypass it.
    with pytest.raises(ValueError, match="iterator_train__shuffle"):
        _clf(iterator_train__shuffle=True).fit(X, y)
