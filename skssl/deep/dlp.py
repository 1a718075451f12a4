"""Deep label propagation (Iscen, Tolias, Avrithis and Chum, CVPR 2019)."""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from skorch.callbacks import Callback

from .._validation import seed_from
from ..diffusion import (
    certainty,
    clamp_labeled,
    class_weights,
    diffuse,
    label_distributions,
    label_matrix,
    unreachable_rows,
)
from ..graph import BACKENDS, KNNGraph, ivf_nlist, resolve_backend
from .base import SemiSupervisedNet
from .modules import MLPModule
from .teacher import MeanTeacher

__all__ = ["DeepLabelPropagationClassifier", "PseudoLabelAccuracy"]

# DLP rebuilds its graph every epoch, so its "auto" search turns approximate
# (IVF) sooner than a one-off graph's (10^5 rows), and probes fewer lists: a
# network's embeddings cluster by class, so their neighbours sit in few lists.
# On MNIST-1D CNN1DModule embeddings at n = 50,000, sqrt(n) lists with 3 probed
# (about 700 candidates per row) built a graph sharing 97 % of the exact one's
# edges in 0.79 s on one thread, against 8.6 s for exact search and 1.9 s for
# the one-off default (2 sqrt(n) lists, about 2,000 candidates), and DLP
# trained on it scored as well as on the exact graph (0.977 against 0.975).
# Exact search grows as n^2 and an epoch as n: at 20,000 rows they cost about
# the same (benchmarks/results/deep.md, "Graph step against an epoch").
_APPROX_MIN_ROWS = 20_000
_IVF_NPROBE = 3


def _pseudo_label_weights(P, y_encoded, unreachable, n_classes):
    """Pseudo-labels and per-row loss weights from label distributions.

    Implements lines 12-15 of Algorithm 1 and the weights of eq. (12):
    ``omega_i = 1 - H(z_hat_i) / log C`` (eq. 11) divided by its maximum over
    all rows, 1 on labeled rows; ``zeta_j`` proportional to
    ``1 / (|L_j| + |U_j|)`` with mean 1 over the classes present; loss weight
    ``zeta_{y_i}`` on labeled rows and ``omega_i zeta_{y_hat_i}`` on the others.
    Unreachable rows get weight 0 and do not count in ``|U_j|``; an empty
    class gets ``zeta = 0``.

    Parameters
    ----------
    P : ndarray of shape (n_rows, n_classes)
        Label distributions of the diffusion (not clamped).
    y_encoded : ndarray of shape (n_rows,)
        Class indices, -1 for unlabeled rows.
    unreachable : ndarray of shape (n_rows,), bool
        Rows no label reaches in the graph.
    n_classes : int

    Returns
    -------
    labels : ndarray of shape (n_rows,), int64
        Given label on labeled rows, ``argmax P`` on the others.
    weights : ndarray of shape (n_rows,)
        Loss weight of each row.
    zeta : ndarray of shape (n_classes,)
        Class weights.
    """
    labeled = y_encoded >= 0
    labels = np.where(labeled, y_encoded, P.argmax(axis=1)).astype(np.int64)
    omega = np.where(unreachable, 0.0, certainty(P))
    top = omega.max(initial=0.0)
    if top > 0:
        omega = omega / top
    omega[labeled] = 1.0
    zeta = class_weights(labels[labeled | ~unreachable], n_classes)
    return labels, omega * zeta[labels], zeta


class DeepLabelPropagationClassifier(SemiSupervisedNet):
    """Deep label propagation: train a network on graph-diffused pseudo-labels.

    Algorithm 1 of Iscen et al. (2019). After ``n_warmup_epochs`` supervised
    epochs on the labeled rows, every ``graph_update_every`` epochs:

    1. descriptors ``v_i = embed(x_i)`` of all training rows, in eval mode;
    2. kNN graph with ``a_ij = [v_i^T v_j]_+^gamma`` (eq. 9), ``W = A + A^T``
       (:class:`skssl.graph.KNNGraph`, faiss, on the GPU when faiss-gpu sees
       one);
    3. ``(I - alpha D^-1/2 W D^-1/2) Z = Y`` by at most ``max_iter``
       conjugate-gradient iterations, warm-started from the previous ``Z``
       (:func:`skssl.diffusion.diffuse`);
    4. pseudo-labels ``argmax_j z_ij``, certainties ``omega_i`` (eq. 11) and
       class weights ``zeta_j``;

    then one epoch of the weighted cross-entropy of eq. (12) over batches that
    mix labeled and pseudo-labeled rows. When the batches are perturbed
    (``augment``), a Mean Teacher consistency term is added by default (the
    paper's "MT + Ours", :mod:`skssl.deep.teacher`; ``consistency_weight``).

    Parameters
    ----------
    module : torch module class or instance, default=MLPModule
        Network following the module protocol (:mod:`skssl.deep.modules`);
        :class:`~skssl.deep.CNN1DModule` suits sequences such as MNIST-1D.
    n_neighbors : int, default=10
        Neighbours per row in the graph (at most the number of rows minus one).
        The paper's 50 (on 50,000 images) made the graph of a small data set
        nearly complete; 10 was better on every tabular set tried and on
        MNIST-1D (``benchmarks/bench_tabular.py --evidence``).
    gamma : float, default=3.0
        Exponent of the affinity ``[v_i^T v_j]_+^gamma``.
    alpha : float, default=0.9
        Diffusion strength in [0, 1). The paper's 0.99 spreads labels so far
        that on small data the pseudo-labels were worse than the network's own
        predictions after warm-up, and training on them cost up to 5 points;
        0.9 keeps the diffusion local.
    max_iter : int, default=20
        Conjugate-gradient iterations per propagation (a fixed budget: no
        convergence warning).
    tol : float, default=1e-6
        Relative residual at which conjugate gradient stops earlier, in (0, 1).
    n_warmup_epochs : int, default=10
        Supervised epochs on the labeled rows before the first propagation.
    graph_update_every : int, default=1
        Epochs between propagations (the paper: every epoch).
    backend : {"auto", "exact", "hnsw", "ivf", "gpu", "sklearn"}, default="auto"
        kNN backend of the graph (:class:`skssl.graph.KNNGraph`). ``"auto"``
        searches the embeddings exactly below 20,000 rows and with IVF from
        there on (faiss on the GPU when it sees one): the graph is rebuilt
        every epoch, and at 50,000 rows exact search cost nearly three epochs of
        a small CNN on a CPU.
    index_params : dict, default=None
        Search settings of the approximate backends (see
        :class:`~skssl.graph.KNNGraph`). IVF defaults to about ``sqrt(n)``
        lists of which 3 are probed, fewer candidates than a one-off graph's
        default: on a network's embeddings that kept recall@10 at 0.97-0.98.
        Any key given here wins.
    consistency_weight : float or "auto", default="auto"
        Weight of the Mean Teacher consistency loss; 0 turns it off. ``"auto"``
        is 1 (:class:`~skssl.MeanTeacherClassifier`'s default) when the
        training batches are perturbed (``augment_`` is not None, e.g. the
        random shifts ``augment="auto"`` gives :class:`~skssl.deep.CNN1DModule`)
        and 0 when they are not, since a teacher that sees the student's input
        has little to add. On MNIST-1D with ``CNN1DModule`` the term added 6.2,
        0.3 and 0.1 points at 10, 50 and 100 labels per class in one benchmark
        (5 seeds, ``benchmarks/results/mean_teacher.md``), 0.0, 0.4 and 0.1 in
        another whose callbacks draw other random numbers (``deep.md``), and
        3.3, 0.1 and 0.4 on a draw the benchmarks do not use (2 seeds); it never
        lowered the mean. On the tabular evidence sets, whose
        rows ``augment="auto"`` leaves as they are, weight 1 lowered the mean
        gain over scikit-learn's MLP from 3.9 to 2.9 points
        (``benchmarks/results/tabular.md``). When on, ``mean_teacher_.weight``
        is the weight used.
    ema_decay : float, default=0.99
        Decay of the teacher's exponential moving average, in [0, 1).
    consistency_rampup : int, default=5
        Epochs over which the consistency weight ramps up as
        ``exp(-5 (1 - epoch / rampup)^2)``.
    lr : float, default=3e-3
        Adam's learning rate. Three times the base's 1e-3: on MNIST-1D with
        ``CNN1DModule`` (draws the benchmark does not use) 30 epochs at 1e-3
        left DLP still climbing, and 3e-3 reached what 60 epochs at 1e-3 did
        (0.955 against 0.927 at 50 labels per class, 0.72 against 0.67 at 10),
        while the mean gain over scikit-learn's MLP on the tabular sets moved
        by -0.2 points (``benchmarks/results/deep.md``, ``tabular.md``). Its
        supervised reference (``unlabeled="ignore"``) trains at the same rate.
    max_epochs : int, default=30
        Epochs per ``fit``, warm-up included.
    batch_size : int, default=128
        Rows per training batch.
    batch_size_labeled : int, default=64
        Labeled rows per batch; the rest are unlabeled (pseudo-labeled) rows.
        Half of the batch, as in the paper; on MNIST-1D a quarter lost about
        4 points of test accuracy.
    **kwargs
        Every other parameter of :class:`~skssl.deep.SemiSupervisedNet` and of
        :class:`skorch.NeuralNet` (``augment``, ``optimizer``,
        ``random_state``, ``device``, ``callbacks``, ``module__*`` ...).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels, -1 excluded.
    transduction_ : ndarray of shape (n_samples,)
        Label of every row of ``X`` after the last propagation: the given label
        on labeled rows, the diffusion's ``argmax`` on unlabeled rows. Set once
        a propagation has run.
    label_distributions_ : ndarray of shape (n_samples, n_classes)
        Row-normalized diffusion scores ``z_hat_i``; a labeled row's
        distribution is its label.
    certainty_ : ndarray of shape (n_samples,)
        ``1 - H(z_hat_i) / log C`` (eq. 11), in [0, 1]; 1 on labeled rows.
    pseudo_label_weights_ : ndarray of shape (n_samples,)
        Training weights of eq. (12): ``zeta_{y_i}`` on labeled rows,
        ``omega_i zeta_{y_hat_i}`` on unlabeled rows, where ``omega_i`` is
        ``certainty_`` divided by its maximum over the training rows; 0 on
        rows no label reaches and on rows ``train_split`` held out.
    class_weights_ : ndarray of shape (n_classes,)
        ``zeta_j``, mean 1 over the classes with rows.
    n_iter_ : int
        Conjugate-gradient iterations of the last propagation (0 before any).
    graph_ : skssl.graph.KNNGraph
        The graph of the last propagation.
    history_ : skorch.History
        Besides skorch's entries, each propagation epoch records
        ``pseudo_label_certainty`` (mean ``certainty_`` of the unlabeled
        rows), ``pseudo_label_counts`` (``|L_j| + |U_j|`` per class),
        ``n_unreachable``, ``cg_iter`` and ``graph_dur`` (seconds for
        descriptors, kNN graph and diffusion; the epoch's ``dur`` excludes it).
        :class:`PseudoLabelAccuracy` adds accuracies against known labels.

    See Also
    --------
    skssl.LabelSpreadingCG : the same diffusion on fixed features.
    skssl.deep.SemiSupervisedNet : the network trained on labeled rows only.

    References
    ----------
    .. [1] A. Iscen, G. Tolias, Y. Avrithis and O. Chum, "Label propagation for
       deep semi-supervised learning", CVPR 2019.
    .. [2] A. Tarvainen and H. Valpola, "Mean teachers are better role models",
       NIPS 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_moons
    >>> from skssl import DeepLabelPropagationClassifier
    >>> X, y_true = make_moons(200, noise=0.05, random_state=0)
    >>> y = np.full(200, -1)
    >>> y[:10] = y_true[:10]
    >>> clf = DeepLabelPropagationClassifier(
    ...     n_neighbors=10, n_warmup_epochs=1, max_epochs=3, lr=0.01,
    ...     random_state=0).fit(X, y)
    >>> clf.transduction_.shape, clf.label_distributions_.shape
    ((200,), (200, 2))
    >>> float(clf.certainty_.max()), len(clf.history), "cg_iter" in clf.history[-1]
    (1.0, 3, True)
    """

    _keys_not_printed = (*SemiSupervisedNet._keys_not_printed, "pseudo_label_counts")

    _parameter_constraints = {
        **SemiSupervisedNet._parameter_constraints,
        **{
            name: KNNGraph._parameter_constraints[name]
            for name in ("n_neighbors", "gamma", "index_params")
        },
        "backend": [StrOptions(set(BACKENDS))],
        "alpha": [Interval(numbers.Real, 0, 1, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_warmup_epochs": [Interval(numbers.Integral, 0, None, closed="left")],
        "graph_update_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "consistency_weight": [
            Interval(numbers.Real, 0, None, closed="left"),
            StrOptions({"auto"}),
        ],
        "ema_decay": [Interval(numbers.Real, 0, 1, closed="left")],
        "consistency_rampup": [Interval(numbers.Integral, 0, None, closed="left")],
    }

    def __init__(
        self,
        module=MLPModule,
        *,
        n_neighbors=10,
        gamma=3.0,
        alpha=0.9,
        max_iter=20,
        tol=1e-6,
        n_warmup_epochs=10,
        graph_update_every=1,
        backend="auto",
        index_params=None,
        consistency_weight="auto",
        ema_decay=0.99,
        consistency_rampup=5,
        lr=3e-3,
        max_epochs=30,
        batch_size=128,
        batch_size_labeled=64,
        **kwargs,
    ):
        super().__init__(
            module,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            batch_size_labeled=batch_size_labeled,
            **kwargs,
        )
        self.n_neighbors = n_neighbors
        self.gamma = gamma
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.n_warmup_epochs = n_warmup_epochs
        self.graph_update_every = graph_update_every
        self.backend = backend
        self.index_params = index_params
        self.consistency_weight = consistency_weight
        self.ema_decay = ema_decay
        self.consistency_rampup = consistency_rampup

    def get_mean_teacher(self):
        weight = self.consistency_weight
        if weight == "auto":
            # A teacher that sees the student's input has nothing to add.
            weight = 1.0 if getattr(self, "augment_", None) is not None else 0.0
        if weight <= 0:
            return None
        return MeanTeacher(
            decay=self.ema_decay,
            weight=weight,
            rampup=self.consistency_rampup,
        )

    def _epoch_uses_unlabeled(self):
        # Mean Teacher learns from unlabeled rows during the warm-up as well.
        return len(self.history) > self.n_warmup_epochs or (
            super()._epoch_uses_unlabeled()
        )

    def get_split_datasets(self, X, y=None, **fit_params):
        dataset_train, dataset_valid = super().get_split_datasets(X, y, **fit_params)
        # The targets were just reset to the labeled rows: propagate again at
        # the next DLP epoch even if it is not a graph_update_every epoch.
        self._pseudo_labels_stale_ = True
        self.n_iter_ = 0
        return dataset_train, dataset_valid

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        super().on_epoch_begin(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )
        if self._propagation_due(dataset_train, self.graph_update_every):
            self._propagate(dataset_train)

    def _graph_search(self, n_rows, n_neighbors):
        """The kNN backend and search settings of an epoch's graph."""
        backend = resolve_backend(
            self.backend, n_rows, n_neighbors, approx_min_rows=_APPROX_MIN_ROWS
        )
        if backend != "ivf":
            return backend, self.index_params
        return backend, {
            "nlist": ivf_nlist(n_rows, per_sqrt_n=1),
            "nprobe": _IVF_NPROBE,
            **(self.index_params or {}),
        }

    def _propagate(self, dataset):
        """Descriptors -> kNN graph -> diffusion -> pseudo-labels and weights."""
        start = time.perf_counter()
        y = dataset.y
        n_classes = len(self.classes_)
        n_neighbors = min(self.n_neighbors, len(y) - 1)
        backend, index_params = self._graph_search(len(y), n_neighbors)
        graph = KNNGraph(
            n_neighbors,
            metric="cosine",
            kernel="power",
            gamma=self.gamma,
            backend=backend,
            index_params=index_params,
            random_state=seed_from(self.random_state),
        ).fit(self._embed_rows(dataset.X))
        W = graph.affinity_
        previous = getattr(self, "_diffusion_", None)
        warm = previous is not None and previous.shape == (len(y), n_classes)
        result = diffuse(
            W,
            label_matrix(y, n_classes),
            alpha=self.alpha,
            tol=self.tol,
            max_iter=self.max_iter,
            x0=previous if warm else None,
            device=self.device,
            warn=False,
        )
        Z = result.solution
        labeled = y >= 0
        # Warned once per fit, at its first propagation.
        unreachable = unreachable_rows(W, labeled, warn=previous is None, stacklevel=2)
        P = label_distributions(Z, unreachable)
        labels, weights, zeta = _pseudo_label_weights(P, y, unreachable, n_classes)
        duration = time.perf_counter() - start
        self._warn_isolated_classes(W, y)

        store = self.targets_
        store.update(labels, weights)
        P_all = clamp_labeled(store.to_all_rows(P, 0.0), store.y)
        self._diffusion_ = Z
        self._pseudo_labels_stale_ = False
        self.graph_ = graph
        self.label_distributions_ = P_all
        self.transduction_ = self.classes_[P_all.argmax(axis=1)]
        self.certainty_ = certainty(P_all)
        self.pseudo_label_weights_ = store.to_all_rows(weights, 0.0)
        self.class_weights_ = zeta
        self.n_iter_ = result.n_iter
        unlabeled = ~labeled
        self.history.record(
            "pseudo_label_certainty", float(certainty(P[unlabeled]).mean())
        )
        self.history.record(
            "pseudo_label_counts",
            np.bincount(labels[weights > 0], minlength=n_classes).tolist(),
        )
        self.history.record("n_unreachable", int(unreachable.sum()))
        self.history.record("cg_iter", result.n_iter)
        self.history.record("graph_dur", duration)

    def _warn_isolated_classes(self, W, y):
        """Warn when no labeled row of a class has an unlabeled neighbour."""
        labeled = y >= 0
        touches = (W @ (~labeled).astype(np.float64)) > 0
        n_classes = len(self.classes_)
        has_labels = np.bincount(y[labeled], minlength=n_classes) > 0
        reaching = np.bincount(y[labeled & touches], minlength=n_classes) > 0
        isolated = has_labels & ~reaching
        if isolated.any():
            warnings.warn(
                f"classes {self.classes_[isolated].tolist()} have labeled rows, but "
                "none of them has an unlabeled neighbour in the kNN graph of the "
                "network's embeddings, so their labels reach unlabeled rows at "
                "most through other labeled rows. Raise n_neighbors, or label more "
                "varied rows of these classes.",
                UserWarning,
                stacklevel=2,
            )


class PseudoLabelAccuracy(Callback):
    """Record how accurate the pseudo-labels are, given the true labels.

    For monitoring only (the true labels never reach the loss). At the start of
    each epoch, after the propagation, it records in the history

    - ``pseudo_label_acc``: accuracy of ``transduction_`` on the unlabeled
      training rows (epochs with a propagation);
    - ``network_acc``: accuracy of the network's own predictions on the same
      rows, from the same weights (every epoch, when ``network=True``),

    the two curves of Figure 4 of Iscen et al. (2019).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels of the rows of the ``X`` given to ``fit``, in the same order.
    network : bool, default=True
        Also record ``network_acc`` (one extra forward pass per epoch).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_blobs
    >>> from skssl import DeepLabelPropagationClassifier
    >>> from skssl.deep import PseudoLabelAccuracy
    >>> X, y_true = make_blobs(100, centers=2, random_state=0)
    >>> y = np.where(np.arange(100) < 10, y_true, -1)
    >>> clf = DeepLabelPropagationClassifier(
    ...     n_neighbors=10, n_warmup_epochs=1, max_epochs=2, random_state=0,
    ...     callbacks=[("pl_acc", PseudoLabelAccuracy(y_true))]).fit(X, y)
    >>> sorted(k for k in clf.history[-1] if k.endswith("_acc"))
    ['network_acc', 'pseudo_label_acc']
    """

    def __init__(self, y_true, *, network=True):
        self.y_true = y_true
        self.network = network

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        if X is not None and len(self.y_true) != len(X):
            raise ValueError(
                f"PseudoLabelAccuracy got {len(self.y_true)} true labels for the "
                f"{len(X)} rows of X; pass the labels of every row of X, in order."
            )

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        rows = dataset_train.rows
        truth = np.asarray(self.y_true)[rows]
        unlabeled = dataset_train.y < 0
        if not unlabeled.any():
            return
        if "pseudo_label_certainty" in net.history[-1]:
            correct = net.transduction_[rows][unlabeled] == truth[unlabeled]
            net.history.record("pseudo_label_acc", float(correct.mean()))
        if self.network:
            predicted = net.predict(dataset_train.X[unlabeled])
            net.history.record(
                "network_acc", float((predicted == truth[unlabeled]).mean())
            )
