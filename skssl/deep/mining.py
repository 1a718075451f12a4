"""Unsupervised fine-tuning on pairs mined on manifolds (Iscen et al., CVPR 2018).

:class:`ManifoldMiningEmbedder` is a scikit-learn transformer on skorch. It
subclasses :class:`skorch.NeuralNet` directly rather than
:class:`~skssl.deep.SemiSupervisedNet`: it takes no labels at all, has no
classes, no classifier head and no ``predict``, and its training items are
triplets of rows that change every epoch, not rows with targets, so none of
the base's label handling, batch sampler or target store applies. It hooks into
skorch at documented points only:

- ``initialize_module`` wraps the network (a class built from the data, or a
  copy of a given, e.g. pre-trained, instance) with a linear projection to
  ``n_components`` dimensions and L2 normalization;
- ``initialize_criterion`` builds :class:`TripletLoss` with ``margin``;
- ``get_split_datasets`` wraps the rows in a dataset of triplets;
- ``on_epoch_begin`` re-mines the pairs with
  :meth:`skssl.ManifoldRanking.mine_pairs` every ``mine_every`` epochs
  on the current embeddings and draws the epoch's triplets;
- ``infer`` embeds stacked (anchor, positive, negative) rows in one pass.
"""

from __future__ import annotations

import copy
import numbers
import time
import warnings

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import validate_data
from skorch import NeuralNet
from skorch.callbacks import EpochTimer, PassthroughScoring, PrintLog
from skorch.utils import to_tensor
from torch import nn
from torch.nn import functional as F

from .._validation import restore_on_failure
from ..graph import BACKENDS
from ..ranking import ManifoldRanking
from .base import _EMBED_CHUNK, AutoDeviceMixin, _numeric_X
from .losses import triplet_loss
from .modules import MLPModule

__all__ = ["ManifoldMiningEmbedder", "TripletLoss"]

# Negatives of a triplet are drawn from this many hardest (Euclidean nearest)
# negatives of the anchor's pool, as in the released training code.
_HARD_NEGATIVES = 10


class TripletLoss(nn.Module):
    """The criterion of :class:`ManifoldMiningEmbedder`, a weighted triplet loss.

    Embeddings stacked as (anchor, positive, negative) go to
    :func:`~skssl.deep.losses.triplet_loss`.

    Parameters
    ----------
    margin : float, default=0.5

    Examples
    --------
    >>> import torch
    >>> from skssl.deep.mining import TripletLoss
    >>> Z = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    >>> float(TripletLoss()(Z, torch.ones(1)))
    0.0
    """

    def __init__(self, margin=0.5):
        super().__init__()
        self.margin = margin

    def forward(self, embeddings, weight):
        """Loss of triplets stacked as ``embeddings[:, 0 | 1 | 2]`` = a, p, n."""
        return triplet_loss(
            embeddings[:, 0],
            embeddings[:, 1],
            embeddings[:, 2],
            weight.to(embeddings.dtype),
            margin=self.margin,
        )


class _EmbeddingNetwork(nn.Module):
    """``normalize(projection(network.embed(x)))``: what the embedder trains."""

    def __init__(self, network, n_inputs, n_components):
        super().__init__()
        self.network = network
        self.projection = (
            nn.Linear(n_inputs, n_components) if n_components is not None else None
        )

    def forward(self, x):
        v = self.network.embed(x)
        if self.projection is not None:
            v = self.projection(v)
        return F.normalize(v, dim=1)


class _TripletDataset(torch.utils.data.Dataset):
    """Item ``i`` is ``(X[[a_i, p_i, n_i]], w_i)``; the triplets change per epoch."""

    def __init__(self, X):
        self.X = X
        self.triplets = np.zeros((0, 3), dtype=np.int64)
        self.weights = np.zeros(0, dtype=np.float32)

    def __len__(self):
        return len(self.triplets)

    def __getitem__(self, i):
        return self.X[self.triplets[i]], self.weights[i]


def _draw_triplets(pairs, n_triplets, rng):
    """Random triplets from mined pools, with their weights (mean 1).

    An anchor is drawn uniformly among those with a positive and a negative,
    its positive uniformly from its pool and its negative from the
    ``_HARD_NEGATIVES`` Euclidean nearest of its pool, as in the released
    code. The weight is the positive's manifold score over the mean score of
    all pooled positives: the released code's relative weights, in a scale
    that leaves the learning rate its meaning.
    """
    n_pos = (pairs.positives >= 0).sum(axis=1)
    n_neg = np.minimum((pairs.negatives >= 0).sum(axis=1), _HARD_NEGATIVES)
    usable = np.flatnonzero((n_pos > 0) & (n_neg > 0))
    if usable.size == 0:
        return None
    rows = usable[rng.integers(usable.size, size=n_triplets)]
    p = (rng.random(n_triplets) * n_pos[rows]).astype(np.int64)
    q = (rng.random(n_triplets) * n_neg[rows]).astype(np.int64)
    triplets = np.stack(
        [pairs.anchors[rows], pairs.positives[rows, p], pairs.negatives[rows, q]],
        axis=1,
    )
    pooled = pairs.positive_scores[pairs.positives >= 0]
    scale = pooled.mean() if pooled.size and pooled.mean() > 0 else 1.0
    weights = (pairs.positive_scores[rows, p] / scale).astype(np.float32)
    return triplets, weights, usable.size


class ManifoldMiningEmbedder(
    ClassNamePrefixFeaturesOutMixin, TransformerMixin, AutoDeviceMixin, NeuralNet
):
    """Fine-tune an embedding network on pairs mined on its own manifold, no labels.

    Mining on manifolds (Iscen et al. 2018): the network's unit embeddings of
    all rows form a reciprocal kNN graph (:class:`~skssl.ManifoldRanking`,
    power kernel, diffusion by conjugate gradient); for each anchor, rows that
    the diffusion ranks high but that are not Euclidean neighbours are hard
    positives, and Euclidean neighbours the diffusion ranks low are hard
    negatives (:meth:`~skssl.ManifoldRanking.mine_pairs`). The network
    is trained with the triplet loss

    .. math::

        w_p \\, [m + \\lVert z_a - z_p \\rVert^2 - \\lVert z_a - z_n \\rVert^2]_+

    on unit embeddings ``z``, weighted by the positive's manifold score
    ``w_p``. Pairs are mined again on the current embeddings every
    ``mine_every`` epochs. ``transform`` returns the fine-tuned embeddings.

    The network follows the module protocol of :mod:`skssl.deep.modules` (an
    ``embed(x)`` method; its classifier head is not used). A class is built
    from the data; an instance, e.g. the ``module_`` of a fitted deep
    estimator, is copied and fine-tuned, the original left as it is. A linear
    layer to ``n_components`` dimensions is added on top, as in the released
    code. The fine-tuned network is ``module_.network``.

    Parameters
    ----------
    module : torch module class or instance, default=MLPModule
        Network with ``embed(x)``. A class gets ``n_features`` from the data
        (and ``n_classes=1``, its head being unused) unless ``module__*`` sets
        them, and standardizes its input from ``X``; an instance keeps its own
        input statistics.
    n_components : int or None, default=64
        Dimension of the projected embedding (64 in the released code); None
        uses the network's embedding, normalized, without projection.
    margin : float, default=0.5
        Margin of the triplet loss.
    n_neighbors : int, default=30
        Neighbours per row in the mining graph (30 in the released code).
    alpha : float, default=0.99
        Diffusion strength of the manifold scores.
    gamma : float, default=3.0
        Exponent of the similarities ``[z_i^T z_j]_+^gamma``.
    max_iter : int, default=20
        Conjugate-gradient iterations per block of anchors.
    k_euclidean : int, default=20
        Euclidean neighbourhood ``E`` of an anchor: positives lie outside it,
        negatives inside.
    k_manifold : int, default=100
        Manifold neighbourhood ``M`` of an anchor: positives lie inside it,
        negatives outside. The released code takes k = 50 for both (100 for
        the negatives of fine-grained data). A small ``E`` in a large ``M``
        keeps far fewer rows of the anchor's class among the negatives: on
        digits (1,400 training rows, an MLP pre-trained on 5 labels per
        class) (20, 100) raised the test NMI of the embeddings from 0.74 to
        0.84 where (50, 50) reached 0.80 (``benchmarks/bench_ranking.py
        --mining``).
    n_positives : int, default=50
        Largest pool of positives per anchor.
    n_negatives : int, default=10
        Pool of negatives per anchor: its Euclidean nearest hard negatives,
        from which the released code draws.
    n_anchors : int or None, default=None
        Anchors per mining, drawn at random; None uses every row.
    mine_every : int, default=5
        Epochs between two minings (the first epoch always mines).
    triplets_per_epoch : int or None, default=None
        Triplets drawn per epoch; None draws one per row.
    backend : {"auto", "exact", "hnsw", "ivf", "gpu"}, default="auto"
        kNN search of the mining graph.
    criterion : torch loss class or instance, default=TripletLoss
        Loss of stacked (anchor, positive, negative) embeddings, shape
        (batch, 3, d), and the triplets' weights. The class
        :class:`TripletLoss` is built with ``margin`` (unless
        ``criterion__margin`` is set).
    optimizer : torch optimizer class, default=torch.optim.Adam
    lr : float, default=1e-4
        Learning rate; small, since the network is being fine-tuned.
    max_epochs : int, default=10
    batch_size : int, default=64
        Triplets per batch (three rows each), and rows per ``transform`` batch.
    callbacks : list of (name, callback) or None, default=None
        skorch callbacks besides the defaults.
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        ``"auto"`` uses CUDA when torch sees a GPU.
    random_state : int, RandomState instance or None, default=None
        Seeds the projection, the network (when built from a class), the
        anchors and the triplets, so two CPU fits with the same int agree.
    verbose : int, default=0
        Print skorch's epoch table when positive.
    **kwargs
        Any other :class:`skorch.NeuralNet` argument, e.g. ``module__hidden``,
        ``optimizer__weight_decay``, ``warm_start``.

    Attributes
    ----------
    module_ : torch.nn.Module
        The network with its projection; ``module_.network`` is the
        fine-tuned network.
    pairs_ : skssl.ranking.MinedPairs
        The pairs of the last mining.
    n_features_in_ : int
        Number of features seen during fit.
    history_ : skorch.History
        Per epoch: ``train_loss``, and when the epoch mined, ``mined_anchors``
        (anchors with a positive and a negative) and ``mine_seconds``.

    See Also
    --------
    skssl.ManifoldRanking : diffusion ranking and the mining itself.

    References
    ----------
    .. [1] A. Iscen, G. Tolias, Y. Avrithis and O. Chum, "Mining on manifolds:
       metric learning without labels", CVPR 2018.

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from skssl.deep.mining import ManifoldMiningEmbedder
    >>> X, _ = make_moons(200, noise=0.05, random_state=0)
    >>> embedder = ManifoldMiningEmbedder(n_components=8, n_neighbors=10,
    ...                                   k_euclidean=10, k_manifold=20,
    ...                                   max_epochs=2, random_state=0)
    >>> embedder.fit_transform(X).shape
    (200, 8)
    """

    _parameter_constraints = {
        "n_components": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "margin": [Interval(numbers.Real, 0, None, closed="left")],
        "n_neighbors": [Interval(numbers.Integral, 1, None, closed="left")],
        "alpha": [Interval(numbers.Real, 0, 1, closed="left")],
        "gamma": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "k_euclidean": [Interval(numbers.Integral, 1, None, closed="left")],
        "k_manifold": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_positives": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_negatives": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_anchors": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "mine_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "triplets_per_epoch": [
            Interval(numbers.Integral, 1, None, closed="left"),
            None,
        ],
        "backend": [StrOptions(set(BACKENDS) - {"sklearn"})],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        module=MLPModule,
        *,
        n_components=64,
        margin=0.5,
        n_neighbors=30,
        alpha=0.99,
        gamma=3.0,
        max_iter=20,
        k_euclidean=20,
        k_manifold=100,
        n_positives=50,
        n_negatives=10,
        n_anchors=None,
        mine_every=5,
        triplets_per_epoch=None,
        backend="auto",
        criterion=TripletLoss,
        optimizer=torch.optim.Adam,
        lr=1e-4,
        max_epochs=10,
        batch_size=64,
        callbacks=None,
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
            train_split=None,
            callbacks=callbacks,
            device=device,
            verbose=verbose,
            **kwargs,
        )
        self.n_components = n_components
        self.margin = margin
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.gamma = gamma
        self.max_iter = max_iter
        self.k_euclidean = k_euclidean
        self.k_manifold = k_manifold
        self.n_positives = n_positives
        self.n_negatives = n_negatives
        self.n_anchors = n_anchors
        self.mine_every = mine_every
        self.triplets_per_epoch = triplets_per_epoch
        self.backend = backend
        self.random_state = random_state

    def get_params(self, deep=True, **kwargs):
        params = super().get_params(deep=deep, **kwargs)
        # Every row trains: no held-out part has a triplet loss to score.
        params.pop("train_split", None)
        return params

    # A transformer: skorch's prediction methods would only return embeddings.
    @property
    def predict(self):
        raise AttributeError(
            "ManifoldMiningEmbedder is a transformer; use transform(X) for the "
            "embeddings."
        )

    @property
    def predict_proba(self):
        raise AttributeError(
            "ManifoldMiningEmbedder is a transformer; use transform(X) for the "
            "embeddings."
        )

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("print_log", PrintLog()),
        ]

    # --- initialization ---------------------------------------------------------

    def initialize_module(self):
        """The network (built, or a copy of the given one) plus its projection."""
        kwargs = self.get_params_for("module")
        module = self.module
        if isinstance(module, nn.Module) and not kwargs:
            # Fine-tuning must not change the caller's (pre-trained) network.
            network = copy.deepcopy(module)
        else:
            factory = type(module) if isinstance(module, nn.Module) else module
            dims = {}
            if hasattr(self, "n_features_in_"):
                dims = {"n_features": int(self.n_features_in_), "n_classes": 1}
            network = factory(**{**dims, **kwargs})
        if not callable(getattr(network, "embed", None)):
            raise TypeError(
                f"module={type(network).__name__} has no embed(x) method; the "
                "embedder fine-tunes the features a network returns from "
                "embed(x) (see skssl.deep.MLPModule)."
            )
        n_inputs = None
        if self.n_components is not None:
            n_inputs = self._embedding_width(network)
        self.module_ = _EmbeddingNetwork(network, n_inputs, self.n_components)
        return self

    def _embedding_width(self, network):
        if not hasattr(self, "n_features_in_"):
            raise ValueError(
                "the projection's input width comes from the data: fit the "
                "embedder, or set n_components=None."
            )
        parameter = next(network.parameters(), None)
        device = parameter.device if parameter is not None else "cpu"
        was_training = network.training
        network.eval()
        with torch.no_grad():
            x = torch.zeros(1, self.n_features_in_, device=device)
            width = network.embed(x).shape[1]
        network.train(was_training)
        return int(width)

    def initialize_criterion(self):
        """The criterion; :class:`TripletLoss` gets the estimator's ``margin``."""
        kwargs = self.get_params_for("criterion")
        criterion = self.criterion
        if isinstance(criterion, type) and issubclass(criterion, TripletLoss):
            kwargs = {"margin": self.margin, **kwargs}
        self.criterion_ = self.initialized_instance(criterion, kwargs)
        return self

    # --- fitting ------------------------------------------------------------------

    def fit(self, X, y=None, **fit_params):
        """Initialize (unless ``warm_start``) and fine-tune for ``max_epochs``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to mine pairs from and train on; no labels.
        y : None
            Ignored; present for API consistency.
        **fit_params : dict
            Passed to skorch.

        Returns
        -------
        self : ManifoldMiningEmbedder
        """
        fresh = not self.initialized_ or not self.warm_start
        with restore_on_failure(self):
            self._check_params()
            X = self._validate_X(X, reset=fresh)
            self._check_sizes(X.shape[0])
        try:
            with self._seeded():
                if fresh:
                    validated = {
                        k: vars(self)[k]
                        for k in ("n_features_in_", "feature_names_in_")
                        if k in vars(self)
                    }
                    self._forget_fit()
                    vars(self).update(validated)
                    self.initialize()
                    standardize_from = getattr(
                        self.module_.network, "standardize_from", None
                    )
                    if callable(standardize_from) and not isinstance(
                        self.module, nn.Module
                    ):
                        standardize_from(X)
                NeuralNet.partial_fit(self, X, None, **fit_params)
        except Exception:
            self._forget_fit()
            raise
        return self

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Fine-tune for ``max_epochs`` more epochs without re-initializing."""
        warm_start = self.warm_start
        self.warm_start = True
        try:
            return self.fit(X, y, **fit_params)
        finally:
            self.warm_start = warm_start

    def _check_params(self):
        params = {name: getattr(self, name) for name in self._parameter_constraints}
        validate_parameter_constraints(
            self._parameter_constraints, params, caller_name=type(self).__name__
        )

    def _check_sizes(self, n):
        for name in ("n_neighbors", "k_euclidean", "k_manifold"):
            value = getattr(self, name)
            if value >= n:
                raise ValueError(
                    f"{name}={value} must be smaller than the {n} rows of X; lower "
                    f"{name} or pass more rows."
                )

    def _forget_fit(self):
        """Drop what a fit created, so a failed fit leaves nothing fitted."""
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
            return validate_data(
                self, X, reset=reset, dtype=np.float32, ensure_min_samples=2
            )

    def check_data(self, X, y):
        """X is validated in ``fit``; nothing to do."""

    def get_split_datasets(self, X, y=None, **fit_params):
        """All rows train; the dataset's items are the epoch's triplets."""
        return _TripletDataset(X), None

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        # Drawn from torch's (seeded) stream: random_state fixes them too.
        rng = np.random.default_rng(int(torch.randint(2**31 - 1, ()).item()))
        X = dataset_train.X
        epoch = len(self.history) - 1
        if getattr(self, "pairs_", None) is None or epoch % self.mine_every == 0:
            self._mine(X, rng)
        n_triplets = self.triplets_per_epoch or X.shape[0]
        drawn = _draw_triplets(self.pairs_, n_triplets, rng)
        if drawn is None:
            drawn = np.zeros((0, 3), dtype=np.int64), np.zeros(0, np.float32), 0
        dataset_train.triplets, dataset_train.weights, _ = drawn

    def _mine(self, X, rng):
        """Mine the pools on the current embeddings (keeps the last ones if empty)."""
        start = time.perf_counter()
        n = X.shape[0]
        anchors = None
        if self.n_anchors is not None and self.n_anchors < n:
            anchors = np.sort(rng.choice(n, size=self.n_anchors, replace=False))
        ranking = ManifoldRanking(
            self.n_neighbors,
            alpha=self.alpha,
            gamma=self.gamma,
            max_iter=self.max_iter,
            backend=self.backend,
        ).fit(self._embed_rows(X))
        pairs = ranking.mine_pairs(
            anchors,
            n_positives=self.n_positives,
            n_negatives=self.n_negatives,
            k_euclidean=self.k_euclidean,
            k_manifold=self.k_manifold,
        )
        drawn = _draw_triplets(pairs, 1, rng)
        usable = 0 if drawn is None else drawn[2]
        self.history.record("mined_anchors", usable)
        self.history.record("mine_seconds", time.perf_counter() - start)
        if usable == 0:
            keep = getattr(self, "pairs_", None) is not None
            warnings.warn(
                "mining found no anchor with both a hard positive and a hard "
                "negative (the manifold and Euclidean neighbourhoods agree), so "
                + (
                    "training goes on with the previous pairs. "
                    if keep
                    else "this epoch does not train. "
                )
                + f"Raise k_manifold={self.k_manifold} above k_euclidean="
                f"{self.k_euclidean}, or n_neighbors={self.n_neighbors}.",
                UserWarning,
                stacklevel=2,
            )
            if keep:
                return
        self.pairs_ = pairs

    # --- embeddings -----------------------------------------------------------------

    def infer(self, x, **fit_params):
        """Unit embeddings of a batch; stacked triplets (batch, 3, d) in one pass."""
        x = to_tensor(x, device=self.device)
        if x.ndim == 3:
            b, k, d = x.shape
            return self.module_(x.reshape(b * k, d), **fit_params).reshape(b, k, -1)
        return self.module_(x, **fit_params)

    def _embed_rows(self, X):
        self._set_training(False)
        out = []
        with torch.no_grad():
            for lo in range(0, X.shape[0], _EMBED_CHUNK):
                xb = to_tensor(X[lo : lo + _EMBED_CHUNK], device=self.device)
                out.append(self.module_(xb).float().cpu())
        return torch.cat(out).numpy()

    def transform(self, X):
        """The fine-tuned unit embeddings of the rows of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components), float32
            Unit vectors (the network's embedding width when
            ``n_components=None``).
        """
        self.check_is_fitted()
        with _numeric_X():
            X = validate_data(self, X, reset=False, dtype=np.float32)
        return self._embed_rows(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # torch computes in float32, whatever the input.
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    @property
    def _n_features_out(self):
        """Width of the embeddings (feature names for ``get_feature_names_out``)."""
        self.check_is_fitted()
        projection = self.module_.projection
        if projection is not None:
            return projection.out_features
        return self._embedding_width(self.module_.network)
