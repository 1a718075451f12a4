"""Deep semi-supervised estimators on skorch, and their building blocks."""

from .augment import GaussianNoise, RandomShift
from .base import SemiSupervisedNet
from .cclp import CCLPClassifier
from .data import RowTargets, SemiSupervisedBatchSampler, SemiSupervisedDataset
from .dlp import DeepLabelPropagationClassifier, PseudoLabelAccuracy
from .mean_teacher import MeanTeacherClassifier
from .modules import CNN1DModule, MLPModule, Standardize
from .teacher import MeanTeacher

__all__ = [
    "CCLPClassifier",
    "CNN1DModule",
    "DeepLabelPropagationClassifier",
    "GaussianNoise",
    "MLPModule",
    "MeanTeacher",
    "MeanTeacherClassifier",
    "PseudoLabelAccuracy",
    "RandomShift",
    "RowTargets",
    "SemiSupervisedBatchSampler",
    "SemiSupervisedDataset",
    "SemiSupervisedNet",
    "Standardize",
]
