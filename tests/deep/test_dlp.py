"""DeepLabelPropagationClassifier: weights, schedule, degenerate graphs."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from torch import nn

from skssl import DeepLabelPropagationClassifier
from skssl.deep import GaussianNoise, PseudoLabelAccuracy
from skssl.deep import dlp as dlp_module
from skssl.deep.dlp import _pseudo_label_weights

FAST = dict(
    min_batches_per_epoch=1,
    n_neighbors=8,
    n_warmup_epochs=1,
    max_epochs=3,
    lr=0.05,
    batch_size=16,
    batch_size_labeled=4,
    random_state=0,
)


@pytest.fixture(scope="module")
def data():
    X, y_true = make_blobs(60, centers=3, n_features=4, random_state=0)
    y = np.full(60, -1)
    for c in range(3):
        y[np.flatnonzero(y_true == c)[:3]] = c
    return X.astype(np.float32), y, y_true


def _clf(**params):
    return DeepLabelPropagationClassifier(**{**FAST, **params})


class _Identity(nn.Module):
    """Protocol module whose embedding is the input: graphs follow X exactly."""

    def __init__(self, n_features, n_classes, *, zero=False):
        super().__init__()
        self.head = nn.Linear(n_features, n_classes)
        self.zero = zero

    def embed(self, x):
        return torch.zeros_like(x) if self.zero else x

    def forward(self, x):
        return self.head(x)


def _entropy(p):
    p = np.asarray(p, dtype=float)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


# --- eq. (11), (12) against hand-computed values ----------------------------------


def test_weights_by_hand():
    P = np.array(
        [
            [1.0, 0.0, 0.0],  # labeled 0
            [0.0, 1.0, 0.0],  # labeled 1
            [0.5, 0.5, 0.0],  # tie -> class 0
            [0.75, 0.25, 0.0],
            [1 / 3, 1 / 3, 1 / 3],  # reached by no label
        ]
    )
    y = np.array([0, 1, -1, -1, -1])
    unreachable = np.array([False, False, False, False, True])
    labels, weights, zeta = _pseudo_label_weights(P, y, unreachable, 3)
    assert labels.tolist() == [0, 1, 0, 0, 0]
    omega_2 = 1 - _entropy([0.5, 0.5]) / np.log(3)
    omega_3 = 1 - _entropy([0.75, 0.25]) / np.log(3)
    # omega is normalized by its maximum over all rows (1: the labeled rows).
    omega = np.array([1, 1, omega_2, omega_3, 0])
    # |L_0| + |U_0| = 3 (row 4 is unreachable), |L_1| = 1, class 2 empty:
    # zeta = (1/3, 1) / mean(1/3, 1), and 0 for the empty class.
    np.testing.assert_allclose(zeta, [0.5, 1.5, 0.0])
    np.testing.assert_allclose(weights, omega * zeta[labels])


def test_unreachable_rows_get_weight_zero_exactly():
    P = np.full((4, 2), 0.5)
    y = np.array([0, 1, -1, -1])
    labels, weights, zeta = _pseudo_label_weights(P, y, np.array([0, 0, 1, 1], bool), 2)
    np.testing.assert_allclose(weights, [1, 1, 0, 0])
    np.testing.assert_allclose(zeta, [1, 1])


# --- Algorithm 1 --------------------------------------------------------------------


def test_fitted_attributes(data):
    X, y, _ = data
    clf = _clf().fit(X, y)
    assert clf.transduction_.shape == (60,)
    labeled = y >= 0
    np.testing.assert_array_equal(clf.transduction_[labeled], y[labeled])
    np.testing.assert_allclose(clf.label_distributions_.sum(1), 1.0)
    # One vocabulary: clamped distributions, raw certainty.
    np.testing.assert_array_equal(clf.label_distributions_[labeled].max(1), 1.0)
    expected = 1 - np.array([_entropy(p) for p in clf.label_distributions_]) / np.log(3)
    np.testing.assert_allclose(clf.certainty_, expected, atol=1e-12)
    assert np.mean(clf.class_weights_) == pytest.approx(1.0)
    # Training weights: zeta on labeled rows; on the others the certainty,
    # divided by one maximum, times zeta.
    zeta = clf.class_weights_[clf.transduction_]
    np.testing.assert_allclose(clf.pseudo_label_weights_[labeled], zeta[labeled])
    ratio = clf.pseudo_label_weights_[~labeled] / (clf.certainty_ * zeta)[~labeled]
    np.testing.assert_allclose(ratio, ratio[0])
    assert ratio[0] >= 1
    # The loss of the next epoch reads exactly these targets and weights.
    np.testing.assert_array_equal(clf.targets_.target, clf.transduction_)
    np.testing.assert_allclose(
        clf.targets_.weight, clf.pseudo_label_weights_, rtol=1e-6
    )
    assert clf.graph_.backend_ == "exact" and clf.graph_.kernel == "power"
    row = clf.history[-1]
    assert 0 <= row["pseudo_label_certainty"] <= 1
    assert sum(row["pseudo_label_counts"]) <= 60 and row["cg_iter"] <= 20
    assert row["graph_dur"] > 0 and row["n_unreachable"] == 0


@pytest.mark.parametrize(
    "index_params, expected",
    [(None, {"nlist": 15, "nprobe": 3}), ({"nprobe": 6}, {"nlist": 15, "nprobe": 6})],
)
def test_auto_graph_turns_ivf_with_few_probes_from_its_row_threshold(
    monkeypatch, index_params, expected
):
    from skssl.graph import _gpu_available

    if _gpu_available():
        pytest.skip("faiss sees a GPU here: 'auto' searches exactly on it")
    X, y_true = make_blobs(600, centers=3, n_features=4, random_state=0)
    y = np.where(np.arange(600) < 30, y_true, -1)
    # The real threshold is 20,000 rows; the rule is the same at 300.
    monkeypatch.setattr(dlp_module, "_APPROX_MIN_ROWS", 300)
    clf = _clf(index_params=index_params).fit(X.astype(np.float32), y)
    # About sqrt(600) lists capped at 600 // 39 = 15 (faiss's training rows).
    assert clf.graph_.backend_ == "ivf" and clf.graph_.index_params_ == expected
    assert clf.score(X.astype(np.float32), y_true) > 0.9
    monkeypatch.setattr(dlp_module, "_APPROX_MIN_ROWS", 601)
    assert _clf().fit(X.astype(np.float32), y).graph_.backend_ == "exact"


def test_transduction_covers_rows_held_out_for_validation(data):
    from skorch.dataset import ValidSplit

    X, y, _ = data
    y = y.copy()
    y[np.flatnonzero(y < 0)[:12]] = _clf().fit(X, y).transduction_[y < 0][:12]
    clf = _clf(train_split=ValidSplit(3, stratified=True)).fit(X, y)
    held_out = np.setdiff1d(np.arange(60), clf.targets_.rows)
    assert held_out.size > 0 and np.all(y[held_out] >= 0)
    assert clf.transduction_.shape == (60,)
    np.testing.assert_array_equal(clf.transduction_[held_out], y[held_out])
    assert np.all(clf.pseudo_label_weights_[held_out] == 0)
    assert np.all(clf.certainty_[held_out] == 1)


def test_warmup_then_propagation_every_k_epochs(data):
    X, y, _ = data
    clf = _clf(n_warmup_epochs=2, max_epochs=6, graph_update_every=2).fit(X, y)
    propagated = ["cg_iter" in row for row in clf.history]
    assert propagated == [False, False, True, False, True, False]
    # Warm-up batches hold labeled rows only; later ones mix in unlabeled rows.
    assert clf.history[0, "batches", 0, "train_batch_size"] == 4
    assert clf.history[-1, "batches", 0, "train_batch_size"] == 16


def test_descriptors_in_eval_mode_and_warm_started_diffusion(data, monkeypatch):
    X, y, _ = data
    modes, starts = [], []

    class Recording(_Identity):
        def embed(self, x):
            modes.append(self.training)
            return super().embed(x)

    real_diffuse = dlp_module.diffuse

    def spy(*args, **kwargs):
        starts.append(kwargs["x0"])
        assert kwargs["warn"] is False and kwargs["max_iter"] == 20
        assert args[1].shape == (60, 3)  # the right-hand side is passed in
        return real_diffuse(*args, **kwargs)

    monkeypatch.setattr(dlp_module, "diffuse", spy)
    _clf(module=Recording, max_epochs=3).fit(X, y)
    assert modes == [False, False]  # two propagations, both in eval mode
    assert starts[0] is None and starts[1].shape == (60, 3)


def test_random_state_makes_fits_identical(data):
    X, y, _ = data
    a, b = _clf().fit(X, y), _clf().fit(X, y)
    np.testing.assert_array_equal(a.transduction_, b.transduction_)
    np.testing.assert_array_equal(a.pseudo_label_weights_, b.pseudo_label_weights_)
    for (k, va), vb in zip(
        a.module_.state_dict().items(), b.module_.state_dict().values(), strict=True
    ):
        assert torch.equal(va, vb), k
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_refit_starts_from_scratch(data):
    X, y, _ = data
    clf = _clf().fit(X, y)
    fresh = _clf().fit(X, y)
    clf.fit(X, y)  # no warm start from the previous diffusion
    np.testing.assert_array_equal(
        clf.pseudo_label_weights_, fresh.pseudo_label_weights_
    )
    clf.set_params(max_epochs=1)  # warm-up only: no propagation this time
    clf.fit(X, y)
    assert not hasattr(clf, "transduction_") and not hasattr(clf, "_diffusion_")


def test_clone_and_pickle(data):
    X, y, _ = data
    clf = _clf(gamma=2.0).fit(X, y)
    assert clone(clf).get_params()["gamma"] == 2.0
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    np.testing.assert_array_equal(restored.transduction_, clf.transduction_)


def test_string_labels(data):
    X, y, _ = data
    names = np.array(["a", "b", "c"], dtype=object)
    y_str = np.where(y >= 0, names[np.maximum(y, 0)], -1).astype(object)
    clf = _clf().fit(X, y_str)
    assert set(clf.transduction_) <= {"a", "b", "c"}
    assert set(clf.predict(X)) <= {"a", "b", "c"}


def test_pseudo_label_accuracy_callback(data):
    X, y, y_true = data
    clf = _clf(callbacks=[("acc", PseudoLabelAccuracy(y_true))]).fit(X, y)
    assert "pseudo_label_acc" not in clf.history[0]
    assert 0 <= clf.history[0, "network_acc"] <= 1
    acc = clf.history[-1, "pseudo_label_acc"]
    unlabeled = y < 0
    assert acc == pytest.approx(
        np.mean(clf.transduction_[unlabeled] == y_true[unlabeled])
    )
    with pytest.raises(ValueError, match="2 true labels for the 60 rows"):
        _clf(callbacks=[("acc", PseudoLabelAccuracy([0, 1]))]).fit(X, y)


def test_mean_teacher(data):
    X, y, _ = data
    clf = _clf(
        consistency_weight=1.0, n_warmup_epochs=1, augment=GaussianNoise(0.1)
    ).fit(X, y)
    teacher = clf.teacher_
    assert not any(p.requires_grad for p in teacher.parameters())
    optimized = {id(p) for g in clf.optimizer_.param_groups for p in g["params"]}
    assert not optimized & {id(p) for p in teacher.parameters()}
    # Every epoch, warm-up included, mixes in the unlabeled rows.
    assert clf.mean_teacher_.steps == sum(clf.history[:, "train_batch_count"])
    assert clf.history[-1, "consistency_loss"] > 0
    assert clf.history[0, "batches", 0, "train_batch_size"] == 16
    diff = [
        (t - s).abs().max().item()
        for t, s in zip(teacher.parameters(), clf.module_.parameters(), strict=True)
    ]
    assert max(diff) > 0
    assert np.isfinite(clf.history[-1, "train_loss"])


@pytest.mark.parametrize(
    "augment, on", [(None, False), ("auto", False), ("noise", True)]
)
def test_auto_consistency_weight_follows_the_perturbation(data, augment, on):
    X, y, _ = data
    augment = GaussianNoise(0.1) if augment == "noise" else augment
    clf = _clf(n_warmup_epochs=1, augment=augment)
    assert clf.get_params()["consistency_weight"] == "auto"
    clf.fit(X, y)
    # MLPModule suggests no perturbation, so "auto" leaves tabular rows as they are.
    assert (getattr(clf, "teacher_", None) is not None) is on
    assert ("consistency_loss" in clf.history[-1]) is on
    if on:
        assert clf.mean_teacher_.weight == 1.0
        assert clf.history[-1, "consistency_loss"] > 0
    else:
        assert not hasattr(clf, "mean_teacher_")


def test_auto_consistency_weight_is_on_for_sequences():
    from skssl.deep import CNN1DModule

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 16)).astype(np.float32)
    y = np.full(40, -1)
    y[:4] = [0, 1, 0, 1]
    clf = _clf(module=CNN1DModule, max_epochs=2, n_warmup_epochs=1).fit(X, y)
    assert clf.augment_ is not None and clf.mean_teacher_.weight == 1.0
    ignored = _clf(
        module=CNN1DModule, max_epochs=2, n_warmup_epochs=1, unlabeled="ignore"
    ).fit(X, y)
    assert getattr(ignored, "teacher_", None) is None


def test_mean_teacher_without_perturbation_warns(data):
    X, y, _ = data
    with pytest.warns(UserWarning, match="augment=GaussianNoise"):
        _clf(consistency_weight=1.0).fit(X, y)


def test_mean_teacher_switched_on_under_warm_start_is_an_error(data):
    X, y, _ = data
    clf = _clf(warm_start=True).fit(X, y)
    clf.set_params(consistency_weight=1.0, augment=GaussianNoise())
    with pytest.raises(ValueError, match="warm_start=False"):
        clf.fit(X, y)


# --- degenerate graphs and bad input ----------------------------------------------


def test_duplicate_rows_and_empty_class_are_nan_free():
    rng = np.random.default_rng(0)
    X = np.repeat(rng.normal(size=(3, 4)).astype(np.float32), 20, axis=0)
    y = np.full(60, -1)
    y[[0, 20]] = [0, 1]
    clf = _clf(classes=[0, 1, 2]).fit(X, y)
    assert clf.class_weights_[2] == 0
    for attr in ("label_distributions_", "pseudo_label_weights_", "certainty_"):
        assert np.all(np.isfinite(getattr(clf, attr))), attr
    assert np.all(np.isfinite(clf.predict_proba(X)))


def test_all_zero_embeddings_are_nan_free(data):
    X, y, _ = data
    with pytest.warns(UserWarning) as record:
        clf = _clf(module=_Identity, module__zero=True).fit(X, y)
    messages = [str(w.message) for w in record]
    assert any("none of them has an unlabeled neighbour" in m for m in messages)
    # Rows no label reaches are said once per fit, not once per propagation.
    unreachable = [m for m in messages if "51 of 60 samples are not connected" in m]
    assert len(unreachable) == 1
    assert clf.history[-1, "n_unreachable"] == 51
    np.testing.assert_allclose(clf.label_distributions_[y < 0], 1 / 3)
    assert np.all(clf.pseudo_label_weights_[y < 0] == 0)
    assert np.all(np.isfinite(clf.pseudo_label_weights_))


def test_warns_for_a_class_without_unlabeled_neighbours():
    # Class 1's labels are four copies of one point pointing away from all
    # other rows: with 3 neighbours they only see each other.
    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(40, 3))).astype(np.float32)
    X[:, 2] = 0
    X[:4] = [0, 0, 1]
    y = np.full(40, -1)
    y[:4] = 1
    y[4:8] = 0
    with pytest.warns(UserWarning, match=r"classes \[1\] have labeled rows"):
        _clf(module=_Identity, n_neighbors=3, max_epochs=2).fit(X, y)


def test_fully_labeled_y_trains_without_propagation(data):
    X, _, y_true = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clf = _clf().fit(X, y_true)
    assert not hasattr(clf, "transduction_")
    assert clf.predict(X).shape == (60,)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(alpha=1.0), "alpha"),
        (dict(n_neighbors=0), "n_neighbors"),
        (dict(backend="annoy"), "backend"),
        (dict(backend="precomputed"), "backend"),
        (dict(graph_update_every=0), "graph_update_every"),
        (dict(tol=1.0), "tol"),
        (dict(ema_decay=1.0), "ema_decay"),
        (dict(consistency_weight=-1.0), "consistency_weight"),
        (dict(consistency_weight="always"), "consistency_weight"),
        (dict(index_params={"nprobes": 3}), "unknown key"),
    ],
)
def test_bad_parameters(data, params, match):
    X, y, _ = data
    clf = _clf(**params)
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "module_") and not hasattr(clf, "classes_")


def test_epoch_table_reprints_its_header_when_columns_change(data, capsys):
    X, y, _ = data
    _clf(n_warmup_epochs=1, max_epochs=3, verbose=1).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    headers = [line for line in lines if line.strip().startswith("epoch")]
    assert len(headers) == 2 and "pseudo_label_certainty" in headers[1]
    assert "pseudo_label_counts" not in "".join(lines)
