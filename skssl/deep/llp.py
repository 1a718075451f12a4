"""Local label propagation (Zhuang, Ding, Murli and Yamins, 2019)."""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from torch.nn import functional as F

from ..diffusion import certainty, clamp_labeled
from ..local_propagation import (
    density_count_correlation,
    local_label_propagation,
    update_memory_bank,
)
from .base import SemiSupervisedNet
from .losses import weighted_mean
from .modules import MLPModule

__all__ = ["LocalLabelPropagationClassifier", "aggregation_loss"]


def aggregation_loss(embedding, bank, bank_labels, labels, temperature):
    """Per-row aggregation loss ``L_A(v) = -log P(A | v)`` (eq. 1-2 of LLP).

    With the non-parametric softmax ``P(b_j | v) = exp(v^T b_j / tau) /
    sum_l exp(v^T b_l / tau)`` over the rows ``b`` of a memory bank and
    ``A`` the bank rows labeled like ``v``,

    ``L_A(v) = -log sum_{j: label_j = y} exp(v^T b_j / tau)
    + log sum_j exp(v^T b_j / tau)``,

    both sums by log-sum-exp. It pulls ``v`` towards the rows of its
    (pseudo-)class and away from the others. A row whose class has no row in
    the bank gets 0 (and no gradient).

    Parameters
    ----------
    embedding : Tensor of shape (batch, d)
        Unit embeddings of the batch (with gradients).
    bank : Tensor of shape (n_bank, d)
        Memory bank rows (no gradients).
    bank_labels : Tensor of shape (n_bank,), int
        Label or pseudo-label of each bank row.
    labels : Tensor of shape (batch,), int
        Label or pseudo-label ``y`` of each row of the batch.
    temperature : float
        ``tau``.

    Returns
    -------
    losses : Tensor of shape (batch,)

    Examples
    --------
    >>> import torch
    >>> from skssl.deep.llp import aggregation_loss
    >>> bank = torch.eye(2)
    >>> v = torch.tensor([[1.0, 0.0]])
    >>> loss = aggregation_loss(v, bank, torch.tensor([0, 1]), torch.tensor([0]), 1.0)
    >>> round(float(loss[0]), 4)   # -log(e / (e + 1))
    0.3133
    """
    logits = embedding @ bank.T / temperature
    n_classes = int(torch.maximum(bank_labels.max(), labels.max())) + 1
    has_class = torch.bincount(bank_labels, minlength=n_classes)[labels] > 0
    # One exp for both sums: the class sums of exp(logit - row max) are a
    # product with the one-hot bank labels (3x faster than two log-sum-exps
    # at 128 x 4,000). The max cancels; detached, it adds no gradient.
    top = logits.max(dim=1, keepdim=True).values.detach()
    exp = torch.exp(logits - top)
    class_sums = exp @ F.one_hot(bank_labels, n_classes).to(exp.dtype)
    same = class_sums.gather(1, labels[:, None]).squeeze(1)
    # A class sum below sqrt(tiny) (only for logit gaps beyond ~43 in float32,
    # e.g. temperature < 0.047 on unit vectors) is recomputed exactly: its
    # gradient 1 / sum would overflow. Rows of a class absent from the bank
    # get log 1 (their loss is set to 0 below, and log 0 would turn its zero
    # gradient into NaN).
    underflow = has_class & ~(same > torch.finfo(exp.dtype).tiny ** 0.5)
    log_same = torch.log(torch.where(has_class & ~underflow, same, 1.0)) + top[:, 0]
    if underflow.any():
        rows = torch.nonzero(underflow)[:, 0]
        other = bank_labels[None, :] != labels[rows, None]
        floor = torch.finfo(logits.dtype).min
        exact = torch.logsumexp(logits[rows].masked_fill(other, floor), dim=1)
        log_same = log_same.index_put((rows,), exact)
    losses = torch.log(class_sums.sum(dim=1)) + top[:, 0] - log_same
    return torch.where(has_class, losses, torch.zeros_like(losses))


class LocalLabelPropagationClassifier(SemiSupervisedNet):
    """Local label propagation: density-weighted kNN pseudo-labels and aggregation.

    The method of Zhuang et al. [1]_. The network gives each row a unit
    embedding ``v = normalize(module.embed(x))`` (the features its head
    reads, L2-normalized here whatever the module's ``normalize``) and logits
    ``head(embed(x))``. After ``n_warmup_epochs`` supervised epochs a memory
    bank holds one ``v`` per training row, filled from the network in eval
    mode and then moved after every step towards the batch's embeddings
    (``bank <- normalize(m bank + (1 - m) v)``, ``m = bank_momentum``).
    Every ``propagate_every`` epochs, from the bank
    (:func:`skssl.local_propagation.local_label_propagation`):

    1. each labeled row's density ``rho_i``, summed over its ``n_density``
       nearest unlabeled rows (eq. 4);
    2. for each unlabeled row, the ``n_voters`` labeled rows of highest
       ``v_i^T v / tau - log rho_i`` vote with weights ``exp`` of that score
       (eq. 5), giving ``p_j(v)``, the pseudo-label ``y = argmax_j p_j`` and
       its confidence ``c = p_y`` (1 on labeled rows).

    Each training row then contributes ``c [CE(y, y_hat) + w L_A(v)]`` with
    ``w = aggregation_weight`` and the aggregation loss ``L_A(v) = -log
    P(A | v)`` of eq. 1-2: the non-parametric softmax of ``v`` against the
    bank rows, summed over those labeled or pseudo-labeled ``y``
    (:func:`aggregation_loss`).

    Parameters
    ----------
    module : torch module class or instance, default=MLPModule
        Network following the module protocol (:mod:`skssl.deep.modules`);
        :class:`~skssl.deep.CNN1DModule` suits sequences such as MNIST-1D.
    n_voters : int, default=10
        ``K``, the labeled rows voting for each unlabeled row (the paper's
        10; all labeled rows when there are fewer).
    n_density : int, default=25
        ``T``, the unlabeled neighbours that make a labeled row's density (the
        paper's 25).
    temperature : float, default=0.07
        ``tau`` of the votes and of the aggregation loss (the paper's 0.07).
    bank_momentum : float, default=0.5
        Share of the old bank entry kept at each update, in [0, 1) (the
        paper's 0.5).
    density_weighting : bool, default=True
        Divide each vote by its voter's density; False is the paper's "NoDW".
    confidence_weighting : bool, default=True
        Weight each pseudo-labeled row's loss by its confidence ``c``; False
        gives every pseudo-labeled row weight 1 (the paper's "NoC").
    propagate_every : int, default=1
        Epochs between propagations (the paper: pseudo-labels of a batch
        after every step, densities every epoch).
    n_warmup_epochs : int, default=10
        Supervised epochs on the labeled rows before the bank is filled and
        the first propagation runs, so the first votes come from an embedding
        that already separates the labeled classes. On MNIST-1D (4,000
        training rows, :class:`~skssl.deep.CNN1DModule`, 30 epochs) test
        accuracy at 0 / 2 / 5 / 10 / 15 warm-up epochs was 0.733 / 0.746 /
        0.801 / 0.816 / 0.815 with 20 labels per class (the network on labels
        alone: 0.754); 10 also beat 5 with 10 labels per class (0.602 against
        0.579) and 50 (0.843 against 0.835).
    aggregation_weight : float, default=1.0
        Weight ``w`` of the aggregation loss (the paper's 1); 0 leaves only the
        cross-entropy on labels and pseudo-labels.
    aggregation_bank_size : int, default=20000
        Bank rows the aggregation loss compares each row against. With more
        training rows than this, each step draws that many rows of the bank
        uniformly (with replacement) as the background of both sums of
        ``L_A``, since the whole bank costs ``batch_size x n_rows x d`` per
        step; the two sums are then estimated with the same scale and their
        ratio stays consistent.
    lr : float, default=3e-3
        Adam's learning rate, DLP's rate and three times the base's 1e-3. On
        MNIST-1D with ``CNN1DModule`` at 50 labels per class (a draw the
        benchmark does not use, 2 seeds) LLP reached 0.957 at 3e-3 against
        0.929 at 1e-3, and its gain over the same network on the labeled rows
        grew from +3.1 to +4.6 points; on the tabular sets of
        ``benchmarks/bench_tabular.py`` (3 label draws, 5/10/20 labels per
        class) the mean accuracy moved by -0.1 points (worst cell: iris at 10
        labels per class, -4.4). Its supervised reference
        (``unlabeled="ignore"``) trains at the same rate.
    max_epochs : int, default=30
        Epochs per ``fit``, warm-up included.
    **kwargs
        Every other parameter of :class:`~skssl.deep.SemiSupervisedNet` and of
        :class:`skorch.NeuralNet` (``batch_size``, ``augment``,
        ``unlabeled``, ``device``, ``random_state``, ``module__*`` ...).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, -1 excluded.
    transduction_ : ndarray of shape (n_samples,)
        Label of every row of ``X`` after the last propagation: the given label
        on labeled rows, the winner of the vote on unlabeled rows. Set once a
        propagation has run.
    label_distributions_ : ndarray of shape (n_samples, n_classes)
        The votes ``p_j(v)``; a labeled row's distribution is its label.
    certainty_ : ndarray of shape (n_samples,)
        ``1 - H(p) / log C`` of ``label_distributions_``, in [0, 1]: 1 on
        labeled rows, 0 for a tied vote over all classes.
    pseudo_label_weights_ : ndarray of shape (n_samples,)
        Loss weight of each row: the confidence ``c = max_j p_j(v)`` of an
        unlabeled row (1 with ``confidence_weighting=False``), 1 on labeled
        rows, 0 on rows ``train_split`` held out.
    density_ : ndarray of shape (n_samples,)
        ``log(Z rho_i)`` of each labeled training row at the last propagation
        (:func:`skssl.local_propagation.labeled_density`); NaN on the other
        rows.
    bank_ : ndarray of shape (n_train, d), float32
        The memory bank, one unit embedding per training row (the rows of
        ``X`` unless ``train_split`` holds some out). Pickled with the
        estimator; ``save_params`` does not save it (prediction does not
        need it).
    history_ : skorch.History
        Besides skorch's entries: ``sup_loss`` (the weighted cross-entropy)
        and ``agg_loss`` (the weighted aggregation loss) per batch and epoch;
        each propagation epoch records ``pseudo_label_certainty`` (mean
        certainty of the unlabeled rows), ``pseudo_label_counts``
        (``|L_j| + |U_j|`` per class), ``density_count_corr`` (Pearson
        correlation between each class's mean labeled density and its number
        of pseudo-labeled rows, the paper's Fig. 3; NaN when undefined) and
        ``propagation_dur`` (seconds; the first one of a fit also fills the
        bank; the epoch's ``dur`` excludes it).

    Warns
    -----
    UserWarning
        Once per fit, when training rows have an all-zero embedding (e.g.
        every ReLU of the last hidden layer is off): they are equally similar
        to every labeled row, so only the densities decide their votes.

    See Also
    --------
    skssl.local_propagation.local_label_propagation : the propagation on
        embeddings a user already has.
    skssl.DeepLabelPropagationClassifier : pseudo-labels from a diffusion over
        a kNN graph of all rows.
    skssl.deep.SemiSupervisedNet : the same network on the labeled rows only
        (or ``unlabeled="ignore"``).

    References
    ----------
    .. [1] C. Zhuang, X. Ding, D. Murli and D. Yamins, "Local label
       propagation for large-scale semi-supervised learning",
       arXiv:1905.11581, 2019.
    .. [2] Z. Wu, Y. Xiong, S. X. Yu and D. Lin, "Unsupervised feature
       learning via non-parametric instance discrimination", CVPR 2018.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skssl import LocalLabelPropagationClassifier
    >>> from skssl.datasets import mask_labels
    >>> X, y_true = make_blobs(300, centers=3, random_state=0)
    >>> y = mask_labels(y_true, per_class=3, random_state=0)
    >>> clf = LocalLabelPropagationClassifier(
    ...     n_warmup_epochs=1, max_epochs=4, random_state=0).fit(X, y)
    >>> float(clf.score(X, y_true)) > 0.9
    True
    >>> clf.transduction_.shape, clf.bank_.shape, "agg_loss" in clf.history[-1]
    ((300,), (300, 256), True)
    """

    _keys_not_printed = (*SemiSupervisedNet._keys_not_printed, "pseudo_label_counts")

    _parameter_constraints = {
        **SemiSupervisedNet._parameter_constraints,
        "n_voters": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_density": [Interval(numbers.Integral, 1, None, closed="left")],
        "temperature": [Interval(numbers.Real, 0, None, closed="neither")],
        "bank_momentum": [Interval(numbers.Real, 0, 1, closed="left")],
        "density_weighting": ["boolean"],
        "confidence_weighting": ["boolean"],
        "propagate_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_warmup_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "aggregation_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "aggregation_bank_size": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        module=MLPModule,
        *,
        n_voters=10,
        n_density=25,
        temperature=0.07,
        bank_momentum=0.5,
        density_weighting=True,
        confidence_weighting=True,
        propagate_every=1,
        n_warmup_epochs=10,
        aggregation_weight=1.0,
        aggregation_bank_size=20000,
        lr=3e-3,
        max_epochs=30,
        **kwargs,
    ):
        super().__init__(module, lr=lr, max_epochs=max_epochs, **kwargs)
        self.n_voters = n_voters
        self.n_density = n_density
        self.temperature = temperature
        self.bank_momentum = bank_momentum
        self.density_weighting = density_weighting
        self.confidence_weighting = confidence_weighting
        self.propagate_every = propagate_every
        self.n_warmup_epochs = n_warmup_epochs
        self.aggregation_weight = aggregation_weight
        self.aggregation_bank_size = aggregation_bank_size

    def _loss_term_names(self):
        return (*super()._loss_term_names(), "agg_loss")

    def _epoch_uses_unlabeled(self):
        return len(self.history) > self.n_warmup_epochs

    @property
    def _uses_embedding(self):
        # Embeddings feed the bank and the aggregation loss once the bank holds
        # current pseudo-labels.
        return self.unlabeled == "use" and not getattr(
            self, "_pseudo_labels_stale_", True
        )

    def get_split_datasets(self, X, y=None, **fit_params):
        dataset_train, dataset_valid = super().get_split_datasets(X, y, **fit_params)
        # The targets were just reset to the given labels (and the rows may be
        # new): refill the bank and propagate at the next LLP epoch.
        self._pseudo_labels_stale_ = True
        return dataset_train, dataset_valid

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        if self._propagation_due(dataset_train, self.propagate_every):
            self._propagate(dataset_train)

    def _propagate(self, dataset):
        """Bank -> densities and votes -> pseudo-labels and confidences."""
        start = time.perf_counter()
        if self._pseudo_labels_stale_:
            # The bank starts from the network in eval mode (no dropout, no
            # augment); momentum 0 stores the normalized embeddings.
            V = self._embed_rows(dataset.X)
            self.bank_ = update_memory_bank(
                np.zeros_like(V), np.arange(V.shape[0]), V, momentum=0.0
            )
            self._warn_zero_embeddings()
        y = dataset.y
        n_classes = len(self.classes_)
        P, log_density = local_label_propagation(
            self.bank_,
            y,
            n_voters=self.n_voters,
            n_density=self.n_density,
            temperature=self.temperature,
            density_weighting=self.density_weighting,
            n_classes=n_classes,
        )
        labeled = y >= 0
        labels = P.argmax(axis=1)
        confidence = P.max(axis=1)
        weights = confidence if self.confidence_weighting else np.ones_like(confidence)
        duration = time.perf_counter() - start

        store = self.targets_
        store.update(labels, weights)
        P_all = clamp_labeled(store.to_all_rows(P, 0.0), store.y)
        density = np.full(store.y.shape[0], np.nan)
        density[store.rows[labeled]] = log_density
        self._pseudo_labels_stale_ = False
        self.label_distributions_ = P_all
        self.transduction_ = self.classes_[P_all.argmax(axis=1)]
        self.certainty_ = certainty(P_all)
        self.pseudo_label_weights_ = store.to_all_rows(weights, 0.0)
        self.density_ = density
        pseudo_counts = np.bincount(labels[~labeled], minlength=n_classes)
        self.history.record(
            "pseudo_label_certainty", float(certainty(P[~labeled]).mean())
        )
        self.history.record(
            "pseudo_label_counts", np.bincount(labels, minlength=n_classes).tolist()
        )
        self.history.record(
            "density_count_corr",
            density_count_correlation(log_density, y[labeled], pseudo_counts),
        )
        self.history.record("propagation_dur", duration)

    def _warn_zero_embeddings(self):
        n_zero = int(np.count_nonzero(~self.bank_.any(axis=1)))
        if n_zero:
            warnings.warn(
                f"{n_zero} of {self.bank_.shape[0]} training rows have an all-zero "
                "embedding (e.g. every ReLU of the module's last hidden layer is "
                "off), so they are equally similar to every labeled row and only "
                "the densities decide their pseudo-labels. Lower lr, add "
                "n_warmup_epochs, or change the module.",
                UserWarning,
                stacklevel=3,
            )

    def get_loss_terms(self, logits, embedding, rows, X, **fit_params):
        """Weighted cross-entropy and, once propagated, the aggregation loss."""
        terms = super().get_loss_terms(logits, embedding, rows, X, **fit_params)
        if embedding is None:
            return terms
        v = F.normalize(embedding, dim=1)
        # Applied in on_batch_end, after the optimizer step: on the CPU the
        # bank tensor below shares memory with bank_, and the backward pass
        # still needs it.
        self._bank_update_ = (rows, v.detach())
        if self.aggregation_weight > 0:
            _, target, weight = self.targets_.batch(rows, v.device)
            bank, bank_labels = self._aggregation_background(v.device)
            losses = aggregation_loss(v, bank, bank_labels, target, self.temperature)
            terms["agg_loss"] = (self.aggregation_weight, weighted_mean(losses, weight))
        return terms

    def _aggregation_background(self, device):
        """Bank rows and their labels that both sums of ``L_A`` run over."""
        n_rows = self.bank_.shape[0]
        if n_rows <= self.aggregation_bank_size:
            rows = slice(None)
        else:
            # torch's stream: random_state fixes the draws.
            rows = torch.randint(n_rows, (self.aggregation_bank_size,)).numpy()
        bank = torch.as_tensor(self.bank_[rows], device=device)
        labels = torch.as_tensor(self.targets_.target[rows], device=device)
        return bank, labels

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        super().on_batch_end(net, batch=batch, training=training, **kwargs)
        pending = vars(self).pop("_bank_update_", None)
        if training and pending is not None:
            rows, v = pending
            update_memory_bank(
                self.bank_, rows, v.float().cpu().numpy(), self.bank_momentum
            )
