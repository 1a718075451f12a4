"""skssl: semi-supervised learning estimators for scikit-learn.

Every estimator follows ``fit(X, y)`` with ``-1`` marking unlabeled targets, so
it drops into :class:`~sklearn.pipeline.Pipeline`, :func:`~sklearn.base.clone`
and :class:`~sklearn.model_selection.GridSearchCV`.
"""

import importlib

__version__ = "0.1.0.dev0"

# Estimators load on first use: the graph estimators need no torch, and the
# command line starts without importing scikit-learn or torch.
_LAZY = {
    "LabelSpreadingCG": ".propagation",
    "PoissonLearning": ".poisson",
    "DeepLabelPropagationClassifier": ".deep",
    "CCLPClassifier": ".deep",
    "MeanTeacherClassifier": ".deep",
    "LocalLabelPropagationClassifier": ".deep",
    "ManifoldRanking": ".ranking",
    "ManifoldMiningEmbedder": ".deep",
}

__all__ = [
    "CCLPClassifier",
    "DeepLabelPropagationClassifier",
    "LabelSpreadingCG",
    "LocalLabelPropagationClassifier",
    "ManifoldMiningEmbedder",
    "ManifoldRanking",
    "MeanTeacherClassifier",
    "PoissonLearning",
    "__version__",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
