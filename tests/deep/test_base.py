"""SemiSupervisedNet: -1 handling, batches, skorch integration, bad input."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback
from skorch.dataset import ValidSplit
from torch import nn

from skssl.deep import (
    GaussianNoise,
    MLPModule,
    SemiSupervisedBatchSampler,
    SemiSupervisedNet,
)

FAST = dict(
    min_batches_per_epoch=1,
    max_epochs=2,
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
        y[np.flatnonzero(y_true == c)[:4]] = c
    return X.astype(np.float32), y, y_true


def _net(**params):
    return SemiSupervisedNet(**{**FAST, **params})


def _state(net):
    return {k: v.clone() for k, v in net.module_.state_dict().items()}


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --- targets ------------------------------------------------------------------


def test_classes_exclude_unlabeled_marker(data):
    X, y, _ = data
    net = _net().fit(X, y)
    assert net.classes_.tolist() == [0, 1, 2]
    proba = net.predict_proba(X)
    assert proba.shape == (60, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert set(net.predict(X)) <= {0, 1, 2}


@pytest.mark.parametrize(
    "names",
    [np.array(["ant", "bee", "cat"], dtype=object), np.array([3, 7, 10])],
    ids=["strings", "non-contiguous-ints"],
)
def test_labels_map_through_classes(data, names):
    X, y, _ = data
    y_named = np.where(y >= 0, names[np.maximum(y, 0)], -1)
    y_named = y_named.astype(object) if names.dtype == object else y_named
    net = _net().fit(X, y_named)
    assert net.classes_.tolist() == sorted(names.tolist())
    assert set(net.predict(X).tolist()) <= set(names.tolist())
    # Columns of predict_proba follow classes_: same argmax as predict.
    np.testing.assert_array_equal(
        net.classes_[net.predict_proba(X).argmax(1)], net.predict(X)
    )


def test_classes_parameter_allows_an_empty_class(data):
    X, y, _ = data
    net = _net(classes=[0, 1, 2, 5]).fit(X, y)
    assert net.classes_.tolist() == [0, 1, 2, 5]
    assert net.predict_proba(X).shape == (60, 4)


# --- batches ------------------------------------------------------------------


def test_batch_sampler_epoch_is_one_pass_over_unlabeled_rows():
    y = np.array([0] * 3 + [1] * 2 + [-1] * 23)
    sampler = SemiSupervisedBatchSampler(
        y, batch_size=8, batch_size_labeled=3, random_state=0
    )
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5  # ceil(23 / 5)
    unlabeled = np.concatenate([b[3:] for b in batches])
    assert sorted(unlabeled) == list(range(5, 28))
    assert all(np.all(y[b[:3]] >= 0) for b in batches)
    assert [len(b) for b in batches] == [8, 8, 8, 8, 6]


def test_batch_sampler_balanced_and_supervised_epochs():
    y = np.array([0] * 50 + [1] * 2 + [-1] * 400)
    sampler = SemiSupervisedBatchSampler(
        y,
        batch_size=60,
        batch_size_labeled=50,
        balanced=True,
        include_unlabeled=lambda: False,
        random_state=0,
    )
    batches = list(sampler)
    assert len(batches) == 40 and all(len(b) == 50 for b in batches)
    drawn = y[np.concatenate(batches)]
    assert 0.4 < (drawn == 1).mean() < 0.6  # class 1 has 2 of 52 labels


def test_batch_sampler_without_unlabeled_rows():
    y = np.array([0, 1, 0, 1, 1])
    batches = list(SemiSupervisedBatchSampler(y, batch_size=2, batch_size_labeled=1))
    assert sorted(np.concatenate(batches)) == [0, 1, 2, 3, 4]


def test_epoch_length_and_labeled_only_loss(data):
    X, y, _ = data
    net = _net(max_epochs=1).fit(X, y)
    # 48 unlabeled rows, 12 per batch -> 4 batches of 4 labeled rows each.
    assert net.history[-1, "train_batch_count"] == 4
    assert net.history[-1, "batches", 0, "train_batch_size"] == 4


def test_train_split_uses_labeled_rows_only(data):
    X, y, _ = data
    seen = {}

    def split(dataset, y_split, **kwargs):
        seen["y"] = np.asarray(y_split)
        return ValidSplit(3, stratified=True)(dataset, y_split)

    net = _net(train_split=split).fit(X, y)
    assert -1 not in seen["y"] and len(seen["y"]) == 12
    assert "valid_acc" in net.history[-1] and "valid_loss" in net.history[-1]
    assert 0 <= net.history[-1, "valid_acc"] <= 1


# --- reproducibility and skorch integration --------------------------------------


def test_random_state_makes_fits_identical(data):
    X, y, _ = data
    before = torch.get_rng_state()
    a, b = _net().fit(X, y), _net().fit(X, y)
    # Fitting leaves the global torch stream as it was.
    assert torch.equal(torch.get_rng_state(), before)
    _assert_same_state(_state(a), _state(b))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = _net(random_state=1).fit(X, y)
    assert not torch.equal(_state(a)["head.weight"], _state(c)["head.weight"])


def test_device_auto_is_kept_as_a_parameter(data):
    X, y, _ = data
    net = _net()
    assert net.get_params()["device"] == "auto"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert net.device == expected
    net.fit(X, y)
    assert clone(net).get_params()["device"] == "auto"
    restored = pickle.loads(pickle.dumps(net))
    assert restored.get_params()["device"] == "auto"
    np.testing.assert_array_equal(restored.predict(X), net.predict(X))


def test_clone_and_pickle(data):
    X, y, _ = data
    net = _net(module__hidden=(8,))
    fresh = clone(net)
    assert fresh.get_params()["module__hidden"] == (8,)
    assert not hasattr(fresh, "module_")
    net.fit(X, y)
    restored = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(restored.predict_proba(X), net.predict_proba(X))
    assert restored.classes_.tolist() == net.classes_.tolist()


def test_save_and_load_params_round_trip(data, tmp_path):
    X, y, _ = data
    net = _net().fit(X, y)
    f_params, f_history = tmp_path / "params.pt", tmp_path / "history.json"
    net.save_params(f_params=f_params, f_history=f_history)
    # Without data the sizes are given explicitly.
    new = _net(module__n_features=4, classes=[0, 1, 2]).initialize()
    new.load_params(f_params=f_params, f_history=f_history)
    np.testing.assert_array_equal(new.predict_proba(X), net.predict_proba(X))
    assert len(new.history) == len(net.history)
    assert new.get_params()["device"] == "auto"


def test_initialize_without_data_names_the_fix():
    with pytest.raises(TypeError, match="module__n_features"):
        _net().initialize()


def test_warm_start_and_partial_fit_continue_training(data):
    X, y, _ = data
    net = _net(warm_start=True).fit(X, y)
    module = net.module_
    net.fit(X, y)
    assert net.module_ is module and len(net.history) == 4
    net.partial_fit(X, y)
    assert len(net.history) == 6


def test_set_params_reinitializes_the_module(data):
    X, y, _ = data
    net = _net().fit(X, y)
    net.set_params(module__hidden=(5,))
    assert net.module_.head.in_features == 5
    net.fit(X, y)
    assert net.embed(X).shape == (60, 5)


def test_callbacks_and_history(data):
    X, y, _ = data

    class CountBatches(Callback):
        def initialize(self):
            self.n = 0
            return self

        def on_batch_end(self, net, training=False, **kwargs):
            self.n += training

    counter = CountBatches()
    net = _net(callbacks=[("count", counter)]).fit(X, y)
    assert dict(net.callbacks_)["count"].n == 8
    assert net.history[:, "train_loss"][0] > 0


def _labeled_accuracy(estimator, X, y):
    labeled = np.asarray(y) != -1
    return float(np.mean(estimator.predict(X[labeled]) == y[labeled]))


def test_grid_search_over_lr_and_module_params(data):
    X, y, _ = data
    grid = GridSearchCV(
        _net(max_epochs=1),
        {"lr": [0.01, 0.05], "module__hidden": [(4,), (8,)]},
        cv=2,
        scoring=_labeled_accuracy,
        error_score="raise",
    )
    grid.fit(X, y)
    assert set(grid.best_params_) == {"lr", "module__hidden"}
    assert grid.predict(X).shape == (60,)


def test_embed_returns_unit_features(data):
    X, y, _ = data
    net = _net(module__hidden=(6,), module__normalize=True).fit(X, y)
    V = net.embed(X)
    assert V.shape == (60, 6) and V.dtype == np.float32
    norms = np.linalg.norm(V, axis=1)
    np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-5)


def test_module_instance_is_used_as_given(data):
    X, y, _ = data
    module = MLPModule(n_features=4, n_classes=3, hidden=(3,))
    net = _net(module=module).fit(X, y)
    assert net.module_ is module


def test_user_module_following_the_protocol(data):
    X, y, _ = data

    class Linear(nn.Module):
        def __init__(self, n_features, n_classes):
            super().__init__()
            self.head = nn.Linear(n_features, n_classes)

        def embed(self, x):
            return x

        def forward(self, x):
            return self.head(self.embed(x))

    net = _net(module=Linear).fit(X, y)
    np.testing.assert_allclose(net.embed(X), X)


# --- bad input --------------------------------------------------------------------


def _assert_unfitted(net):
    for attr in ("module_", "classes_", "n_features_in_"):
        assert getattr(net, attr, None) is None, attr
    assert not net.history_  # None, or a user's history object, emptied
    assert not net.initialized_


def test_no_labeled_rows(data):
    X, _, _ = data
    net = _net()
    with pytest.raises(ValueError, match="no labeled sample"):
        net.fit(X, np.full(60, -1))
    _assert_unfitted(net)


def test_module_without_embedding(data):
    X, y, _ = data
    net = _net(module=nn.Linear, module__in_features=4, module__out_features=3)
    with pytest.raises(TypeError, match="no embed"):
        net.fit(X, y)
    _assert_unfitted(net)


def test_failed_refit_keeps_the_previous_fit_whole(data):
    X, y, _ = data
    net = _net().fit(X, y)
    state = dict(vars(net))
    expected = net.predict_proba(X)
    for bad in (
        lambda: net.fit(X, np.full(60, -1)),
        lambda: net.partial_fit(X[:, :2], y),
        lambda: net.set_params(lr="fast").fit(X, y),
    ):
        with pytest.raises(ValueError):
            bad()
        fitted = {k: v for k, v in vars(net).items() if k.endswith("_")}
        assert fitted.keys() == {k for k in state if k.endswith("_")}
        assert all(fitted[k] is state[k] for k in fitted)
        np.testing.assert_array_equal(net.predict_proba(X), expected)
    assert net.n_features_in_ == 4


def test_failure_during_training_leaves_no_fitted_state(data):
    X, y, _ = data
    net = _net(module__hidden=(4,)).fit(X, y)

    class Explode(Callback):
        def on_epoch_end(self, net, **kwargs):
            raise RuntimeError("boom")

    net.set_params(callbacks=[("explode", Explode())])
    with pytest.raises(RuntimeError, match="boom"):
        net.fit(X, y)
    _assert_unfitted(net)


@pytest.mark.parametrize(
    "X_bad, match",
    [
        (np.array([["a", "b", "c", "d"]] * 60), "X must hold numbers"),
        (np.zeros(60), "2D array"),
        (np.zeros((60, 2, 2)), "dim 3"),
        (np.full((60, 4), np.nan), "NaN"),
    ],
    ids=["strings", "1d", "3d", "nan"],
)
def test_bad_X_in_fit(data, X_bad, match):
    _, y, _ = data
    net = _net()
    with pytest.raises(ValueError, match=match):
        net.fit(X_bad, y)
    _assert_unfitted(net)


def test_bad_X_in_predict(data):
    X, y, _ = data
    net = _net().fit(X, y)
    with pytest.raises(ValueError, match="expecting 4 features"):
        net.predict(X[:, :3])
    with pytest.raises(ValueError, match="X must hold numbers"):
        net.embed(np.array([["a", "b", "c", "d"]]))


def test_predict_before_fit():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        _net().predict(np.zeros((2, 4)))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(batch_size_labeled=16), "batch_size_labeled=16 must be smaller"),
        (dict(batch_size=1), "batch_size"),
        (dict(balanced_labeled="yes"), "balanced_labeled"),
        (dict(iterator_train__shuffle=True), "iterator_train__shuffle"),
        (dict(module__n_classes=5), r"logits of shape \(batch, 3\)"),
        (dict(criterion=nn.CrossEntropyLoss()), "reduction='none'"),
    ],
)
def test_bad_parameters(data, params, match):
    X, y, _ = data
    with pytest.raises(ValueError, match=match):
        _net(**params).fit(X, y)


def test_labels_outside_fixed_classes(data):
    X, y, _ = data
    with pytest.raises(ValueError, match=r"not in classes_"):
        _net(classes=[0, 1]).fit(X, y)


# --- the skorch contract ----------------------------------------------------------


def test_initialize_then_load_params_restores_the_class_labels(data, tmp_path):
    X, y, _ = data
    names = np.array(["ant", "bee", "cat"], dtype=object)
    y_named = np.where(y >= 0, names[np.maximum(y, 0)], -1).astype(object)
    net = _net().fit(X, y_named)
    net.save_params(f_params=tmp_path / "p.pt", f_history=tmp_path / "h.json")
    new = _net(module__n_features=4, module__n_classes=3).initialize()
    new.load_params(f_params=tmp_path / "p.pt", f_history=tmp_path / "h.json")
    assert new.classes_.tolist() == ["ant", "bee", "cat"]
    np.testing.assert_array_equal(new.predict(X), net.predict(X))
    new.partial_fit(X, y_named)  # continues with the restored classes
    assert len(new.history) == len(net.history) + 2


def test_initialize_without_history_predicts_class_indices(data, tmp_path):
    X, y, _ = data
    net = _net().fit(X, y)
    net.save_params(f_params=tmp_path / "p.pt")
    new = _net(module__n_features=4, module__n_classes=3).initialize()
    new.load_params(f_params=tmp_path / "p.pt")
    np.testing.assert_array_equal(new.predict(X), net.predict(X))


def test_restore_from_a_checkpoint(data, tmp_path):
    from skorch.callbacks import Checkpoint

    X, y, _ = data
    y_named = np.where(y >= 0, y + 10, -1)
    cp = Checkpoint(monitor=None, dirname=str(tmp_path))
    net = _net(callbacks=[("cp", cp)]).fit(X, y_named)
    new = _net(module__n_features=4, module__n_classes=3).initialize()
    new.load_params(checkpoint=cp)
    assert new.classes_.tolist() == [10, 11, 12]
    np.testing.assert_array_equal(new.predict(X), net.predict(X))


def test_nll_criterion_gets_skorchs_log_step(data):
    from skorch import NeuralNetClassifier

    X, y, _ = data

    class Probabilities(MLPModule):
        def forward(self, x):
            return torch.softmax(super().forward(x), dim=1)

    net = _net(module=Probabilities, criterion=nn.NLLLoss).fit(X, y)
    assert np.isfinite(net.history[-1, "train_loss"])
    y_pred = net.infer(torch.as_tensor(X[:8]))
    target = torch.as_tensor(np.array([0, 1, 2, 0, 1, 2, 0, 1]))
    ours = net.get_loss(y_pred, target, training=False)
    theirs = NeuralNetClassifier.get_loss(net, y_pred, target).mean()
    torch.testing.assert_close(ours, theirs)
    np.testing.assert_allclose(net.predict_proba(X).sum(1), 1.0, rtol=1e-5)


def test_user_history_object_is_kept(data):
    from skorch.history import History

    X, y, _ = data
    history = History()
    net = _net(history=history).fit(X, y)
    assert net.history is history and len(history) == 2
    net.fit(X, y)
    assert net.history is history and len(history) == 2


def test_predict_before_fit_raises_what_skorch_raises():
    from skorch.exceptions import NotInitializedError

    with pytest.raises(NotInitializedError):
        _net().predict(np.zeros((2, 4)))
    with pytest.raises(NotInitializedError):
        _net().embed(np.zeros((2, 4)))


def test_non_numeric_lr_is_a_clear_error(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="'lr' parameter"):
        _net(lr="0.1").fit(X, y)


# --- hooks: target store, batch sampler, one forward pass, augment ----------------


def test_target_store_drives_the_loss(data):
    X, y, _ = data
    net = _net(max_epochs=1).fit(X, y)
    store = net.targets_
    np.testing.assert_array_equal(store.given, y)
    np.testing.assert_array_equal(store.weight, (y >= 0).astype(np.float32))
    logits = torch.zeros(3, 3, requires_grad=True)
    rows = np.flatnonzero(y >= 0)[:3]
    expected = float(np.log(3))  # uniform logits, weight 1
    assert float(net.get_loss(logits, rows, training=True)) == pytest.approx(expected)
    store.update(store.target, np.zeros(60))
    assert float(net.get_loss(logits, rows, training=True)) == 0.0
    with pytest.raises(ValueError, match="one entry per training row"):
        store.update(store.target[:5], store.weight[:5])


def test_batch_sampler_hook_forms_the_batches(data):
    X, y, _ = data

    class EveryRowOnce(SemiSupervisedNet):
        def get_batch_sampler(self, dataset):
            return [np.arange(len(dataset))]

    net = EveryRowOnce(**FAST).fit(X, y)
    assert net.history[-1, "train_batch_count"] == 1
    assert net.history[-1, "batches", 0, "train_batch_size"] == 60


def test_infer_with_embedding_is_one_forward_pass(data):
    X, y, _ = data
    net = _net(max_epochs=1).fit(X, y)
    calls = []
    net.module_.features.register_forward_hook(lambda *a: calls.append(1))
    logits, embedding = net.infer_with_embedding(torch.as_tensor(X[:5]))
    assert len(calls) == 1 and logits.shape == (5, 3) and embedding.shape == (5, 256)
    torch.testing.assert_close(logits, net.module_(torch.as_tensor(X[:5])))


def test_augment_perturbs_training_batches_only(data):
    X, y, _ = data
    seen = []

    def augment(x):
        seen.append(x.shape[0])
        return x + 0.01

    net = _net(augment=augment).fit(X, y)
    assert len(seen) == sum(net.history[:, "train_batch_count"])
    count = len(seen)
    net.predict(X)
    net.embed(X)
    assert len(seen) == count
    with pytest.raises(ValueError, match="'augment' parameter"):
        _net(augment="noise").fit(X, y)


def test_loss_terms_are_recorded(data):
    X, y, _ = data
    net = _net().fit(X, y)
    assert net.history[-1, "sup_loss"] == pytest.approx(net.history[-1, "train_loss"])
    assert "consistency_loss" not in net.history[-1]


# --- input standardization and the supervised reference ---------------------------


@pytest.mark.parametrize("estimator", ["base", "dlp", "cclp"])
def test_raw_unscaled_features_train_like_scaled_ones(estimator):
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    from skssl import CCLPClassifier, DeepLabelPropagationClassifier
    from skssl.datasets import mask_labels

    X, y_true = load_wine(return_X_y=True)
    y = mask_labels(y_true, per_class=8, random_state=0)
    make = {
        "base": lambda: SemiSupervisedNet(max_epochs=15, lr=0.01, random_state=0),
        "dlp": lambda: DeepLabelPropagationClassifier(
            n_neighbors=10, n_warmup_epochs=5, max_epochs=10, lr=0.01, random_state=0
        ),
        "cclp": lambda: CCLPClassifier(
            max_epochs=10, labeled_per_class=5, random_state=0
        ),
    }[estimator]
    X_scaled = StandardScaler().fit_transform(X)
    X_raw = X * 1e4 + 1e3
    unlabeled = y == -1
    scores = []
    for data in (X_scaled, X_raw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            clf = make().fit(data, y)
        scores.append(np.mean(clf.predict(data)[unlabeled] == y_true[unlabeled]))
    assert scores[0] > 0.85
    assert abs(scores[0] - scores[1]) <= 0.03


def test_input_statistics_survive_pickling_and_save_load(data, tmp_path):
    X, y, _ = data
    X = X * 1e3 + 50
    net = _net().fit(X, y)
    mean = net.module_.standardize.mean.clone()
    torch.testing.assert_close(mean, torch.as_tensor(X.mean(0)), rtol=1e-4, atol=1e-2)
    restored = pickle.loads(pickle.dumps(net))
    torch.testing.assert_close(restored.module_.standardize.mean, mean)
    net.save_params(f_params=tmp_path / "p.pt")
    new = _net(module__n_features=4, module__n_classes=3).initialize()
    new.load_params(f_params=tmp_path / "p.pt")
    torch.testing.assert_close(new.module_.standardize.mean, mean)
    np.testing.assert_array_equal(new.predict_proba(X), net.predict_proba(X))


def test_statistics_come_from_every_row(data):
    X, y, _ = data
    net = _net(max_epochs=1).fit(X, y)
    expected = torch.as_tensor(X.mean(0))
    torch.testing.assert_close(
        net.module_.standardize.mean, expected, rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("estimator", ["base", "dlp", "cclp"])
def test_supervised_reference_ignores_every_unlabeled_row(data, estimator):
    from skssl import CCLPClassifier, DeepLabelPropagationClassifier

    X, y, _ = data
    make = {
        "base": lambda: _net(unlabeled="ignore"),
        "dlp": lambda: DeepLabelPropagationClassifier(
            n_neighbors=5, n_warmup_epochs=1, unlabeled="ignore", **FAST
        ),
        "cclp": lambda: CCLPClassifier(
            labeled_per_class=2,
            batch_size_unlabeled=8,
            unlabeled="ignore",
            **{k: v for k, v in FAST.items() if "batch" not in k},
        ),
    }[estimator]
    other = X.copy()
    unlabeled = y == -1
    other[unlabeled] = np.random.default_rng(1).normal(50, 9, size=(unlabeled.sum(), 4))
    a, b = make().fit(X, y), make().fit(other, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    labeled_mean = torch.as_tensor(X[~unlabeled].mean(0))
    torch.testing.assert_close(
        a.module_.standardize.mean, labeled_mean, rtol=1e-5, atol=1e-5
    )
    assert not hasattr(a, "transduction_")
    assert all(
        row["batches"][0]["train_batch_size"] < 16 for row in a.history
    )  # labeled draws only


def test_augment_auto_takes_the_modules_suggestion(data):
    from skssl.deep import CNN1DModule, RandomShift

    X, y, _ = data
    assert _net(max_epochs=1).fit(X, y).augment_ is None  # MLPModule: none
    cnn = _net(max_epochs=1, module=CNN1DModule, module__channels=2, module__hidden=4)
    assert isinstance(cnn.fit(X, y).augment_, RandomShift)
    noise = GaussianNoise(0.2)
    assert _net(max_epochs=1, augment=noise).fit(X, y).augment_ is noise


def test_min_batches_per_epoch_repeats_short_passes():
    y = np.array([0, 1] + [-1] * 10)
    sampler = SemiSupervisedBatchSampler(
        y, batch_size=6, batch_size_labeled=2, min_batches=7, random_state=0
    )
    batches = list(sampler)
    assert len(batches) == len(sampler) == 7
    unlabeled = np.concatenate([b[2:] for b in batches])
    # Each pass covers every unlabeled row once before the next one starts.
    assert sorted(unlabeled[:10]) == list(range(2, 12))
    labeled_only = SemiSupervisedBatchSampler(
        np.array([0, 1, 0, 1]), batch_size=3, batch_size_labeled=1, min_batches=5
    )
    assert len(list(labeled_only)) == 5
