"""The Mean Teacher piece (Tarvainen and Valpola, NIPS 2017).

A teacher network whose weights are an exponential moving average (EMA) of
the student's, and a consistency loss that pulls the student's predictions on
one perturbed copy of a batch towards the teacher's on another. Every deep
estimator that uses it (``MeanTeacherClassifier``, the optional Mean Teacher
term of :class:`~skssl.DeepLabelPropagationClassifier`) gets it from the base
:class:`~skssl.deep.SemiSupervisedNet`, which

- builds the teacher as a second skorch module ``teacher_`` (moved to the
  device, pickled and saved with ``f_teacher=...``) when the estimator's
  :meth:`~skssl.deep.SemiSupervisedNet.get_mean_teacher` returns one;
- adds ``weight * ramp(epoch) * consistency`` to each training step, the
  teacher seeing its own draw of the ``augment`` perturbation;
- updates the teacher after each optimizer step.

The teacher's weights never receive gradients.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

__all__ = [
    "MeanTeacher",
    "consistency_loss",
    "ema_update",
    "ramped_weight",
    "sigmoid_rampup",
]

CONSISTENCY_LOSSES = ("mse", "kl")


def sigmoid_rampup(current, length):
    """Ramp-up factor ``exp(-5 (1 - x)^2)`` with ``x = clip(current / length, 0, 1)``.

    Returns 1 when ``length`` is 0 (no ramp-up).

    Examples
    --------
    >>> from skssl.deep.teacher import sigmoid_rampup
    >>> round(sigmoid_rampup(0, 5), 4), sigmoid_rampup(5, 5), sigmoid_rampup(3, 0)
    (0.0067, 1.0, 1.0)
    """
    if length <= 0:
        return 1.0
    x = min(max(current / length, 0.0), 1.0)
    return float(math.exp(-5.0 * (1.0 - x) ** 2))


def ramped_weight(weight, epoch, start, length):
    """``weight * sigmoid_rampup(epoch - start, length)`` from ``start`` on, else 0.

    Examples
    --------
    >>> from skssl.deep.teacher import ramped_weight
    >>> ramped_weight(10.0, 4, 5, 5), ramped_weight(10.0, 10, 5, 5)
    (0.0, 10.0)
    """
    if epoch < start:
        return 0.0
    return weight * sigmoid_rampup(epoch - start, length)


def ema_update(teacher, student, rate):
    """``teacher <- rate * teacher + (1 - rate) * student``; buffers are copied.

    Examples
    --------
    >>> import torch
    >>> from skssl.deep.teacher import ema_update
    >>> t, s = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    >>> _ = t.weight.data.fill_(1.0), s.weight.data.fill_(3.0)
    >>> ema_update(t, s, 0.75)
    >>> t.weight.detach().item()
    1.5
    """
    with torch.no_grad():
        for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
            t.mul_(rate).add_(s.detach(), alpha=1.0 - rate)
        for t, s in zip(teacher.buffers(), student.buffers(), strict=True):
            t.copy_(s)


def consistency_loss(student_proba, teacher_proba, kind="mse"):
    """Consistency between the student's and the teacher's class probabilities.

    ``"mse"``: ``mean_i ||p_i - q_i||^2`` (the squared distance of the two
    softmax outputs, Tarvainen and Valpola 2017); ``"kl"``: ``mean_i KL(q_i ||
    p_i)``. No gradient flows into the teacher.

    Parameters
    ----------
    student_proba, teacher_proba : Tensor of shape (batch, n_classes)
    kind : {"mse", "kl"}, default="mse"

    Returns
    -------
    loss : Tensor of shape ()

    Examples
    --------
    >>> import torch
    >>> from skssl.deep.teacher import consistency_loss
    >>> p, q = torch.tensor([[0.5, 0.5]]), torch.tensor([[1.0, 0.0]])
    >>> float(consistency_loss(p, p)), float(consistency_loss(p, q))
    (0.0, 0.5)
    """
    q = teacher_proba.detach()
    if kind == "mse":
        return ((student_proba - q) ** 2).sum(dim=1).mean()
    if kind == "kl":
        eps = torch.finfo(student_proba.dtype).tiny
        log_p = torch.log(student_proba.clamp_min(eps))
        return F.kl_div(log_p, q, reduction="batchmean")
    raise ValueError(
        f"consistency loss {kind!r} is not supported; choose one of "
        f"{CONSISTENCY_LOSSES}."
    )


@dataclass
class MeanTeacher:
    """Settings and step count of a Mean Teacher.

    Parameters
    ----------
    decay : float, default=0.99
        EMA decay ``alpha``; step ``t`` uses ``min(1 - 1 / (t + 1), alpha)``, so
        the early teacher follows the student closely instead of averaging in
        its random initialization.
    weight : float, default=1.0
        Weight of the consistency loss at the end of the ramp-up.
    rampup : int, default=5
        Epochs of the sigmoid ramp-up ``exp(-5 (1 - epoch / rampup)^2)``.
    loss : {"mse", "kl"}, default="mse"
        See :func:`consistency_loss`.
    start_epoch : int, default=0
        Epoch (counted from 0) at which the ramp-up starts.
    predict_with : {"student", "teacher"}, default="student"
        Which network's outputs ``predict`` and ``predict_proba`` return.
    steps : int, default=0
        EMA updates done so far.

    Examples
    --------
    >>> import torch
    >>> from skssl.deep.teacher import MeanTeacher
    >>> student = torch.nn.Linear(2, 2)
    >>> mt = MeanTeacher(decay=0.99, weight=10.0, rampup=5)
    >>> teacher = mt.build(student)
    >>> any(p.requires_grad for p in teacher.parameters())
    False
    >>> mt.update(teacher, student)  # t = 1: rate min(1/2, 0.99)
    >>> mt.steps, mt.weight_at(5)
    (1, 10.0)
    """

    decay: float = 0.99
    weight: float = 1.0
    rampup: int = 5
    loss: str = "mse"
    start_epoch: int = 0
    predict_with: str = "student"
    steps: int = 0

    def build(self, student):
        """A frozen copy of ``student`` to serve as the teacher."""
        return copy.deepcopy(student).requires_grad_(False)

    def update(self, teacher, student):
        """One EMA step of ``teacher`` towards ``student``."""
        self.steps += 1
        ema_update(teacher, student, min(1.0 - 1.0 / (self.steps + 1), self.decay))

    def weight_at(self, epoch):
        """The consistency weight in epoch ``epoch`` (counted from 0)."""
        return ramped_weight(self.weight, epoch, self.start_epoch, self.rampup)

    def consistency(self, student_proba, teacher_proba):
        """:func:`consistency_loss` with this teacher's ``loss``."""
        return consistency_loss(student_proba, teacher_proba, self.loss)
