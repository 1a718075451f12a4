"""Deep semi-supervised estimators on skorch, and their building blocks."""

from .augment import GaussianNoise, RandomShift
from .base import SemiSupervisedNet
from .cclp import CCLPClassifier
from .data import RowTargets, SemiSupervisedBatchSampler, SemiSupervisedDataset
from .dlp import DeepLabelPropagationClassifier, PseudoLabelAccuracy
from .llp import LocalLabelPropagationClassifier
from .mean_teacher import MeanTeacherClassifier
from .mining import ManifoldMiningEmbedder, TripletLoss
from .modules import CNN1DModule, MLPModule, Standardize
from .teacher import MeanTeacher

__all__ = [
    "CCLPClassifier",
    "CNN1DModule",
    "DeepLabelPropagationClassifier",
    "GaussianNoise",
    "LocalLabelPropagationClassifier",
    "MLPModule",
    "ManifoldMiningEmbedder",
    "MeanTeacher",
    "MeanTeacherClassifier",
    "PseudoLabelAccuracy",
    "RandomShift",
    "RowTargets",
    "SemiSupervisedBatchSampler",
    "SemiSupervisedDataset",
    "SemiSupervisedNet",
    "Standardize",
    "TripletLoss",
]
