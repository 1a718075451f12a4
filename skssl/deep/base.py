"""The skorch net every deep semi-supervised estimator of skssl builds on.

:class:`SemiSupervisedNet` is a :class:`skorch.NeuralNetClassifier` that takes
``y`` with ``-1`` for unlabeled rows. It hooks into skorch at documented points
only (``fit_loop`` is skorch's, unchanged):

- ``fit``/``partial_fit`` validate the parameters, ``X`` and ``y`` (``classes_``
  without -1) before skorch's own ``partial_fit`` runs; a fit that fails
  before training leaves the net as it was, one that fails during training
  leaves it unfitted;
- ``get_split_datasets`` holds validation rows out of the *labeled* rows only,
  wraps the training rows in a :class:`SemiSupervisedDataset` (items
  ``(x_i, i)``) and creates the per-row target store :class:`RowTargets`,
  which subclasses rewrite between epochs (pseudo-labels and weights);
- ``get_iterator`` feeds that dataset through the batch sampler of
  :meth:`SemiSupervisedNet.get_batch_sampler` (by default a
  :class:`SemiSupervisedBatchSampler`);
- ``train_step_single`` perturbs the batch with ``augment``, runs one forward
  pass for logits and embeddings (:meth:`SemiSupervisedNet.infer_with_embedding`),
  sums the named terms of :meth:`SemiSupervisedNet.get_loss_terms` (recorded
  in the history) and back-propagates; ``get_loss`` is the per-row weighted
  loss of the targets, skorch's criterion step included;
- the Mean Teacher piece (:mod:`skssl.deep.teacher`) is built, stepped and
  used whenever :meth:`SemiSupervisedNet.get_mean_teacher` returns one;
- ``initialize_module`` / ``initialize_criterion`` infer the module's input and
  output sizes from the data and check the module protocol
  (:mod:`skssl.deep.modules`).
"""

from __future__ import annotations

import inspect
import numbers
import warnings
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import validate_data
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring, EpochTimer, PassthroughScoring, PrintLog
from skorch.dataset import Dataset, unpack_data
from skorch.utils import is_dataset, to_tensor
from torch.utils.data import Subset

from .._validation import (
    check_missing_targets,
    encode_ssl_targets,
    resolve_device,
    restore_on_failure,
    seed_from,
)
from .data import RowTargets, SemiSupervisedBatchSampler, SemiSupervisedDataset
from .losses import weighted_mean
from .modules import MLPModule, Standardize

__all__ = ["SemiSupervisedNet"]

# Rows per forward pass when computing embeddings outside training.
_EMBED_CHUNK = 2048
# What validating the training data sets, kept when a fresh fit starts.
_VALIDATED = ("n_features_in_", "feature_names_in_", "classes_inferred_")


@contextmanager
def _numeric_X():
    """Turn numpy's "could not convert" into an error that names X and the fix."""
    try:
        yield
    except ValueError as exc:
        if "could not convert" not in str(exc):
            raise
        raise ValueError(
            f"X must hold numbers, but {exc}. Encode non-numeric columns first, "
            "e.g. with sklearn.preprocessing.OrdinalEncoder or OneHotEncoder."
        ) from exc


def _valid_accuracy(net, X, y):
    """Accuracy on validation rows, whose targets are indices into ``classes_``."""
    return float(np.mean(net.predict_proba(X).argmax(axis=1) == np.asarray(y)))


class _PrintLog(PrintLog):
    """skorch's epoch table, with the header printed again when columns change.

    Semi-supervised statistics (pseudo-label certainty, accuracies...) often
    start after a warm-up; skorch's ``PrintLog`` would print them under the
    header of the first epoch.
    """

    def initialize(self):
        super().initialize()
        self.columns_ = None
        return self

    def on_epoch_end(self, net, **kwargs):
        columns = self._sorted_keys(net.history[-1].keys())
        if columns != self.columns_:
            self.first_iteration_ = True
            self.columns_ = columns
        super().on_epoch_end(net, **kwargs)


class AutoDeviceMixin:
    """``device="auto"`` and ``random_state`` seeding for skorch nets.

    skorch reads ``self.device`` wherever it moves data, so the property
    returns the concrete device while ``get_params``, ``clone``, pickling and
    ``load_params`` keep the value the user gave ("auto" travels to machines
    with other devices). ``_seeded`` runs a block on torch's stream seeded by
    ``random_state`` and restores the global stream afterwards.
    """

    @property
    def device(self):
        return resolve_device(vars(self).get("device", "cpu"))

    @device.setter
    def device(self, value):
        vars(self)["device"] = value

    def get_params(self, deep=True, **kwargs):
        params = super().get_params(deep=deep, **kwargs)
        params["device"] = vars(self)["device"]
        return params

    def __setstate__(self, state):
        requested = state.get("device")
        if requested == "auto":
            state["device"] = resolve_device(requested)
        super().__setstate__(state)
        if requested == "auto":
            vars(self)["device"] = requested

    def load_params(self, *args, **kwargs):
        requested = vars(self)["device"]
        super().load_params(*args, **kwargs)
        if requested == "auto":
            vars(self)["device"] = requested

    @contextmanager
    def _seeded(self):
        seed = seed_from(self.random_state)
        if seed is None:
            yield
            return
        on_cuda = self.device is not None and torch.device(self.device).type == "cuda"
        devices = [torch.cuda.current_device()] if on_cuda else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield


class SemiSupervisedNet(AutoDeviceMixin, NeuralNetClassifier):
    """skorch classifier trained on labeled rows of ``y`` (``-1`` = unlabeled).

    The base of every deep skssl estimator. On its own it trains the network
    on the labeled rows only, with the same batches, module and schedule as the
    semi-supervised subclasses: the supervised reference they must beat.

    It stays a full :class:`skorch.NeuralNetClassifier`: callbacks, ``history``,
    ``save_params``/``load_params``, ``warm_start``, ``partial_fit``,
    ``set_params(module__hidden=...)``, ``clone``, pickling and
    :class:`~sklearn.model_selection.GridSearchCV` work as usual. What differs:

    - ``y`` may hold -1; ``classes_`` excludes it, ``predict`` returns labels
      from ``classes_`` (strings and non-contiguous integers work) and the
      columns of ``predict_proba`` follow ``classes_``. Targets seen by skorch
      callbacks are indices into ``classes_``.
    - Each training batch has ``batch_size_labeled`` labeled rows drawn with
      replacement and up to ``batch_size - batch_size_labeled`` unlabeled rows;
      an epoch is one pass over the unlabeled rows
      (:class:`SemiSupervisedBatchSampler`). In supervised epochs (all of them
      here, the warm-up in subclasses) a batch is its labeled draw only, with
      as many batches per epoch.
    - ``train_split`` (any skorch splitter, e.g. ``ValidSplit(5)``) only ever
      sees the labeled rows, so it never stratifies on -1; unlabeled rows always
      stay in training. The default is no validation split.
    - ``embed(X)`` returns the module's features (see the module protocol in
      :mod:`skssl.deep.modules`).
    - ``augment`` perturbs every training batch (:mod:`skssl.deep.augment`).
    - The history records each term of the training loss per batch and epoch
      (``sup_loss``, and e.g. ``consistency_loss``); ``train_loss`` is their
      weighted sum. A loss that is not finite stops the fit with an error.
    - ``classes_`` is recorded in the history, so ``initialize()`` then
      ``load_params(f_params=..., f_history=...)`` (or a ``Checkpoint``)
      restores the class labels without ``classes=``.

    Parameters
    ----------
    module : torch module class or instance, default=MLPModule
        Network following the module protocol: ``forward(x)`` returns logits,
        ``embed(x)`` the features before the head. A class gets
        ``n_features`` and ``n_classes`` from the data unless ``module__*``
        sets them.
    criterion : torch loss class, default=torch.nn.CrossEntropyLoss
        Per-sample loss on logits; it is built with ``reduction="none"`` and
        the estimator weights and averages the per-row losses.
    optimizer : torch optimizer class, default=torch.optim.Adam
    lr : float, default=1e-3
        Learning rate.
    max_epochs : int, default=30
        Epochs per call to ``fit``.
    batch_size : int, default=128
        Rows per training batch (labeled plus unlabeled), and per prediction
        batch.
    batch_size_labeled : int, default=64
        Labeled rows per training batch; must be below ``batch_size``. Half of
        the batch, as in Iscen et al. (2019, 50 of 100): since the batch loss is
        divided by the whole batch size, a smaller share weakens the labeled
        rows against the pseudo-labeled ones.
    balanced_labeled : bool, default=False
        Draw the labeled rows of a batch class-balanced instead of uniformly.
    train_split : callable or None, default=None
        skorch splitter applied to the labeled rows only (e.g.
        ``skorch.dataset.ValidSplit(5)``); None trains on every row.
    callbacks : list of (name, callback) or None, default=None
        skorch callbacks; the defaults record ``train_loss``, ``valid_loss``
        and ``valid_acc``.
    classes : array-like or None, default=None
        Fix ``classes_`` (and the order of ``predict_proba``'s columns) instead
        of inferring them from the labeled rows; a listed class may have no
        label.
    min_batches_per_epoch : int, default=20
        Fewest batches per epoch. An epoch is one pass over the unlabeled rows;
        when that pass is shorter (small data sets), the epoch goes on with a
        new pass, so every fit gets enough optimizer steps. With 1, a data set
        of a few hundred rows trained for one batch per epoch and lost up to 11
        points on the tuning sets of ``benchmarks/bench_tabular.py``.
    unlabeled : {"use", "ignore"}, default="use"
        ``"ignore"`` turns any deep skssl estimator into its supervised
        reference: the same network, training settings, batches and number of
        steps, trained on the labeled rows alone. The features of the unlabeled
        rows are never read (input statistics come from the labeled rows, no
        pseudo-labels, no unlabeled loss terms, no Mean Teacher); only their
        count sets the epoch length, as in the semi-supervised fit, so both
        take the same number of optimizer steps.
    augment : "auto", callable or None, default="auto"
        Perturbation ``x -> x'`` applied to each training batch before the
        forward pass, e.g. :class:`~skssl.deep.GaussianNoise` (tabular data) or
        :class:`~skssl.deep.RandomShift` (sequences). A Mean Teacher's teacher
        gets an independent draw. ``"auto"`` takes the module's own suggestion
        (``module.default_augment()``: a shift for
        :class:`~skssl.deep.CNN1DModule`, none for
        :class:`~skssl.deep.MLPModule`, none for modules without the method);
        None trains on the rows as they are. The fitted ``augment_`` is the
        perturbation in use.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        ``"auto"`` uses CUDA when torch sees a GPU.
    random_state : int, RandomState instance or None, default=None
        Seeds torch (weights, dropout) and the batch sampler for each fit, so
        two CPU fits with the same int give identical parameters. The global
        torch stream is restored afterwards. None uses torch's global stream.
    verbose : int, default=0
        Print skorch's epoch table when positive.
    **kwargs
        Any other :class:`skorch.NeuralNet` argument, e.g. ``module__hidden``,
        ``optimizer__weight_decay``, ``warm_start``, ``iterator_valid__*``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, -1 excluded.
    n_features_in_ : int
        Number of features seen during fit.
    module_ : torch.nn.Module
        The trained network.
    history_ : skorch.History
        Per-epoch (and per-batch) records.
    teacher_ : torch.nn.Module
        The EMA teacher, when the estimator uses a Mean Teacher.

    See Also
    --------
    skssl.DeepLabelPropagationClassifier : trains the same network on
        pseudo-labels from graph diffusion.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from skssl.deep import SemiSupervisedNet
    >>> X, y_true = make_blobs(60, centers=2, random_state=0)
    >>> y = np.where(np.arange(60) < 20, y_true, -1)
    >>> net = SemiSupervisedNet(max_epochs=5, lr=0.05, batch_size=16,
    ...                         batch_size_labeled=8, random_state=0).fit(X, y)
    >>> net.classes_.tolist(), net.score(X, y_true) > 0.8, net.embed(X).shape
    ([0, 1], True, (60, 256))
    """

    # History entries left out of the printed epoch table.
    _keys_not_printed = ("classes",)
    # Whether get_loss_terms needs the batch's embeddings (a second forward
    # pass for modules without a ``head``).
    _uses_embedding = False

    _parameter_constraints = {
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "batch_size_labeled": [Interval(numbers.Integral, 1, None, closed="left")],
        "balanced_labeled": ["boolean"],
        "min_batches_per_epoch": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "unlabeled": [StrOptions({"use", "ignore"})],
        "augment": [callable, None, StrOptions({"auto"})],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        module=MLPModule,
        *,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=30,
        batch_size=128,
        batch_size_labeled=64,
        balanced_labeled=False,
        min_batches_per_epoch=20,
        unlabeled="use",
        augment="auto",
        train_split=None,
        callbacks=None,
        classes=None,
        device="auto",
        random_state=None,
        verbose=0,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            callbacks=callbacks,
            classes=classes,
            device=device,
            verbose=verbose,
            **kwargs,
        )
        self.batch_size_labeled = batch_size_labeled
        self.balanced_labeled = balanced_labeled
        self.min_batches_per_epoch = min_batches_per_epoch
        self.unlabeled = unlabeled
        self.augment = augment
        self.random_state = random_state

    def load_params(self, *args, **kwargs):
        """skorch's ``load_params``; also restores ``classes_`` from the history.

        The history (``f_history``, or a ``Checkpoint``'s) records the class
        labels of the fit, so a net initialized without data predicts the
        same labels as the one that was saved.
        """
        super().load_params(*args, **kwargs)
        recorded = self.history[0].get("classes") if len(self.history) else None
        if recorded is not None and self.classes is None:
            self.classes_inferred_ = np.asarray(recorded)

    # --- skorch components -----------------------------------------------------

    @property
    def _default_callbacks(self):
        loss_terms = [
            (name, PassthroughScoring(name=name, on_train=True))
            for name in self._loss_term_names()
        ]
        statistics = [
            (name, PassthroughScoring(name=name, lower_is_better=None, on_train=True))
            for name in self._batch_statistic_names()
        ]
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            *loss_terms,
            *statistics,
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            (
                "valid_acc",
                EpochScoring(_valid_accuracy, name="valid_acc", lower_is_better=False),
            ),
            ("print_log", _PrintLog(keys_ignored=list(self._keys_not_printed))),
        ]

    def _loss_term_names(self):
        """Names of the loss terms recorded per epoch (subclasses add theirs)."""
        return ("sup_loss", "consistency_loss")

    def _batch_statistic_names(self):
        """Per-batch statistics (not losses) averaged into each epoch's record."""
        return ()

    @property
    def classes_(self):
        """Class labels, -1 excluded: ``classes`` if given, else those of the fit."""
        if self.classes is not None:
            return np.asarray(self.classes)
        try:
            return self.classes_inferred_
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__} has no classes_ yet: fit it, pass "
                "classes=[...], or load_params(f_history=...) from a saved fit."
            ) from None

    def _data_dims(self, factory):
        """``n_features``/``n_classes`` for a module factory that accepts them."""
        try:
            accepted = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            return {}
        dims = {}
        if "n_features" in accepted and hasattr(self, "n_features_in_"):
            dims["n_features"] = int(self.n_features_in_)
        if "n_classes" in accepted:
            try:
                dims["n_classes"] = len(self.classes_)
            except AttributeError:
                pass
        return dims

    def initialize_module(self):
        """Build the module (sizes from the data) and the Mean Teacher, if any."""
        kwargs = self.get_params_for("module")
        module = self.module
        if not isinstance(module, torch.nn.Module) or kwargs:
            factory = type(module) if isinstance(module, torch.nn.Module) else module
            kwargs = {**self._data_dims(factory), **kwargs}
        self.module_ = self.initialized_instance(module, kwargs)
        if not callable(getattr(self.module_, "embed", None)):
            raise TypeError(
                f"module={type(self.module_).__name__} has no embed(x) method. "
                "Deep skssl estimators need the features before the classifier "
                "head: add `def embed(self, x)` returning a (batch, d) tensor and "
                "make forward(x) return head(embed(x)) (see skssl.deep.MLPModule)."
            )
        if self.classes is None and not hasattr(self, "classes_inferred_"):
            # Initialized without data (e.g. before load_params): the labels
            # are the class indices until a history restores them.
            n_classes = self.get_params_for("module").get("n_classes")
            if n_classes is not None:
                self.classes_inferred_ = np.arange(n_classes)
        self.augment_ = self.augment
        if isinstance(self.augment, str):  # "auto"
            self.augment_ = self._auto_augment()
        mean_teacher = self._mean_teacher()
        if mean_teacher is not None:
            # Registered by skorch as a second module: moved to the device,
            # pickled and saved (f_teacher=...) along with module_.
            self.teacher_ = mean_teacher.build(self.module_)
            self.mean_teacher_ = mean_teacher
        return self

    def initialize_criterion(self):
        """Build the criterion with ``reduction="none"`` (per-row losses)."""
        kwargs = self.get_params_for("criterion")
        if not isinstance(self.criterion, torch.nn.Module):
            kwargs = {"reduction": "none", **kwargs}
        self.criterion_ = self.initialized_instance(self.criterion, kwargs)
        if getattr(self.criterion_, "reduction", "none") != "none":
            raise ValueError(
                f"criterion must return one loss per row, but its reduction is "
                f"{self.criterion_.reduction!r}; pass the criterion class (e.g. "
                "torch.nn.CrossEntropyLoss) or an instance with reduction='none'. "
                "The estimator weights and averages the per-row losses itself."
            )
        return self

    def get_all_learnable_params(self):
        """Parameters that require gradients (a frozen teacher is left out)."""
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

    # --- fitting -----------------------------------------------------------------

    def fit(self, X, y, **fit_params):
        """Initialize (unless ``warm_start``) and train for ``max_epochs`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            All rows, labeled and unlabeled.
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled rows.
        **fit_params : dict
            Passed to the module's ``forward`` and to ``train_split``.

        Returns
        -------
        self
        """
        return self._fit(X, y, fit_params, method="fit")

    def partial_fit(self, X, y, classes=None, **fit_params):
        """Train for ``max_epochs`` more epochs without re-initializing.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            All rows, labeled and unlabeled.
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled rows; after the first call their
            classes must be among ``classes_``.
        classes : ignored
            Accepted for scikit-learn compatibility; set the ``classes``
            parameter to fix the classes instead.
        **fit_params : dict
            Passed to the module's ``forward`` and to ``train_split``.

        Returns
        -------
        self
        """
        return self._fit(X, y, fit_params, method="partial_fit")

    def _fit(self, X, y, fit_params, method):
        fresh = not self.initialized_ or (method == "fit" and not self.warm_start)
        # Bad parameters or data leave the net exactly as it was; a failure
        # once training has started leaves it unfitted, since the module is
        # then half-trained.
        with restore_on_failure(self):
            self._check_params()
            X, y_encoded = self._validate_training_data(
                X, y, reset=fresh or not hasattr(self, "n_features_in_")
            )
        validated = {k: vars(self)[k] for k in _VALIDATED if k in vars(self)}
        try:
            with self._seeded():
                if fresh:
                    # Nothing of an earlier fit (e.g. a subclass's pseudo-labels
                    # or a teacher) may leak into this one.
                    self._forget_fit()
                    vars(self).update(validated)
                    self.initialize()
                    self._standardize_inputs(X, y_encoded)
                NeuralNetClassifier.partial_fit(
                    self, X, y_encoded, _routing_method=method, **fit_params
                )
        except Exception:
            self._forget_fit()
            raise
        return self

    def _check_params(self):
        params = {name: getattr(self, name) for name in self._parameter_constraints}
        validate_parameter_constraints(
            self._parameter_constraints, params, caller_name=type(self).__name__
        )
        if self.batch_size_labeled >= self.batch_size:
            raise ValueError(
                f"batch_size_labeled={self.batch_size_labeled} must be smaller than "
                f"batch_size={self.batch_size}, which counts labeled and unlabeled "
                "rows together; raise batch_size or lower batch_size_labeled."
            )

    def _forget_fit(self):
        """Drop everything fit created, so a failed fit leaves no fitted state.

        A history object given by the user is kept (emptied), as skorch does.
        """
        state = vars(self)
        history = state.get("history_")
        registry = ("_modules", "_criteria", "_optimizers")
        for key in [k for k in state if k.endswith("_") or k in registry]:
            del state[key]
        if history is not None:
            history.clear()
        state.update(history_=history, initialized_=False, virtual_params_={})

    def _validate_X(self, X, reset):
        with _numeric_X():
            return validate_data(self, X, reset=reset, dtype=np.float32)

    def _validate_training_data(self, X, y, *, reset):
        check_missing_targets(y)
        with _numeric_X():
            X, y = validate_data(
                self, X, y, reset=reset, dtype=np.float32, ensure_min_samples=2
            )
        if self.classes is not None:
            known = np.asarray(self.classes)
        else:
            known = None if reset else getattr(self, "classes_inferred_", None)
        classes, y_encoded = encode_ssl_targets(
            y, min_classes=2 if known is None else 1
        )
        if known is not None:
            position = {c: i for i, c in enumerate(known.tolist())}
            unknown = [c for c in classes.tolist() if c not in position]
            if unknown:
                raise ValueError(
                    f"y has labels {unknown} that are not in classes_="
                    f"{known.tolist()}; fit from scratch (warm_start=False) or add "
                    "them to the classes parameter."
                )
            lookup = np.array([position[c] for c in classes.tolist()], dtype=np.int64)
            labeled = y_encoded >= 0
            y_encoded[labeled] = lookup[y_encoded[labeled]]
            classes = known
        self.classes_inferred_ = classes
        return X, y_encoded

    def check_data(self, X, y):
        """Data are validated and ``classes_`` set in ``fit``; nothing to do."""

    def get_split_datasets(self, X, y=None, **fit_params):
        """Split validation rows off the labeled rows; wrap the training rows.

        ``train_split`` is called on a dataset of the labeled rows only, so a
        stratified splitter never sees -1. It must return a
        :class:`torch.utils.data.Subset` of that dataset (as skorch's
        ``ValidSplit`` does) or the dataset itself for the training part.
        The per-row target store :class:`RowTargets` is created here.
        """
        y = np.asarray(y)
        rows = np.arange(y.shape[0])
        dataset_valid = None
        if self.train_split:
            labeled = np.flatnonzero(y >= 0)
            dataset_labeled = Dataset(X[labeled], y[labeled])
            train_part, dataset_valid = self.train_split(
                dataset_labeled, y[labeled], **fit_params
            )
            if train_part is dataset_labeled:
                kept = labeled
            elif (
                isinstance(train_part, Subset) and train_part.dataset is dataset_labeled
            ):
                kept = labeled[np.asarray(train_part.indices)]
            else:
                raise TypeError(
                    f"train_split={self.train_split!r} returned a training part of "
                    f"type {type(train_part).__name__}; it must return a "
                    "torch.utils.data.Subset of the dataset it receives (as "
                    "skorch.dataset.ValidSplit does) or that dataset itself."
                )
            rows = np.sort(np.concatenate([np.flatnonzero(y < 0), kept]))
        X_train = X if rows.size == y.shape[0] else X[rows]
        dataset_train = SemiSupervisedDataset(X_train, y[rows], rows)
        self.targets_ = RowTargets(y, rows)
        return dataset_train, dataset_valid

    def get_batch_sampler(self, dataset):
        """The sampler of training batches (row indices) for one fit.

        Parameters
        ----------
        dataset : SemiSupervisedDataset
            The training rows.

        Returns
        -------
        sampler : torch.utils.data.Sampler
            Yields one array of row indices per batch; by default a
            :class:`SemiSupervisedBatchSampler`.
        """
        return SemiSupervisedBatchSampler(
            dataset.y,
            batch_size=self.batch_size,
            batch_size_labeled=self.batch_size_labeled,
            balanced=self.balanced_labeled,
            include_unlabeled=self._batches_carry_unlabeled,
            min_batches=self.min_batches_per_epoch,
            random_state=self._sampler_seed(),
        )

    @staticmethod
    def _sampler_seed():
        # Drawn from torch's (seeded) stream: random_state fixes it too.
        return int(torch.randint(np.iinfo(np.int32).max, ()).item())

    def get_iterator(self, dataset, training=False):
        """Training batches come from :meth:`get_batch_sampler`."""
        if not (training and isinstance(dataset, SemiSupervisedDataset)):
            return super().get_iterator(dataset, training=training)
        kwargs = self.get_params_for("iterator_train")
        clash = sorted(
            {"batch_size", "shuffle", "sampler", "batch_sampler"} & set(kwargs)
        )
        if clash:
            raise ValueError(
                f"iterator_train__{clash[0]} cannot be set: the semi-supervised batch "
                "sampler forms the training batches. Use batch_size, "
                "batch_size_labeled and balanced_labeled instead."
            )
        sampler = self.get_batch_sampler(dataset)
        return self.iterator_train(dataset, batch_size=None, sampler=sampler, **kwargs)

    def _epoch_uses_unlabeled(self):
        """Whether this epoch's batches carry unlabeled rows (subclass hook)."""
        return self.get_mean_teacher() is not None

    def _batches_carry_unlabeled(self):
        return self.unlabeled == "use" and self._epoch_uses_unlabeled()

    def _mean_teacher(self):
        return self.get_mean_teacher() if self.unlabeled == "use" else None

    def _standardize_inputs(self, X, y_encoded):
        """Hand the rows the input statistics come from to the modules."""
        rows = X if self.unlabeled == "use" else X[y_encoded >= 0]
        for name in ("module_", "teacher_"):
            standardize_from = getattr(
                getattr(self, name, None), "standardize_from", None
            )
            if callable(standardize_from):
                standardize_from(rows)

    def _propagation_due(self, dataset_train, every):
        """Whether this epoch rewrites the pseudo-labels (DLP, LLP).

        After ``n_warmup_epochs`` supervised epochs, every ``every`` epochs,
        and at once when the targets were reset (``_pseudo_labels_stale_``),
        provided the batches carry unlabeled rows.
        """
        epoch = len(self.history) - self.n_warmup_epochs
        if (
            epoch < 1
            or not self._batches_carry_unlabeled()
            or not (dataset_train.y < 0).any()
            or len(dataset_train) < 2
        ):
            return False
        return bool(self._pseudo_labels_stale_ or (epoch - 1) % every == 0)

    def get_mean_teacher(self):
        """The Mean Teacher of this estimator, or None (subclass hook).

        Returns
        -------
        mean_teacher : skssl.deep.teacher.MeanTeacher or None
            Settings from the estimator's parameters; the base builds its
            ``teacher_`` at initialization and uses it in every training step.
        """
        return None

    # --- training step ----------------------------------------------------------

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        mean_teacher = self._mean_teacher()
        if mean_teacher is None:
            vars(self).pop("mean_teacher_", None)
            return
        if getattr(self, "teacher_", None) is None:
            raise ValueError(
                f"{type(self).__name__} now uses a Mean Teacher, but this net was "
                "initialized without one (e.g. consistency_weight was 0); refit "
                "with warm_start=False."
            )
        previous = getattr(self, "mean_teacher_", None)
        mean_teacher.steps = previous.steps if previous is not None else 0
        self.mean_teacher_ = mean_teacher
        dropout = any(
            isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0
            for m in self.module_.modules()
        )
        if self.augment_ is None and not dropout:
            warnings.warn(
                "the Mean Teacher sees the same input as the student (no augment "
                "and no dropout), so its consistency loss is close to 0 and does "
                "nothing; set augment=GaussianNoise() (tabular) or RandomShift() "
                "(sequences), or dropout in the module.",
                UserWarning,
                stacklevel=2,
            )

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        if len(self.history) == 1:
            # For load_params: the labels of the classes, restored without data.
            self.history.record("classes", self.classes_.tolist())

    def _auto_augment(self):
        """The perturbation of ``augment="auto"``: the module's suggestion."""
        suggest = getattr(self.module_, "default_augment", None)
        return suggest() if callable(suggest) else None

    def _perturb(self, x):
        """``augment`` in the module's standardized units, when it has them.

        A module with a :class:`~skssl.deep.Standardize` layer sees
        ``(x - mean) / scale``; perturbing in those units makes
        ``GaussianNoise(0.1)`` a tenth of a feature's spread whatever the raw
        scale of the features.
        """
        if self.augment_ is None:
            return x
        layer = getattr(self.module_, "standardize", None)
        if not isinstance(layer, Standardize):
            return self.augment_(x)
        return self.augment_(layer(x)) * layer.scale + layer.mean

    def infer_with_embedding(self, x, **fit_params):
        """Logits and embeddings of a batch, in one forward pass when possible.

        When the module has a ``head`` (the default modules do), the logits are
        ``head(embed(x))``; otherwise ``forward`` runs as well.

        Parameters
        ----------
        x : Tensor of shape (batch, n_features)
        **fit_params : dict
            Passed to the module, as in skorch's ``infer``.

        Returns
        -------
        logits : Tensor of shape (batch, n_classes)
        embedding : Tensor of shape (batch, d)
        """
        x = to_tensor(x, device=self.device)
        embedding = self.module_.embed(x, **fit_params)
        head = getattr(self.module_, "head", None)
        logits = head(embedding) if callable(head) else self.module_(x, **fit_params)
        return logits, embedding

    def infer(self, x, **fit_params):
        """skorch's ``infer``, through the teacher when it is set to predict."""
        mean_teacher = getattr(self, "mean_teacher_", None)
        if mean_teacher is None or mean_teacher.predict_with != "teacher":
            return super().infer(x, **fit_params)
        return self.teacher_(to_tensor(x, device=self.device), **fit_params)

    def get_loss_terms(self, logits, embedding, rows, X, **fit_params):
        """The named terms of one training step's loss (subclass hook).

        Parameters
        ----------
        logits : Tensor of shape (batch, n_classes)
            The module's output on the perturbed batch.
        embedding : Tensor of shape (batch, d) or None
            Its embeddings (None unless the estimator sets ``_uses_embedding``).
        rows : ndarray of shape (batch,)
            Indices of the batch's rows in the training dataset (and in
            ``targets_``).
        X : Tensor of shape (batch, n_features)
            The batch before perturbation.
        **fit_params : dict

        Returns
        -------
        terms : dict
            ``name -> (weight, value)``; the step minimizes ``sum weight *
            value`` and the history records each ``value`` under ``name``.
        """
        terms = {"sup_loss": (1.0, self.get_loss(logits, rows, X=X, training=True))}
        terms.update(self._consistency_term(logits, X, **fit_params))
        return terms

    def _consistency_term(self, logits, X, **fit_params):
        """The Mean Teacher term: the teacher sees its own draw of ``augment``."""
        mean_teacher = getattr(self, "mean_teacher_", None)
        if mean_teacher is None:
            return {}
        with torch.no_grad():
            teacher_logits = self.teacher_(self._perturb(X), **fit_params)
        proba = self._get_predict_nonlinearity()
        value = mean_teacher.consistency(proba(logits), proba(teacher_logits))
        weight = mean_teacher.weight_at(len(self.history) - 1)
        return {"consistency_loss": (weight, value)}

    def train_step_single(self, batch, **fit_params):
        """One step: perturb, forward once, sum the loss terms, back-propagate."""
        self._set_training(True)
        Xi, rows = unpack_data(batch)
        Xi = to_tensor(Xi, device=self.device)
        rows = np.asarray(rows.cpu() if torch.is_tensor(rows) else rows)
        x = self._perturb(Xi)
        if self._uses_embedding:
            logits, embedding = self.infer_with_embedding(x, **fit_params)
        else:
            logits, embedding = self.module_(x, **fit_params), None
        terms = self.get_loss_terms(logits, embedding, rows, Xi, **fit_params)
        loss = sum(weight * value for weight, value in terms.values())
        if not torch.isfinite(loss):
            raise ValueError(
                f"the training loss became {loss.item()} in epoch "
                f"{len(self.history)}: the features or the learning rate are too "
                f"large for the network. Standardize X (e.g. with "
                f"sklearn.preprocessing.StandardScaler) or lower lr={self.lr}."
            )
        loss.backward()
        for name, (_, value) in terms.items():
            self.history.record_batch(name, float(value.item()))
        return {"loss": loss, "y_pred": logits}

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        mean_teacher = getattr(self, "mean_teacher_", None)
        if training and mean_teacher is not None:
            mean_teacher.update(self.teacher_, self.module_)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Weighted mean of the per-row losses.

        During training ``y_true`` holds the batch's row indices into the
        training dataset, mapped to the targets and weights of ``targets_``;
        in validation it holds class indices (weight 1). The criterion step is
        skorch's (e.g. the log of the module's probabilities for ``NLLLoss``).
        """
        n_classes = len(self.classes_)
        if y_pred.ndim != 2 or y_pred.shape[1] != n_classes:
            raise ValueError(
                f"module returned output of shape {tuple(y_pred.shape)}, but logits "
                f"of shape (batch, {n_classes}) are needed, one per class in "
                "classes_; set module__n_classes or fix the module's head."
            )
        if training:
            rows = np.asarray(y_true.cpu() if torch.is_tensor(y_true) else y_true)
            _, target, weight = self.targets_.batch(rows, y_pred.device)
        else:
            target = to_tensor(y_true, device=y_pred.device).long()
            weight = torch.ones(target.shape[0], device=y_pred.device)
        losses = super().get_loss(y_pred, target, X=X, training=training)
        return weighted_mean(losses, weight)

    # --- prediction ----------------------------------------------------------------

    def predict_proba(self, X):
        """Class probabilities; columns follow ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        if not is_dataset(X):
            self.check_is_fitted()
            X = self._validate_X(X, reset=False)
        return super().predict_proba(X)

    def predict(self, X):
        """Most probable class of each row, as labels from ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def embed(self, X):
        """Features of the module's extractor, ``module_.embed`` (eval mode).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        V : ndarray of shape (n_samples, d)
        """
        self.check_is_fitted()
        return self._embed_rows(self._validate_X(X, reset=False))

    def _embed_rows(self, X):
        self._set_training(False)
        out = []
        with torch.no_grad():
            for lo in range(0, X.shape[0], _EMBED_CHUNK):
                xb = to_tensor(X[lo : lo + _EMBED_CHUNK], device=self.device)
                out.append(self.module_.embed(xb).float().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
