"""Label spreading on a kNN graph: :class:`LabelSpreadingCG`.

The estimator is thin: it validates, builds its :class:`~skssl.graph.KNNGraph`,
diffuses the labels with :mod:`skssl.diffusion` and stores the results.
"""

from __future__ import annotations

import numbers
import time

from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions

from ._graph_classifier import GraphClassifierMixin
from ._validation import (
    restore_on_failure,
    seed_from,
)
from .diffusion import (
    certainty,
    clamp_labeled,
    class_mass_normalize,
    diffuse,
    label_distributions,
    label_matrix,
    unreachable_rows,
)
from .graph import GRAPH_PARAMS, KNNGraph
from .solvers import SOLVERS

__all__ = ["LabelSpreadingCG"]


class LabelSpreadingCG(GraphClassifierMixin, ClassifierMixin, BaseEstimator):
    """Label spreading on a kNN graph, solved by conjugate gradient.

    Builds a sparse kNN affinity ``W`` of all rows (labeled and unlabeled) with
    faiss, normalizes it symmetrically, and solves the diffusion system
    ``(I - alpha D^-1/2 W D^-1/2) Z = Y`` for all classes in one block
    conjugate-gradient solve (Zhou et al. 2004; Iscen et al. 2019). Unlike
    :class:`sklearn.semi_supervised.LabelSpreading`, it never forms a dense
    matrix and runs to a relative tolerance, so it scales to millions of rows.

    New points are labeled by attaching them to their ``n_neighbors`` nearest
    fitted rows and averaging those rows' label distributions, weighted by the
    same affinity kernel (``graph_.query``). A fit that fails leaves the
    estimator as it was before the call.

    Parameters
    ----------
    n_neighbors : int, default=7
        Neighbours per row in the kNN graph.
    alpha : float, default=0.99
        Diffusion strength in [0, 1): the share of a row's score that comes
        from its neighbours rather than from its own label.
    metric : {"euclidean", "cosine", "ip"}, default="euclidean"
        Metric of the neighbour search: ``"cosine"`` suits embeddings,
        ``"euclidean"`` raw features.
    kernel : {"gaussian", "power", "binary"}, default="gaussian"
        Edge weights: ``"gaussian"`` is ``exp(-d_ij^2 / (sigma_i sigma_j))`` with
        local scaling; ``"power"`` is ``[v_i^T v_j]_+^gamma`` (DLP eq. 9, needs
        ``metric="cosine"`` or ``"ip"``); ``"binary"`` is 1 per edge.
    gamma : float, default=3.0
        Exponent of the power kernel.
    symmetrize : {"sum", "max", "mutual"}, default="sum"
        ``W = A + A^T``, ``max(A, A^T)`` or mutual neighbours only.
    backend : {"auto", "exact", "hnsw", "ivf", "gpu", "sklearn", "precomputed"}, \
default="auto"
        kNN search backend; ``"auto"`` picks exact faiss search below 100,000
        rows, IVF from there, a GPU when faiss sees one, and scikit-learn for
        sparse X. With ``"precomputed"``, X is a square affinity matrix at fit
        time and an (n_queries, n_fitted) affinity at predict time.
    index_params : dict, default=None
        Search settings of the approximate backends (HNSW ``M``,
        ``efConstruction``, ``efSearch``; IVF ``nlist``, ``nprobe``); see
        :class:`~skssl.graph.KNNGraph`.
    solver : {"cg", "spectral", "dense"}, default="cg"
        How the diffusion system is solved (:func:`skssl.solvers.solve_diffusion`):
        conjugate gradient to ``tol``; the low-rank spectral filter over the top
        ``n_components`` eigenpairs (approximate); or a dense solve (exact, small
        n only).
    n_components : int, default=100
        Eigenpairs of the spectral solver (ignored by the others).
    tol : float, default=1e-6
        Relative residual at which conjugate gradient stops, in (0, 1).
        Looser tolerances save iterations (31 instead of 52 at 1e-4 on
        10^5 rows) but cost accuracy where labels must travel far along the
        graph: two moons with one label per class lost 0.5 points at 1e-5
        and 1.3 at 1e-4 (``benchmarks/results/propagation.md``).
    max_iter : int, default=10000
        Largest number of conjugate-gradient iterations.
    class_mass_normalization : bool, default=True
        Divide each class's diffusion scores by their total before taking
        distributions, so classes whose few labels sit in dense regions do not
        flood the graph (see :func:`class_mass_normalize`).
    device : {"auto", "cpu", "cuda"} or torch.device, default="auto"
        Where the conjugate-gradient iterations run: ``"auto"`` is a CUDA
        device when torch sees one and the graph has 20,000 rows or more,
        else the CPU. From 20,000 rows they run in float32 (PyTorch) first
        and are checked (and, where needed, refined) in float64, so the
        solution always meets ``tol``; smaller graphs solve in float64 with
        scipy.
    n_jobs : int, default=None
        Threads for the neighbour search.
    random_state : int, RandomState instance or None, default=None
        Seed for approximate (IVF) index training and the spectral solver.
    verbose : int, default=0
        Show a progress bar for the neighbour search and a solver summary.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (the unlabeled marker -1 excluded).
    transduction_ : ndarray of shape (n_samples,)
        Label of every fitted row; labeled rows keep their given label.
    label_distributions_ : ndarray of shape (n_samples, n_classes)
        Class distribution of every fitted row; rows sum to 1.
    certainty_ : ndarray of shape (n_samples,)
        ``1 - H(p_i) / log C``: 1 for a sure row, 0 for a uniform one.
    n_iter_ : int
        Conjugate-gradient iterations run (0 for the direct solvers).
    residuals_ : list of float
        Relative residual before and after each iteration (of the solution,
        for the direct solvers).
    graph_ : skssl.graph.KNNGraph
        The fitted graph; ``predict`` attaches new rows through it.
    backend_ : str
        The kNN backend used (``graph_.backend_``).
    timings_ : dict
        Seconds of each phase of ``fit``: ``"index"``, ``"search"``,
        ``"affinity"`` (the graph) and ``"solve"``.
    n_features_in_ : int
        Number of features seen during fit.

    See Also
    --------
    sklearn.semi_supervised.LabelSpreading : dense iterative label spreading.
    skssl.DeepLabelPropagationClassifier : the same diffusion over a network's
        embeddings, used to train the network.

    References
    ----------
    .. [1] D. Zhou, O. Bousquet, T. N. Lal, J. Weston and B. Schölkopf,
       "Learning with local and global consistency", NIPS 2004.
    .. [2] A. Iscen, G. Tolias, Y. Avrithis and O. Chum, "Label propagation for
       deep semi-supervised learning", CVPR 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_moons
    >>> from skssl import LabelSpreadingCG
    >>> X, y_true = make_moons(300, noise=0.05, random_state=0)
    >>> y = np.full_like(y_true, -1)
    >>> y[[np.flatnonzero(y_true == c)[0] for c in (0, 1)]] = [0, 1]
    >>> clf = LabelSpreadingCG().fit(X, y)
    >>> float((clf.transduction_ == y_true).mean()) > 0.95
    True
    >>> clf.predict([[0.0, 1.0], [1.0, -0.5]]).tolist()
    [0, 1]
    """

    _parameter_constraints = {
        **{name: KNNGraph._parameter_constraints[name] for name in GRAPH_PARAMS},
        "alpha": [Interval(numbers.Real, 0, 1, closed="left")],
        "solver": [StrOptions(set(SOLVERS))],
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, 1, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "class_mass_normalization": ["boolean"],
        "device": "no_validation",
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_neighbors=7,
        alpha=0.99,
        metric="euclidean",
        kernel="gaussian",
        gamma=3.0,
        symmetrize="sum",
        backend="auto",
        index_params=None,
        solver="cg",
        n_components=100,
        tol=1e-6,
        max_iter=10000,
        class_mass_normalization=True,
        device="auto",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.metric = metric
        self.kernel = kernel
        self.gamma = gamma
        self.symmetrize = symmetrize
        self.backend = backend
        self.index_params = index_params
        self.solver = solver
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.class_mass_normalization = class_mass_normalization
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Build the graph over all rows of X and diffuse the labels of y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            All rows, labeled and unlabeled (or a square affinity with
            ``backend="precomputed"``).
        y : array-like of shape (n_samples,)
            Labels, ``-1`` for unlabeled rows.

        Returns
        -------
        self : LabelSpreadingCG
        """
        with restore_on_failure(self):
            return self._fit(X, y)

    def _fit(self, X, y):
        X, classes, y_enc = self._validate_ssl(X, y)
        seed = seed_from(self.random_state)
        graph = self._fit_graph(X, seed)
        W = graph.affinity_
        start = time.perf_counter()
        result = diffuse(
            W,
            label_matrix(y_enc, len(classes)),
            alpha=self.alpha,
            solver=self.solver,
            tol=self.tol,
            max_iter=self.max_iter,
            n_components=min(self.n_components, W.shape[0]),
            random_state=seed,
            device=self.device,
            stacklevel=5,
        )
        solve_seconds = time.perf_counter() - start
        Z = result.solution
        if self.class_mass_normalization:
            Z = class_mass_normalize(Z)
        labeled = y_enc >= 0
        unreachable = unreachable_rows(W, labeled, warn=True, stacklevel=5)
        P = clamp_labeled(label_distributions(Z, unreachable), y_enc)
        if self.verbose:
            print(
                f"[LabelSpreadingCG] backend={graph.backend_} edges={W.nnz} "
                f"solver={result.solver} iterations={result.n_iter} "
                f"residual={result.residuals[-1]:.2e}"
            )

        self.classes_ = classes
        self.label_distributions_ = P
        self.transduction_ = classes[P.argmax(axis=1)]
        self.certainty_ = certainty(P)
        self.n_iter_ = result.n_iter
        self.residuals_ = result.residuals
        self.graph_ = graph
        self.timings_ = {**graph.timings_, "solve": solve_seconds}
        return self
