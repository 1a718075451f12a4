"""What every transductive graph classifier shares once it is fitted.

A graph classifier (:class:`~skssl.LabelSpreadingCG`,
:class:`~skssl.PoissonLearning`) fits a :class:`~skssl.graph.KNNGraph` as
``graph_`` and a class distribution per fitted row as
``label_distributions_``. New rows join through their neighbours in that
graph: :meth:`~skssl.graph.KNNGraph.query` finds them with the graph's own
kernel, and :func:`~skssl.diffusion.knn_vote` averages their distributions.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from ._validation import check_missing_targets, encode_ssl_targets
from .diffusion import knn_vote
from .graph import GRAPH_PARAMS, KNNGraph


class GraphClassifierMixin:
    """Out-of-sample prediction through the fitted graph, for graph classifiers.

    Needs ``graph_``, ``label_distributions_`` and ``classes_`` after ``fit``.
    """

    def _validate_ssl(self, X, y):
        """Checked ``X``, the classes and the encoded targets (-1 unlabeled)."""
        check_missing_targets(y)
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc", "coo"],
            dtype=[np.float64, np.float32],
            ensure_min_samples=2,
            y_numeric=False,
        )
        # The user's fit -> restore_on_failure's fit -> _fit -> here.
        classes, y_enc = encode_ssl_targets(y, stacklevel=6)
        return X, classes, y_enc

    def _fit_graph(self, X, seed):
        """The :class:`~skssl.graph.KNNGraph` of the estimator's graph parameters."""
        return KNNGraph(
            **{name: getattr(self, name) for name in GRAPH_PARAMS},
            random_state=seed,
            verbose=self.verbose,
        ).fit(X)

    @property
    def backend_(self):
        """The kNN backend the fitted graph used."""
        return self.graph_.backend_

    def predict_proba(self, X):
        """Class distributions of new rows from their neighbours in the fitted data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_queries, n_features)
            New rows (or, with ``backend="precomputed"``, their affinities to the
            fitted rows, of shape (n_queries, n_fitted)).

        Returns
        -------
        proba : ndarray of shape (n_queries, n_classes)
            Columns follow ``classes_``; rows sum to 1.
        """
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            accept_sparse=["csr", "csc", "coo"],
            dtype=[np.float64, np.float32],
            reset=False,
        )
        indices, weights = self.graph_.query(X)
        return knn_vote(indices, weights, self.label_distributions_)

    def predict(self, X):
        """Most probable class of each new row.

        Returns
        -------
        y : ndarray of shape (n_queries,)
            Labels from ``classes_``.
        """
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
