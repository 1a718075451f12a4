"""Deep semi-supervised estimators on skorch, and their default torch modules."""

from .base import SemiSupervisedBatchSampler, SemiSupervisedDataset, SemiSupervisedNet
from .cclp import CCLPClassifier
from .dlp import DeepLabelPropagationClassifier, PseudoLabelAccuracy
from .modules import CNN1DModule, MLPModule

__all__ = [
    "CCLPClassifier",
    "CNN1DModule",
    "DeepLabelPropagationClassifier",
    "MLPModule",
    "PseudoLabelAccuracy",
    "SemiSupervisedBatchSampler",
    "SemiSupervisedDataset",
    "SemiSupervisedNet",
]
