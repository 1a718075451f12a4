import copy

import pytest
import torch

from skssl.deep.base import _ema_update
from skssl.deep.losses import sigmoid_rampup, softmax_mse_loss, weighted_mean


def test_weighted_mean_counts_zero_weight_rows():
    losses = torch.tensor([2.0, 4.0, 6.0])
    weights = torch.tensor([1.0, 0.5, 0.0])
    assert float(weighted_mean(losses, weights)) == pytest.approx((2 + 2) / 3)


def test_softmax_mse_closed_form_and_gradient():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    t = torch.tensor([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)
    loss = softmax_mse_loss(s, t)
    p = torch.softmax(s.detach(), 1)
    expected = ((p - 0.5) ** 2).sum(1).mean()
    assert float(loss.detach()) == pytest.approx(float(expected))
    loss.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None  # the teacher receives no gradient
    # Invariant to adding a constant to the logits.
    shifted = softmax_mse_loss(s.detach() + 3.0, t.detach())
    assert float(shifted) == pytest.approx(float(loss.detach()))


def test_sigmoid_rampup():
    assert sigmoid_rampup(0, 10) == pytest.approx(torch.exp(torch.tensor(-5.0)).item())
    assert sigmoid_rampup(10, 10) == 1.0
    assert sigmoid_rampup(20, 10) == 1.0
    assert sigmoid_rampup(0, 0) == 1.0
    values = [sigmoid_rampup(t, 10) for t in range(11)]
    assert values == sorted(values)


def test_ema_update():
    torch.manual_seed(0)
    student = torch.nn.Linear(3, 2)
    teacher = copy.deepcopy(student)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    before = [p.clone() for p in teacher.parameters()]
    _ema_update(teacher, student, 0.9)
    for t, b, s in zip(teacher.parameters(), before, student.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * s)
