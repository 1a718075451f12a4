"""Mean Teacher with local clustering (Chen et al., ICPR 2020)."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from .augment import GaussianNoise
from .base import SemiSupervisedNet
from .losses import local_clustering_loss
from .modules import MLPModule
from .teacher import CONSISTENCY_LOSSES, MeanTeacher, ramped_weight

__all__ = ["MeanTeacherClassifier"]

# A spread (median pair distance of the embeddings) below this share of its
# value when local clustering started is reported as a collapse.
_COLLAPSE_RATIO = 0.1


class MeanTeacherClassifier(SemiSupervisedNet):
    """Mean Teacher, optionally with the local clustering loss.

    A student network is trained on the labeled rows (cross-entropy) and on a
    consistency loss that pulls its class probabilities on one perturbed copy
    of each batch towards those of a teacher on another; the teacher's weights
    are an exponential moving average (EMA) of the student's [1]_. With
    ``local_clustering=True`` a third term [2]_ pulls together the student's
    embeddings of neighbouring labeled-unlabeled and unlabeled-unlabeled
    pairs of each batch, against the confirmation bias of the teacher::

        L = L_ce + lambda_1(t) L_cons + lambda_2(t) L_lc
        w_ij = exp(-D_ij / eps) if D_ij <= eps else 0
        L_lc = mean_{i in L, j in U} w_ij D_ij + mean_{m != n in U} w_mn D_mn

    where ``D_ij`` is the mean squared difference per dimension of the two
    embeddings (see :func:`skssl.deep.losses.local_clustering_loss`). Both
    weights ramp up as ``exp(-5 (1 - x)^2)``; local clustering starts after a
    Mean Teacher phase, as in the paper.

    Predictions come from the teacher by default. The perturbation is the
    ``augment`` hook: ``"auto"`` is the module's suggestion (a shift for
    :class:`~skssl.deep.CNN1DModule`), or ``GaussianNoise(0.1)`` in
    standardized units when the module suggests none (a Mean Teacher needs the
    two copies to differ).

    Parameters
    ----------
    module : torch module class or instance, default=MLPModule
        Network following the module protocol (:mod:`skssl.deep.modules`).
    consistency_weight : float, default=1.0
        ``lambda_1``, the weight of the consistency loss after its ramp-up.
        The consistency is summed over the classes, so the paper's 100 (on a
        loss averaged over 10 classes) is 10 here; on MNIST-1D with 30 epochs
        10 and 3 fell below the supervised network and 1 was best.
    consistency : {"mse", "kl"}, default="mse"
        Squared distance of the softmax outputs, or KL(teacher || student).
    ema_decay : float, default=0.99
        EMA decay ``alpha`` in [0, 1); step ``t`` uses
        ``min(1 - 1/(t + 1), alpha)``.
    consistency_rampup : int, default=5
        Epochs of the sigmoid ramp-up of ``lambda_1``.
    predict_with : {"teacher", "student"}, default="teacher"
        Which network ``predict``, ``predict_proba`` and ``score`` use.
    local_clustering : bool, default=False
        Add the local clustering loss (Mean Teacher + LC).
    lc_weight : float, default=0.3
        ``lambda_2``, the weight of the local clustering loss after its
        ramp-up. On MNIST-1D with :class:`~skssl.deep.CNN1DModule` at the
        default ``lc_epsilon``, 0.1 to 0.3 scored best, 1 and 10 lost 0.7 and
        2.0 points and 100 collapsed the embeddings (with ``lc_epsilon=1``, 1
        and 3 already collapsed them; ``benchmarks/bench_mean_teacher.py
        --ablation``).
    lc_epsilon : float, default=0.3
        Cut-off ``eps``: pairs farther apart are not neighbours. With
        ``lc_epsilon_scale="median"``, distances (and so ``eps`` and the loss)
        are in units of the embeddings' median pair distance in the epoch
        local clustering starts, so 1 makes about half of the pairs neighbours
        then, in any network and at any embedding size or scale. 0.3 (about
        a tenth of the pairs) against 1 on MNIST-1D with ``CNN1DModule`` and an
        unused draw (2 seeds): 4.5 and 5.4 points better at 10 labels per
        class, where 1 lost 3 to 6 points to plain Mean Teacher, and within
        0.4 at 50 and 100. In the benchmark (5 seeds) local clustering went
        from -4.4 to +0.8 points against plain Mean Teacher at 10 labels per
        class and from -0.1 / -0.4 to -0.3 / -0.1 at 50 / 100
        (``benchmarks/results/mean_teacher.md``).
    lc_epsilon_scale : {"median", "absolute"}, default="median"
        ``"absolute"`` measures distances as they are (the paper's ``eps`` of
        40-50 on its 128-d features).
    lc_start_epoch : int, default=10
        Epoch (from 0) at which local clustering starts: the Mean Teacher phase
        before it gives the embeddings a class structure to sharpen.
    lc_rampup : int, default=10
        Epochs of the sigmoid ramp-up of ``lambda_2``.
    lr : float, default=3e-3
        Adam's learning rate, DLP's rate and three times the base's 1e-3. On
        MNIST-1D with ``CNN1DModule`` at 50 labels per class (a draw the
        benchmark does not use, 2 seeds) Mean Teacher reached 0.956 at 3e-3
        against 0.920 at 1e-3, and its gain over the same network on the
        labeled rows grew from +2.2 to +4.5 points; on the tabular sets of
        ``benchmarks/bench_tabular.py`` (3 label draws, 5/10/20 labels per
        class) the mean accuracy moved by +0.4 points. Its supervised
        reference (``unlabeled="ignore"``) trains at the same rate.
    max_epochs : int, default=30
    **kwargs
        Every parameter of :class:`~skssl.deep.SemiSupervisedNet`
        (``batch_size``, ``augment``, ``unlabeled``, ``device``,
        ``random_state``, ``module__*``, ...).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    module_ : torch.nn.Module
        The student.
    teacher_ : torch.nn.Module
        The EMA teacher (no gradients).
    mean_teacher_ : skssl.deep.MeanTeacher
        Its settings and the number of EMA steps taken.
    history_ : skorch.History
        Besides skorch's entries: ``sup_loss``, ``consistency_loss`` and, with
        local clustering, ``lc_loss``, ``lc_neighbours`` (share of the batch's
        pairs within ``eps``) and ``lc_spread`` (median pair distance of the
        embeddings, which a collapse drives to 0).

    Warns
    -----
    UserWarning
        When local clustering collapses the embeddings (their spread falls
        below a tenth of its value when local clustering started), the paper's
        "distribution collapse": lower ``lc_epsilon`` or ``lc_weight``.

    See Also
    --------
    skssl.deep.SemiSupervisedNet : the same network on the labeled rows only
        (or ``unlabeled="ignore"``).
    skssl.DeepLabelPropagationClassifier : pseudo-labels from a graph, with an
        optional Mean Teacher term (``consistency_weight``).

    References
    ----------
    .. [1] A. Tarvainen and H. Valpola, "Mean teachers are better role models:
       weight-averaged consistency targets improve semi-supervised deep
       learning results", NIPS 2017.
    .. [2] Z. Chen, B. Dutton, B. Ramachandra, T. Wu and R. R. Vatsavai,
       "Local clustering with mean teacher for semi-supervised learning",
       ICPR 2020.

    Examples
    --------
    >>> from sklearn.datasets import make_blobs
    >>> from skssl import MeanTeacherClassifier
    >>> from skssl.datasets import mask_labels
    >>> X, y_true = make_blobs(300, centers=3, random_state=0)
    >>> y = mask_labels(y_true, per_class=3, random_state=0)
    >>> clf = MeanTeacherClassifier(local_clustering=True, max_epochs=6,
    ...                             lc_start_epoch=2, lc_rampup=2,
    ...                             random_state=0).fit(X, y)
    >>> float(clf.score(X, y_true)) > 0.9
    True
    >>> sorted(k for k in clf.history[-1] if k.startswith("lc_"))
    ['lc_loss', 'lc_loss_best', 'lc_neighbours', 'lc_spread']
    """

    _parameter_constraints = {
        **SemiSupervisedNet._parameter_constraints,
        "consistency_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "consistency": [StrOptions(set(CONSISTENCY_LOSSES))],
        "ema_decay": [Interval(numbers.Real, 0, 1, closed="left")],
        "consistency_rampup": [Interval(numbers.Integral, 0, None, closed="left")],
        "predict_with": [StrOptions({"teacher", "student"})],
        "local_clustering": ["boolean"],
        "lc_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "lc_epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "lc_epsilon_scale": [StrOptions({"median", "absolute"})],
        "lc_start_epoch": [Interval(numbers.Integral, 0, None, closed="left")],
        "lc_rampup": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        module=MLPModule,
        *,
        consistency_weight=1.0,
        consistency="mse",
        ema_decay=0.99,
        consistency_rampup=5,
        predict_with="teacher",
        local_clustering=False,
        lc_weight=0.3,
        lc_epsilon=0.3,
        lc_epsilon_scale="median",
        lc_start_epoch=10,
        lc_rampup=10,
        lr=3e-3,
        max_epochs=30,
        **kwargs,
    ):
        super().__init__(module, lr=lr, max_epochs=max_epochs, **kwargs)
        self.consistency_weight = consistency_weight
        self.consistency = consistency
        self.ema_decay = ema_decay
        self.consistency_rampup = consistency_rampup
        self.predict_with = predict_with
        self.local_clustering = local_clustering
        self.lc_weight = lc_weight
        self.lc_epsilon = lc_epsilon
        self.lc_epsilon_scale = lc_epsilon_scale
        self.lc_start_epoch = lc_start_epoch
        self.lc_rampup = lc_rampup

    def get_mean_teacher(self):
        """The teacher is always there: it makes the predictions."""
        return MeanTeacher(
            decay=self.ema_decay,
            weight=self.consistency_weight,
            rampup=self.consistency_rampup,
            loss=self.consistency,
            predict_with=self.predict_with,
        )

    def _auto_augment(self):
        suggested = super()._auto_augment()
        return GaussianNoise(0.1) if suggested is None else suggested

    @property
    def _uses_embedding(self):
        return bool(self.local_clustering) and self.unlabeled == "use"

    def _loss_term_names(self):
        return (*super()._loss_term_names(), "lc_loss")

    def _batch_statistic_names(self):
        return (*super()._batch_statistic_names(), "lc_neighbours", "lc_spread")

    def lc_weight_at(self, epoch):
        """``lambda_2`` in epoch ``epoch`` (counted from 0)."""
        return ramped_weight(self.lc_weight, epoch, self.lc_start_epoch, self.lc_rampup)

    def get_loss_terms(self, logits, embedding, rows, X, **fit_params):
        """Cross-entropy, Mean Teacher consistency and, if on, local clustering."""
        terms = super().get_loss_terms(logits, embedding, rows, X, **fit_params)
        if embedding is None:
            return terms
        given, _, _ = self.targets_.batch(rows, logits.device)
        labeled = given >= 0
        if labeled.all():
            return terms
        loss, neighbours, spread = local_clustering_loss(
            embedding[labeled],
            embedding[~labeled],
            self.lc_epsilon,
            unit=self._lc_unit(),
        )
        self.history.record_batch("lc_neighbours", neighbours)
        self.history.record_batch("lc_spread", spread)
        terms["lc_loss"] = (self.lc_weight_at(len(self.history) - 1), loss)
        return terms

    def _lc_unit(self):
        """Unit of the local clustering distances for this step.

        ``"absolute"``: 1. ``"median"``: the embeddings' median pair distance
        in the epoch before local clustering weighs in, fixed from then on (a
        unit that followed the batch would rescale a shrinking embedding and
        speed up its collapse); until it is known, the batch's own median.
        """
        if self.lc_epsilon_scale == "absolute":
            return 1.0
        return getattr(self, "_lc_reference_spread", None) or None

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        super().on_train_begin(net, X=X, y=y, **kwargs)
        self._lc_reference_spread = None
        self._lc_collapse_warned = False

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_end(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        # The net's own hook runs before the callbacks that average the
        # epoch's batches, so the spread is read from the batches.
        spreads = [
            b["lc_spread"] for b in self.history[-1]["batches"] if "lc_spread" in b
        ]
        if not spreads:
            return
        spread = float(np.mean(spreads))
        epoch = len(self.history) - 1
        if epoch <= self.lc_start_epoch or self._lc_reference_spread is None:
            # The spread before local clustering weighs in: the reference.
            self._lc_reference_spread = spread
            return
        reference = self._lc_reference_spread
        if self._lc_collapse_warned or not spread < _COLLAPSE_RATIO * reference:
            return
        self._lc_collapse_warned = True
        warnings.warn(
            f"local clustering collapsed the embeddings in epoch {epoch + 1}: their "
            f"spread (median pair distance) fell from {reference:.3g} to "
            f"{spread:.3g}, so every row maps to nearly one point. Lower "
            f"lc_epsilon={self.lc_epsilon} or lc_weight={self.lc_weight}.",
            UserWarning,
            stacklevel=2,
        )
