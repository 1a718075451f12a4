"""LocalLabelPropagationClassifier and its aggregation loss."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV
from torch import nn
from torch.nn import functional as F

from skssl import LocalLabelPropagationClassifier
from skssl.deep import SemiSupervisedNet
from skssl.deep import llp as llp_module
from skssl.deep.llp import aggregation_loss
from skssl.diffusion import certainty
from skssl.local_propagation import (
    density_count_correlation,
    local_label_propagation,
)
from skssl.model_selection import SemiSupervisedKFold, labeled_accuracy

# --- the aggregation loss -----------------------------------------------------------


def _reference_aggregation(v, bank, bank_labels, labels, tau):
    """Eq. 1-2 row by row: L_A(v) = -log sum_{j in A} P(b_j | v).

    ``P(b_j | v)`` is the non-parametric softmax over the bank, taken in log
    space so that tiny temperatures do not overflow.
    """
    out = []
    for a, y in zip(v, labels, strict=True):
        log_p = bank @ a / tau - logsumexp(bank @ a / tau)  # log P(b_j | v)
        out.append(-logsumexp(log_p[bank_labels == y]))
    return np.array(out)


def test_aggregation_loss_matches_eq_1_2():
    g = torch.Generator().manual_seed(0)
    v = F.normalize(torch.randn(5, 4, generator=g, dtype=torch.float64), dim=1)
    bank = F.normalize(torch.randn(30, 4, generator=g, dtype=torch.float64), dim=1)
    bank_labels = torch.randint(3, (30,), generator=g)
    labels = torch.tensor([0, 1, 2, 1, 0])
    for tau in (1.0, 0.07):
        got = aggregation_loss(v, bank, bank_labels, labels, tau).numpy()
        ref = _reference_aggregation(
            v.numpy(), bank.numpy(), bank_labels.numpy(), labels.numpy(), tau
        )
        np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_aggregation_loss_gradcheck():
    g = torch.Generator().manual_seed(1)
    v = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    bank = F.normalize(torch.randn(12, 3, generator=g, dtype=torch.float64), dim=1)
    bank_labels = torch.arange(12) % 3
    labels = torch.tensor([0, 1, 2, 0])
    assert torch.autograd.gradcheck(
        lambda x: aggregation_loss(
            F.normalize(x, dim=1), bank, bank_labels, labels, 0.5
        ),
        (v,),
    )


@pytest.mark.parametrize("tau", [0.07, 0.001])
def test_aggregation_loss_absent_class_and_tiny_temperature_are_finite(tau):
    g = torch.Generator().manual_seed(2)
    bank = F.normalize(torch.randn(200, 8, generator=g), dim=1)
    bank_labels = torch.randint(3, (200,), generator=g)  # class 3 is absent
    labels = torch.tensor([0, 1, 2, 3])
    x = torch.randn(4, 8, generator=g, requires_grad=True)
    losses = aggregation_loss(F.normalize(x, dim=1), bank, bank_labels, labels, tau)
    losses.sum().backward()
    assert torch.isfinite(losses).all() and torch.isfinite(x.grad).all()
    assert losses[3] == 0 and torch.all(losses[:3] > 0)
    ref = _reference_aggregation(
        F.normalize(x[:3], dim=1).detach().double().numpy(),
        bank.double().numpy(),
        bank_labels.numpy(),
        labels[:3].numpy(),
        tau,
    )
    # float32 logits near 1 / tau = 1000 carry absolute errors near 1e-4.
    np.testing.assert_allclose(losses[:3].detach().numpy(), ref, rtol=1e-4, atol=1e-3)


# --- the estimator --------------------------------------------------------------------

FAST = dict(
    min_batches_per_epoch=2,
    n_warmup_epochs=1,
    max_epochs=3,
    lr=0.05,
    batch_size=16,
    batch_size_labeled=4,
    n_voters=3,
    n_density=5,
    random_state=0,
    module__hidden=(16,),
)


@pytest.fixture(scope="module")
def data():
    X, y_true = make_blobs(60, centers=3, n_features=4, random_state=0)
    y = np.full(60, -1)
    for c in range(3):
        y[np.flatnonzero(y_true == c)[:3]] = c
    return X.astype(np.float32), y, y_true


def _clf(**params):
    return LocalLabelPropagationClassifier(**{**FAST, **params})


def test_learns_blobs():
    X, y_true = make_blobs(300, centers=3, n_features=4, random_state=1)
    y = np.where(np.arange(300) < 15, y_true, -1)
    clf = _clf(max_epochs=6, min_batches_per_epoch=5).fit(X, y)
    assert clf.score(X, y_true) > 0.9
    unlabeled = y < 0
    assert np.mean(clf.transduction_[unlabeled] == y_true[unlabeled]) > 0.9


def test_fitted_attributes_and_history(data):
    X, y, _ = data
    clf = _clf().fit(X, y)
    labeled = y >= 0
    P = clf.label_distributions_
    np.testing.assert_allclose(P.sum(axis=1), 1.0)
    np.testing.assert_array_equal(P[labeled], np.eye(3)[y[labeled]])
    np.testing.assert_array_equal(clf.transduction_, clf.classes_[P.argmax(axis=1)])
    np.testing.assert_array_equal(clf.certainty_, certainty(P))
    # Training weights: the confidence max_j p_j on unlabeled rows, 1 on labeled.
    np.testing.assert_allclose(clf.pseudo_label_weights_[labeled], 1.0)
    np.testing.assert_allclose(clf.pseudo_label_weights_[~labeled], P[~labeled].max(1))
    assert np.all(
        (clf.pseudo_label_weights_ >= 1 / 3) & (clf.pseudo_label_weights_ <= 1)
    )
    # The loss reads exactly these targets and weights.
    np.testing.assert_array_equal(clf.targets_.target, P.argmax(axis=1))
    np.testing.assert_allclose(
        clf.targets_.weight, clf.pseudo_label_weights_, rtol=1e-6
    )
    assert np.all(np.isfinite(clf.density_[labeled]))
    assert np.all(np.isnan(clf.density_[~labeled]))
    assert clf.bank_.shape == (60, 16) and clf.bank_.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(clf.bank_, axis=1), 1.0, rtol=1e-5)
    for row in clf.history[1:]:
        assert 0 <= row["pseudo_label_certainty"] <= 1
        assert sum(row["pseudo_label_counts"]) == 60
        assert row["propagation_dur"] > 0 and row["agg_loss"] > 0
    # The last propagation's density-count correlation (NaN when every class
    # got as many pseudo-labels).
    counts = np.bincount(P[~labeled].argmax(axis=1), minlength=3)
    np.testing.assert_equal(
        clf.history[-1, "density_count_corr"],
        density_count_correlation(clf.density_[labeled], y[labeled], counts),
    )
    # train_loss is the sum of the weighted terms of each batch.
    batch = clf.history[-1, "batches", -1]
    assert batch["train_loss"] == pytest.approx(
        batch["sup_loss"] + clf.aggregation_weight * batch["agg_loss"], rel=1e-5
    )


def test_warmup_then_propagation_every_k_epochs(data):
    X, y, _ = data
    clf = _clf(n_warmup_epochs=2, max_epochs=6, propagate_every=2).fit(X, y)
    propagated = ["propagation_dur" in row for row in clf.history]
    assert propagated == [False, False, True, False, True, False]
    # Warm-up: labeled rows only and no aggregation; then mixed batches.
    assert clf.history[0, "batches", 0, "train_batch_size"] == 4
    assert "agg_loss" not in clf.history[0] and "agg_loss" in clf.history[2]
    assert clf.history[-1, "batches", 0, "train_batch_size"] == 16


def test_bank_starts_from_eval_embeddings_and_follows_every_step(data, monkeypatch):
    X, y, _ = data
    filled, updates = [], []
    real_propagate = llp_module.local_label_propagation
    real_update = llp_module.update_memory_bank

    def spy_propagate(V, y_train, **kwargs):
        if not filled:
            clf.module_.eval()
            with torch.no_grad():
                expected = F.normalize(clf.module_.embed(torch.as_tensor(X)), dim=1)
            filled.append(np.allclose(V, expected.numpy(), atol=1e-6))
        return real_propagate(V, y_train, **kwargs)

    def spy_update(bank, rows, V, momentum=0.5):
        updates.append((np.asarray(rows).copy(), np.asarray(V).copy(), momentum))
        return real_update(bank, rows, V, momentum)

    monkeypatch.setattr(llp_module, "local_label_propagation", spy_propagate)
    monkeypatch.setattr(llp_module, "update_memory_bank", spy_update)
    clf = _clf(module__dropout=0.5, bank_momentum=0.25, max_epochs=3)
    clf.fit(X, y)
    assert filled == [True]  # eval mode: dropout off when the bank is filled
    fills, steps = updates[:1], updates[1:]
    assert fills[0][2] == 0.0 and len(fills[0][0]) == 60
    # After the fill, one update per training step of the LLP epochs.
    n_steps = sum(clf.history[e, "train_batch_count"] for e in (1, 2))
    assert len(steps) == n_steps
    for rows, V, momentum in steps:
        assert momentum == 0.25 and len(rows) <= 16 and len(V) == len(rows)
        assert np.all((rows >= 0) & (rows < 60))
        # Unit rows; a row whose ReLU features dropout zeroed stays 0.
        norms = np.linalg.norm(V, axis=1)
        assert np.all(np.isclose(norms, 1.0, rtol=1e-5) | (norms == 0))


def test_aggregation_bank_is_whole_or_sampled(data, monkeypatch):
    X, y, _ = data
    sizes = []
    real = llp_module.aggregation_loss

    def spy(v, bank, bank_labels, labels, temperature):
        sizes.append(bank.shape[0])
        assert temperature == 0.2
        return real(v, bank, bank_labels, labels, temperature)

    monkeypatch.setattr(llp_module, "aggregation_loss", spy)
    _clf(temperature=0.2).fit(X, y)
    assert sizes and set(sizes) == {60}
    sizes.clear()
    a = _clf(temperature=0.2, aggregation_bank_size=25).fit(X, y)
    assert sizes and set(sizes) == {25}
    b = _clf(temperature=0.2, aggregation_bank_size=25).fit(X, y)
    np.testing.assert_array_equal(a.bank_, b.bank_)  # sampled under random_state
    sizes.clear()
    clf = _clf(aggregation_weight=0.0).fit(X, y)
    assert sizes == [] and "agg_loss" not in clf.history[-1]
    assert clf.bank_.shape == (60, 16)  # the bank still follows the steps


def test_confidence_and_density_weighting_switches(data, monkeypatch):
    X, y, _ = data
    clf = _clf(confidence_weighting=False).fit(X, y)
    np.testing.assert_array_equal(clf.pseudo_label_weights_, 1.0)
    assert np.any(clf.label_distributions_.max(axis=1) < 1)
    seen = []
    real = llp_module.local_label_propagation

    def spy(V, y_train, **kwargs):
        seen.append({k: kwargs[k] for k in ("density_weighting", "n_voters")})
        return real(V, y_train, **kwargs)

    monkeypatch.setattr(llp_module, "local_label_propagation", spy)
    _clf(density_weighting=False, n_voters=7).fit(X, y)
    assert seen[0] == {"density_weighting": False, "n_voters": 7}


def test_unlabeled_ignore_is_the_supervised_reference(data):
    X, y, _ = data
    clf = _clf(unlabeled="ignore").fit(X, y)
    for attr in ("bank_", "transduction_", "density_"):
        assert not hasattr(clf, attr)
    assert all("agg_loss" not in row for row in clf.history)
    # The same network and steps as the base trained on the labeled rows.
    params = {k: v for k, v in FAST.items() if k not in ("n_voters", "n_density")}
    params.pop("n_warmup_epochs")
    base = SemiSupervisedNet(unlabeled="ignore", **params).fit(X, y)
    for a, b in zip(
        clf.module_.state_dict().values(),
        base.module_.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)


def test_random_state_makes_fits_identical(data):
    X, y, _ = data
    a, b = _clf().fit(X, y), _clf().fit(X, y)
    np.testing.assert_array_equal(a.bank_, b.bank_)
    np.testing.assert_array_equal(a.label_distributions_, b.label_distributions_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_refit_starts_from_scratch(data):
    X, y, _ = data
    clf = _clf().fit(X, y)
    fresh = _clf().fit(X, y)
    clf.fit(X, y)
    np.testing.assert_array_equal(clf.bank_, fresh.bank_)
    clf.set_params(max_epochs=1)  # warm-up only: no bank, no propagation
    clf.fit(X, y)
    assert not hasattr(clf, "bank_") and not hasattr(clf, "transduction_")


def test_partial_fit_refills_the_bank(data):
    X, y, _ = data
    clf = _clf(max_epochs=2).fit(X, y)
    clf.partial_fit(X, y)
    propagated = ["propagation_dur" in row for row in clf.history]
    assert propagated == [False, True, True, True]
    assert np.all(np.isfinite(clf.label_distributions_))


def test_clone_pickle_and_save_params(data, tmp_path):
    X, y, _ = data
    clf = _clf(n_voters=4).fit(X, y)
    assert clone(clf).get_params()["n_voters"] == 4
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(restored.bank_, clf.bank_)
    clf.save_params(f_params=tmp_path / "p.pt", f_history=tmp_path / "h.json")
    fresh = _clf(module__n_features=4, module__n_classes=3)
    fresh.initialize()
    fresh.load_params(f_params=tmp_path / "p.pt", f_history=tmp_path / "h.json")
    np.testing.assert_allclose(fresh.predict_proba(X), clf.predict_proba(X), atol=1e-6)


def test_grid_search_over_n_voters(data):
    X, y, _ = data
    search = GridSearchCV(
        _clf(max_epochs=2),
        {"n_voters": [1, 5]},
        cv=SemiSupervisedKFold(2),
        scoring=labeled_accuracy,
        error_score="raise",
    ).fit(X, y)
    assert search.best_params_["n_voters"] in (1, 5)
    assert hasattr(search.best_estimator_, "transduction_")


def test_string_labels_and_held_out_rows(data):
    from skorch.dataset import ValidSplit

    X, y, _ = data
    names = np.array(["a", "b", "c"], dtype=object)
    y_str = np.where(y >= 0, names[np.maximum(y, 0)], -1).astype(object)
    clf = _clf().fit(X, y_str)
    assert set(clf.transduction_) <= {"a", "b", "c"}
    y_more = y.copy()
    y_more[np.flatnonzero(y < 0)[:12]] = clf.transduction_[y < 0][:12] == "b"
    clf = _clf(train_split=ValidSplit(3, stratified=True)).fit(X, y_more)
    held_out = np.setdiff1d(np.arange(60), clf.targets_.rows)
    assert held_out.size > 0 and clf.bank_.shape[0] == 60 - held_out.size
    np.testing.assert_array_equal(clf.transduction_[held_out], y_more[held_out])
    assert np.all(clf.pseudo_label_weights_[held_out] == 0)
    assert np.all(np.isnan(clf.density_[held_out]))


def test_duplicate_rows_and_empty_class_are_nan_free():
    rng = np.random.default_rng(0)
    X = np.repeat(rng.normal(size=(3, 4)).astype(np.float32), 20, axis=0)
    y = np.full(60, -1)
    y[[0, 20]] = [0, 1]  # class 2 has no label; 2 labeled rows for 3 voters
    clf = _clf(classes=[0, 1, 2]).fit(X, y)
    for attr in ("label_distributions_", "pseudo_label_weights_", "certainty_"):
        assert np.all(np.isfinite(getattr(clf, attr))), attr
    np.testing.assert_array_equal(clf.label_distributions_[:, 2], 0.0)
    assert np.all(np.isfinite(clf.history[-1, "train_loss"]))
    assert np.all(np.isfinite(clf.predict_proba(X)))


class _ZeroEmbedding(nn.Module):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.head = nn.Linear(n_features, n_classes)

    def embed(self, x):
        return 0 * x

    def forward(self, x):
        return self.head(x)


def test_all_zero_embeddings_warn_once_and_stay_finite(data):
    X, y, _ = data
    with pytest.warns(UserWarning) as record:
        params = {k: v for k, v in FAST.items() if not k.startswith("module__")}
        clf = LocalLabelPropagationClassifier(
            _ZeroEmbedding, **{**params, "max_epochs": 4}
        ).fit(X, y)
    messages = [str(w.message) for w in record if "all-zero" in str(w.message)]
    assert len(messages) == 1 and messages[0].startswith("60 of 60 training rows")
    assert np.all(np.isfinite(clf.label_distributions_))
    assert np.all(np.isfinite(clf.history[:, "train_loss"]))


def test_fully_labeled_y_trains_without_propagation(data):
    X, _, y_true = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf = _clf().fit(X, y_true)
    assert not hasattr(clf, "bank_") and not hasattr(clf, "transduction_")


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(temperature=0.0), "'temperature' parameter"),
        (dict(temperature=-0.1), "'temperature' parameter"),
        (dict(bank_momentum=1.0), "'bank_momentum' parameter"),
        (dict(bank_momentum=-0.1), "'bank_momentum' parameter"),
        (dict(n_voters=0), "'n_voters' parameter"),
        (dict(n_density=0), "'n_density' parameter"),
        (dict(propagate_every=0), "'propagate_every' parameter"),
        (dict(aggregation_weight=-1.0), "'aggregation_weight' parameter"),
        (dict(aggregation_bank_size=0), "'aggregation_bank_size' parameter"),
        (dict(density_weighting="yes"), "'density_weighting' parameter"),
    ],
)
def test_bad_parameters_leave_no_fitted_state(data, params, match):
    X, y, _ = data
    clf = _clf(**params)
    with pytest.raises(ValueError, match=match) as info:
        clf.fit(X, y)
    value = next(iter(params.values()))
    assert f"Got {value!r}" in str(info.value)
    assert not hasattr(clf, "classes_") and not hasattr(clf, "module_")


def test_silent_unless_verbose(data, capsys):
    X, y, _ = data
    _clf().fit(X, y)
    assert capsys.readouterr().out == ""
    _clf(verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "agg_loss" in out and "density_count_corr" in out
    assert "pseudo_label_counts" not in out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_the_cpu_path(data):
    X, y, y_true = data
    clf = _clf(device="cuda").fit(X, y)
    assert next(clf.module_.parameters()).is_cuda
    assert isinstance(clf.bank_, np.ndarray)
    assert np.all(np.isfinite(clf.predict_proba(X)))
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))


def test_propagation_is_the_pure_function_on_the_bank(data, monkeypatch):
    # One LLP epoch, no step after it: the fitted distributions are the
    # function's output on the bank it was given.
    X, y, _ = data
    captured = []
    real = llp_module.local_label_propagation

    def spy(V, y_train, **kwargs):
        captured.append((V.copy(), kwargs))
        return real(V, y_train, **kwargs)

    monkeypatch.setattr(llp_module, "local_label_propagation", spy)
    clf = _clf(max_epochs=2).fit(X, y)
    V, kwargs = captured[-1]
    P, log_density = local_label_propagation(V, y, **kwargs)
    np.testing.assert_array_equal(clf.label_distributions_, P)
    np.testing.assert_array_equal(clf.density_[y >= 0], log_density)
    assert kwargs["temperature"] == 0.07 and kwargs["n_density"] == 5
