"""MeanTeacherClassifier and the local clustering loss."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV

from skssl import MeanTeacherClassifier
from skssl.deep import GaussianNoise, RandomShift
from skssl.deep.losses import local_clustering_loss
from skssl.model_selection import SemiSupervisedKFold, labeled_accuracy

# --- the loss -------------------------------------------------------------------


def _reference_lc(Z_l, Z_u, cutoff, unit=1.0):
    """Eqs. 4-5 pair by pair, in float64, distances in units of ``unit``."""
    d = Z_l.shape[1]

    def dist(a, b):
        return float(((a - b) ** 2).sum()) / d / unit

    def w(D):
        return np.exp(-D / cutoff) if D <= cutoff else 0.0

    lu = [w(dist(a, b)) * dist(a, b) for a in Z_l for b in Z_u]
    uu = [
        w(dist(Z_u[m], Z_u[n])) * dist(Z_u[m], Z_u[n])
        for m in range(len(Z_u))
        for n in range(len(Z_u))
        if m != n
    ]
    return np.mean(lu) + np.mean(uu)


def test_lc_loss_matches_hand_computed_case():
    # Labeled (0, 0); unlabeled (1, 1), (1, 2), (6, 6). D is the mean squared
    # difference per dimension. Cut-off 2: l-u pairs D = 1, 2.5, 36 -> only
    # D = 1 counts; u-u pairs D = 0.5 (twice), 25, 32 (twice each) -> D = 0.5.
    z_l = torch.tensor([[0.0, 0.0]])
    z_u = torch.tensor([[1.0, 1.0], [1.0, 2.0], [6.0, 6.0]])
    loss, share, spread = local_clustering_loss(z_l, z_u, 2.0, unit=1.0)
    expected = np.exp(-1 / 2) * 1 / 3 + 2 * np.exp(-0.5 / 2) * 0.5 / 6
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert share == pytest.approx(3 / 9, abs=1e-4)
    assert spread > 0


@pytest.mark.parametrize("unit", [None, 1.0, 0.3])
def test_lc_loss_matches_pairwise_reference(unit):
    g = torch.Generator().manual_seed(0)
    Z_l, Z_u = torch.randn(4, 3, generator=g), torch.randn(6, 3, generator=g)
    loss, _, spread = local_clustering_loss(Z_l, Z_u, 1.5, unit=unit)
    unit = spread if unit is None else unit  # None: the batch's median
    ref = _reference_lc(Z_l.double().numpy(), Z_u.double().numpy(), 1.5, unit)
    assert float(loss) == pytest.approx(ref, rel=1e-5)


def test_lc_loss_has_no_self_pair_term():
    # One unlabeled row: no u-u pair at all (its self-pair would be D = 0);
    # with a single labeled row equal to it the loss is exactly 0.
    z = torch.tensor([[1.0, 2.0]])
    loss, share, _ = local_clustering_loss(z, z.clone(), 5.0, unit=1.0)
    assert float(loss) == 0.0 and share == 1.0
    # Duplicated unlabeled rows: their pair is at D = 0 and counts, self-pairs
    # are not in the denominator (4 l-u pairs... here 2 l-u and 2 u-u pairs).
    z_l = torch.tensor([[0.0, 0.0]])
    z_u = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    loss, share, _ = local_clustering_loss(z_l, z_u, 5.0, unit=1.0)
    assert float(loss) == pytest.approx(np.exp(-1 / 5) * 1.0)
    assert share == 1.0


def test_lc_loss_weight_is_zero_beyond_epsilon():
    z_l = torch.tensor([[0.0, 0.0]], requires_grad=True)
    z_u = torch.tensor([[3.0, 3.0], [-3.0, -3.0]], requires_grad=True)
    loss, share, _ = local_clustering_loss(z_l, z_u, 8.9, unit=1.0)
    assert float(loss.detach()) == 0.0 and share == 0.0  # every D is 9 or 36
    loss.backward()
    assert float(z_l.grad.abs().sum()) == 0.0 and float(z_u.grad.abs().sum()) == 0.0
    loss, share, _ = local_clustering_loss(z_l, z_u, 9.0, unit=1.0)
    assert float(loss.detach()) > 0 and share == pytest.approx(2 / 4)


def test_lc_loss_gradcheck():
    g = torch.Generator().manual_seed(1)
    Z_l = torch.randn(3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    Z_u = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    # An absolute cut-off keeps the function smooth around the point checked.
    assert torch.autograd.gradcheck(
        lambda a, b: local_clustering_loss(a, b, 3.0, unit=1.0)[0],
        (Z_l, Z_u),
    )


def test_lc_loss_median_scale_is_invariant_to_embedding_scale():
    g = torch.Generator().manual_seed(2)
    Z_l, Z_u = torch.randn(4, 8, generator=g), torch.randn(10, 8, generator=g)
    a = local_clustering_loss(Z_l, Z_u, 1.0)
    b = local_clustering_loss(10 * Z_l, 10 * Z_u, 1.0)
    assert b[1] == a[1]  # the same neighbours, the same loss
    assert float(b[0]) == pytest.approx(float(a[0]), rel=1e-4)
    assert b[2] == pytest.approx(100 * a[2], rel=1e-4)  # the spread scales


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(epsilon=-1.0), "epsilon=-1.0 must be positive"),
        (dict(epsilon=0.0), "epsilon=0.0 must be positive"),
        (dict(epsilon=1.0, unit=0.0), "unit=0.0 must be positive"),
    ],
)
def test_lc_loss_bad_arguments(kwargs, match):
    z = torch.zeros(2, 2)
    with pytest.raises(ValueError, match=match):
        local_clustering_loss(z, z, **kwargs)


# --- the estimator --------------------------------------------------------------

FAST = dict(
    min_batches_per_epoch=4,
    max_epochs=4,
    lr=0.01,
    batch_size=32,
    batch_size_labeled=8,
    lc_start_epoch=1,
    lc_rampup=1,
    random_state=0,
    module__hidden=(16,),
)


@pytest.fixture(scope="module")
def data():
    X, y_true = make_blobs(120, centers=3, n_features=4, random_state=0)
    y = np.full(120, -1)
    for c in range(3):
        y[np.flatnonzero(y_true == c)[:4]] = c
    return X.astype(np.float32), y, y_true


def _clf(**params):
    return MeanTeacherClassifier(**{**FAST, **params})


def test_learns_and_records_every_term(data):
    X, y, y_true = data
    clf = _clf(local_clustering=True, max_epochs=10).fit(X, y)
    assert clf.score(X, y_true) > 0.9
    h = clf.history
    for key in ("sup_loss", "consistency_loss", "lc_loss", "lc_neighbours"):
        assert all(key in row for row in h)
    assert all(0 <= row["lc_neighbours"] <= 1 and row["lc_spread"] > 0 for row in h)
    # train_loss is the weighted sum of the terms of each batch.
    batch = h[-1, "batches", -1]
    epoch = len(h) - 1
    expected = (
        batch["sup_loss"]
        + clf.mean_teacher_.weight_at(epoch) * batch["consistency_loss"]
        + clf.lc_weight_at(epoch) * batch["lc_loss"]
    )
    assert batch["train_loss"] == pytest.approx(expected, rel=1e-5)


def test_lc_unit_is_fixed_when_local_clustering_starts(data):
    X, y, _ = data
    clf = _clf(local_clustering=True, lc_start_epoch=2, max_epochs=5).fit(X, y)
    spread_at_start = np.mean([b["lc_spread"] for b in clf.history[2, "batches"]])
    assert clf._lc_unit() == pytest.approx(spread_at_start)
    absolute = clone(clf).set_params(lc_epsilon_scale="absolute")
    assert absolute._lc_unit() == 1.0


def test_lc_weight_starts_after_the_mean_teacher_phase():
    clf = MeanTeacherClassifier(lc_weight=4.0, lc_start_epoch=3, lc_rampup=2)
    weights = [clf.lc_weight_at(e) for e in range(7)]
    assert weights[:3] == [0.0, 0.0, 0.0]
    assert weights[3] == pytest.approx(4.0 * np.exp(-5.0))
    assert weights[4] == pytest.approx(4.0 * np.exp(-5.0 / 4))
    assert weights[5:] == [4.0, 4.0]


def test_without_local_clustering_no_lc_terms(data):
    X, y, _ = data
    clf = _clf().fit(X, y)
    assert not any(k.startswith("lc_") for k in clf.history[-1])


def test_teacher_is_the_ema_of_the_student_and_gets_no_gradient(data):
    X, y, _ = data
    clf = _clf(local_clustering=True).fit(X, y)
    assert all(
        not p.requires_grad and p.grad is None for p in clf.teacher_.parameters()
    )
    steps = sum(len(row["batches"]) for row in clf.history)
    assert clf.mean_teacher_.steps == steps
    # One more EMA step moves the teacher exactly towards the student.
    before = [p.detach().clone() for p in clf.teacher_.parameters()]
    rate = min(1 - 1 / (steps + 2), clf.ema_decay)
    clf.mean_teacher_.update(clf.teacher_, clf.module_)
    for b, t, s in zip(
        before, clf.teacher_.parameters(), clf.module_.parameters(), strict=True
    ):
        assert torch.allclose(t, rate * b + (1 - rate) * s.detach(), atol=1e-7)


def test_predicts_with_the_teacher_by_default(data):
    X, y, _ = data
    teacher = _clf().fit(X, y)
    student = clone(teacher).set_params(predict_with="student").fit(X, y)
    # Same seed, same training: the two differ only in the predicting network.
    assert np.allclose(
        teacher.predict_proba(X),
        torch.softmax(teacher.teacher_(torch.as_tensor(X)), 1).detach().numpy(),
        atol=1e-6,
    )
    assert np.allclose(
        student.predict_proba(X),
        torch.softmax(student.module_(torch.as_tensor(X)), 1).detach().numpy(),
        atol=1e-6,
    )
    assert not np.allclose(teacher.predict_proba(X), student.predict_proba(X))


def test_auto_augment_adds_noise_when_the_module_suggests_none(data):
    from skssl.deep import CNN1DModule

    X, y, _ = data
    assert isinstance(_clf(max_epochs=1).fit(X, y).augment_, GaussianNoise)
    cnn = _clf(module=CNN1DModule, max_epochs=1, module__hidden=8, module__channels=4)
    Xs = np.tile(X, (1, 4))  # a 16-step "sequence"
    assert isinstance(cnn.fit(Xs, y).augment_, RandomShift)


def test_noise_is_in_standardized_units(data):
    # The same fit on features scaled by 1e4 and shifted: GaussianNoise(0.1)
    # perturbs each in units of its spread, so the fits agree.
    X, y, y_true = data
    a = _clf(max_epochs=6).fit(X, y)
    b = _clf(max_epochs=6).fit(X * 1e4 + 1e3, y)
    assert np.mean(a.predict(X) == b.predict(X * 1e4 + 1e3)) > 0.95
    assert b.score(X * 1e4 + 1e3, y_true) > 0.9


def test_supervised_reference_has_no_teacher(data):
    X, y, _ = data
    clf = _clf(local_clustering=True, unlabeled="ignore").fit(X, y)
    assert getattr(clf, "teacher_", None) is None
    assert not any(
        k.startswith("lc_") or k == "consistency_loss" for k in clf.history[-1]
    )


def test_collapse_is_detected_and_named(data):
    X, y, _ = data
    with pytest.warns(UserWarning, match="collapsed the embeddings.*lc_weight=10000.0"):
        _clf(
            local_clustering=True,
            lc_weight=1e4,
            lc_epsilon=1e6,
            lc_epsilon_scale="absolute",
            max_epochs=8,
        ).fit(X, y)


def test_no_collapse_warning_at_defaults(data):
    X, y, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _clf(local_clustering=True, max_epochs=8).fit(X, y)


def test_deterministic_pickle_and_save_params(data, tmp_path):
    X, y, _ = data
    clf = _clf(local_clustering=True).fit(X, y)
    again = _clf(local_clustering=True).fit(X, y)
    assert np.array_equal(clf.predict_proba(X), again.predict_proba(X))
    restored = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(restored.predict_proba(X), clf.predict_proba(X))
    clf.save_params(
        f_params=tmp_path / "p.pt",
        f_teacher=tmp_path / "t.pt",
        f_history=tmp_path / "h.json",
    )
    fresh = _clf(local_clustering=True, module__n_features=4, module__n_classes=3)
    fresh.initialize()
    fresh.load_params(
        f_params=tmp_path / "p.pt",
        f_teacher=tmp_path / "t.pt",
        f_history=tmp_path / "h.json",
    )
    assert np.allclose(fresh.predict_proba(X), clf.predict_proba(X), atol=1e-6)


def test_grid_search_over_consistency_weight_and_epsilon(data):
    X, y, _ = data
    search = GridSearchCV(
        _clf(local_clustering=True, max_epochs=2),
        {"consistency_weight": [0.0, 3.0], "lc_epsilon": [0.5, 2.0]},
        cv=SemiSupervisedKFold(2),
        scoring=labeled_accuracy,
        error_score="raise",
    ).fit(X, y)
    assert set(search.best_params_) == {"consistency_weight", "lc_epsilon"}
    assert clone(search.best_estimator_).get_params()["local_clustering"] is True


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(lc_epsilon=-1.0), "'lc_epsilon' parameter"),
        (dict(lc_epsilon=0.0), "'lc_epsilon' parameter"),
        (dict(lc_weight=-0.5), "'lc_weight' parameter"),
        (dict(consistency_weight=-1.0), "'consistency_weight' parameter"),
        (dict(ema_decay=1.0), "'ema_decay' parameter"),
        (dict(ema_decay=-0.1), "'ema_decay' parameter"),
        (dict(consistency="l1"), "'consistency' parameter"),
        (dict(predict_with="both"), "'predict_with' parameter"),
        (dict(lc_epsilon_scale="mean"), "'lc_epsilon_scale' parameter"),
    ],
)
def test_bad_parameters_leave_no_fitted_state(data, params, match):
    X, y, _ = data
    clf = _clf(**params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "classes_") and not hasattr(clf, "module_")


def test_silent_unless_verbose(data, capsys):
    X, y, _ = data
    _clf(max_epochs=1, local_clustering=True).fit(X, y)
    assert capsys.readouterr().out == ""
    _clf(max_epochs=2, local_clustering=True, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "lc_loss" in out and "consistency_loss" in out
