"""skssl: semi-supervised learning estimators for scikit-learn.

Every estimator follows ``fit(X, y)`` with ``-1`` marking unlabeled targets, so
it drops into :class:`~sklearn.pipeline.Pipeline`, :func:`~sklearn.base.clone`
and :class:`~sklearn.model_selection.GridSearchCV`.
"""

from .propagation import LabelSpreadingCG

__version__ = "0.1.0.dev0"

__all__ = ["LabelSpreadingCG", "__version__"]
