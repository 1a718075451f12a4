"""Compact clustering via label propagation (Kamnitsas et al., ICML 2018)."""

from __future__ import annotations

import inspect
import numbers
import warnings

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from skorch.classifier import NeuralNetClassifier

from .base import SemiSupervisedNet
from .data import SemiSupervisedBatchSampler
from .losses import cclp_loss
from .modules import MLPModule

__all__ = ["CCLPClassifier"]


class _PerClassBatchSampler(SemiSupervisedBatchSampler):
    """Batches with ``per_class`` labeled rows of every class plus unlabeled rows.

    Within a batch a class's rows are drawn without replacement when it has
    enough labeled rows, with replacement otherwise.
    """

    def __init__(
        self,
        y,
        *,
        per_class,
        batch_size_unlabeled,
        include_unlabeled=None,
        min_batches=1,
        random_state=None,
    ):
        y = np.asarray(y)
        present = np.unique(y[y >= 0])
        self.per_class = int(per_class)
        self._members = [np.flatnonzero(y == c) for c in present]
        n_labeled = self.per_class * len(present)
        super().__init__(
            y,
            batch_size=n_labeled + int(batch_size_unlabeled),
            batch_size_labeled=n_labeled,
            include_unlabeled=include_unlabeled,
            min_batches=min_batches,
            random_state=random_state,
        )

    def __len__(self):
        if self._n_unlabeled_per_batch() == 0 and self.unlabeled.size:
            one_pass = -(-self.labeled.size // self.batch_size_labeled)
            return max(one_pass, self.min_batches)
        return super().__len__()

    def __iter__(self):
        if self._n_unlabeled_per_batch() == 0 and self.unlabeled.size:
            # Supervised epochs: as many labeled draws as cover the labeled rows.
            for _ in range(len(self)):
                yield self._draw_labeled()
            return
        yield from super().__iter__()

    def _draw_labeled(self):
        parts = [
            self.rng.choice(m, size=self.per_class, replace=m.size < self.per_class)
            for m in self._members
        ]
        return np.concatenate(parts)


class CCLPClassifier(SemiSupervisedNet):
    """Semi-supervised network regularized by Compact Clustering via LP.

    Algorithm 1 of Kamnitsas et al. (2018). Every training step samples a
    labeled batch with ``labeled_per_class`` rows of each class and an
    unlabeled batch of ``batch_size_unlabeled`` rows, embeds both with the
    module's feature extractor, and minimizes

    ``L = L_sup + weight * L_CCLP``

    where ``L_sup`` is the cross-entropy of the labeled rows and ``L_CCLP``
    (:func:`skssl.deep.losses.cclp_loss`, eq. 9) builds a dense graph over the
    batch's embeddings, propagates the labels to the unlabeled rows in closed
    form, and pulls each class into a single compact cluster along Markov
    chains of up to ``steps`` transitions that stay within a class. The
    cross-entropy trains the head and the feature extractor; the CCLP term
    depends on the embeddings only, so it reaches the feature extractor alone.

    One epoch is one pass over the unlabeled rows.

    Parameters
    ----------
    module : torch module class or instance, default=MLPModule
        Network following the protocol of :mod:`skssl.deep.modules`; when it
        has a ``head`` attribute, logits are ``head(embed(x))`` (one pass). A
        module class with a ``normalize`` argument (the default modules) is
        built with ``normalize=False`` unless ``module__normalize`` says
        otherwise: the paper's graph uses raw embeddings.
    weight : float, default=0.1
        ``w``, the weight of the CCLP term. The paper used 1, and 0.1 on
        CIFAR-10 with 4,000 labels where 1 over-regularized; 0.1 was the more
        robust default on tabular data (1 pulled classes with several clusters
        into one and lost up to 13 points) and on MNIST-1D (0.913 against
        0.862, ``benchmarks/bench_tabular.py --evidence``).
    steps : int, default=3
        ``S``, the longest Markov chain; 3 to 6 worked best in the paper,
        above 10 the benefit fades.
    similarity : {"dot", "euclidean"}, default="euclidean"
        Similarity of the batch graph, ``A_ij = exp(rho(z_i, z_j))``: the
        dot product (the paper's choice) or the negative squared Euclidean
        distance. On tabular data the Euclidean graph gained 2.7 points over
        an MLP where the dot product gained 0.2, and lost 0.2 at worst instead
        of 5.2 (``benchmarks/bench_tabular.py --evidence``). On MNIST-1D
        sequences with ``lr=3e-3`` the dot product scored 0.927 / 0.943
        against 0.916 / 0.936 at 50 / 100 labels per class, but 0.701 ± 0.066
        against 0.723 ± 0.035 at 10 (``benchmarks/results/deep.md``).
    eps : float, default=1e-5
        Smoothing of the transition matrix.
    labeled_per_class : int, default=10
        Labeled rows of each class per batch (drawn with replacement, with a
        warning, for classes that have fewer labeled rows).
    batch_size_unlabeled : int, default=100
        Unlabeled rows per batch. 0 (or data without unlabeled rows) trains on
        the labeled rows alone, with a warning.
    lr : float, default=1e-3
        Adam's learning rate. For sequences with ``CNN1DModule`` pass
        ``lr=3e-3``, the rate of the other semi-supervised estimators: 30
        epochs at 1e-3 leave CCLP still climbing there, and on MNIST-1D
        3e-3 scored 0.723 / 0.916 / 0.936 against 0.643 / 0.883 / 0.915 at 10
        / 50 / 100 labels per class (``benchmarks/results/deep.md``), 0.688 /
        0.919 against 0.645 / 0.871 at 10 / 50 on a draw that benchmark does
        not use (2 seeds). On tabular rows with ``MLPModule`` keep the
        default: there 3e-3 lost 1.4 points on digits at 10 labels per class
        (same file), and on the sets the defaults were chosen on it moved the
        mean gain over scikit-learn's MLP by +0.1 only
        (``benchmarks/results/tabular.md``).
    max_epochs : int, default=30
        Epochs per ``fit`` (one pass over the unlabeled rows each).
    optimizer, random_state, device, callbacks, **kwargs
        As in :class:`~skssl.deep.SemiSupervisedNet`. ``batch_size`` only sets
        the prediction batch size: training batches are formed by
        ``labeled_per_class`` and ``batch_size_unlabeled``.

    Attributes
    ----------
    classes_, module_, history_, n_features_in_
        As in :class:`~skssl.deep.SemiSupervisedNet`. The history records the
        supervised and CCLP terms per batch and epoch as ``sup_loss`` and
        ``cclp_loss`` (``train_loss`` is their weighted sum).

    References
    ----------
    .. [1] K. Kamnitsas, D. C. Castro, L. Le Folgoc, I. Walker, R. Tanno,
       D. Rueckert, B. Glocker, A. Criminisi and A. Nori, "Semi-supervised
       learning via compact latent space clustering", ICML 2018.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skssl import CCLPClassifier
    >>> from skssl.datasets import mask_labels
    >>> X, y_true = make_blobs(200, centers=3, cluster_std=1.0, random_state=0)
    >>> y = mask_labels(y_true, per_class=3, random_state=0)
    >>> clf = CCLPClassifier(max_epochs=5, labeled_per_class=3, lr=0.01,
    ...                      batch_size_unlabeled=50, random_state=0).fit(X, y)
    >>> float(clf.score(X, y_true)) > 0.9
    True
    >>> bool(clf.history[-1, "cclp_loss"] > 0)
    True
    """

    _parameter_constraints = {
        **SemiSupervisedNet._parameter_constraints,
        "weight": [Interval(numbers.Real, 0, None, closed="left")],
        "steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "similarity": [StrOptions({"dot", "euclidean"})],
        "eps": [Interval(numbers.Real, 0, 1, closed="left")],
        "labeled_per_class": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size_unlabeled": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        module=MLPModule,
        *,
        weight=0.1,
        steps=3,
        similarity="euclidean",
        eps=1e-5,
        labeled_per_class=10,
        batch_size_unlabeled=100,
        lr=1e-3,
        max_epochs=30,
        **kwargs,
    ):
        super().__init__(module, lr=lr, max_epochs=max_epochs, **kwargs)
        self.weight = weight
        self.steps = steps
        self.similarity = similarity
        self.eps = eps
        self.labeled_per_class = labeled_per_class
        self.batch_size_unlabeled = batch_size_unlabeled

    _uses_embedding = True

    def _loss_term_names(self):
        return (*super()._loss_term_names(), "cclp_loss")

    def _data_dims(self, factory):
        dims = super()._data_dims(factory)
        # The batch graph is exp(z_i . z_j) over raw embeddings (paper eq. 2):
        # unit-norm embeddings would cap the logits at +-1 and flatten it, so a
        # module that offers normalization gets normalize=False unless the user
        # sets module__normalize.
        try:
            if "normalize" in inspect.signature(factory).parameters:
                dims["normalize"] = False
        except (TypeError, ValueError):
            pass
        return dims

    def _epoch_uses_unlabeled(self):
        return self.batch_size_unlabeled > 0

    def get_split_datasets(self, X, y=None, **fit_params):
        dataset_train, dataset_valid = super().get_split_datasets(X, y, **fit_params)
        labeled = dataset_train.y[dataset_train.y >= 0]
        counts = np.bincount(labeled, minlength=len(self.classes_))
        short = self.classes_[(counts > 0) & (counts < self.labeled_per_class)]
        if short.size:
            warnings.warn(
                f"classes {short.tolist()} have fewer than labeled_per_class="
                f"{self.labeled_per_class} labeled rows; their rows are drawn with "
                "replacement in each batch. Lower labeled_per_class to avoid "
                "repeating them.",
                UserWarning,
                stacklevel=2,
            )
        no_unlabeled = self.batch_size_unlabeled == 0 or not (dataset_train.y < 0).any()
        if no_unlabeled and self.unlabeled == "use":
            warnings.warn(
                "no unlabeled rows in the training batches (batch_size_unlabeled=0 "
                "or no -1 in y): CCLPClassifier trains on the labeled rows alone, "
                "without the CCLP term.",
                UserWarning,
                stacklevel=2,
            )
        return dataset_train, dataset_valid

    def get_batch_sampler(self, dataset):
        """Batches of ``labeled_per_class`` rows per class plus unlabeled rows."""
        return _PerClassBatchSampler(
            dataset.y,
            per_class=self.labeled_per_class,
            batch_size_unlabeled=self.batch_size_unlabeled,
            include_unlabeled=self._batches_carry_unlabeled,
            min_batches=self.min_batches_per_epoch,
            random_state=self._sampler_seed(),
        )

    def get_loss_terms(self, logits, embedding, rows, X, **fit_params):
        """Algorithm 1: ``L_sup`` over the labeled rows and ``weight * L_CCLP``."""
        given, _, _ = self.targets_.batch(rows, logits.device)
        labeled = given >= 0
        y_l = given[labeled]
        # skorch's criterion step, averaged over the labeled rows of the batch.
        sup = NeuralNetClassifier.get_loss(self, logits[labeled], y_l).mean()
        if (~labeled).any():
            cclp = cclp_loss(
                embedding[labeled],
                y_l,
                embedding[~labeled],
                len(self.classes_),
                steps=self.steps,
                similarity=self.similarity,
                eps=self.eps,
            )
        else:
            cclp = sup.new_zeros(())
        return {
            "sup_loss": (1.0, sup),
            "cclp_loss": (self.weight, cclp),
            **self._consistency_term(logits, X, **fit_params),
        }
