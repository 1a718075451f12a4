"""The Mean Teacher piece and the augmentations."""

import copy
import pickle

import numpy as np
import pytest
import torch

from skssl.deep import GaussianNoise, MeanTeacher, RandomShift
from skssl.deep.teacher import consistency_loss, ema_update, sigmoid_rampup


def test_consistency_mse_closed_form_and_gradient():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    t = torch.tensor([[0.0, 0.0], [0.0, 0.0]], requires_grad=True)
    p, q = torch.softmax(s, 1), torch.softmax(t, 1)
    loss = consistency_loss(p, q)
    expected = ((p.detach() - 0.5) ** 2).sum(1).mean()
    assert float(loss.detach()) == pytest.approx(float(expected))
    loss.backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None  # the teacher receives no gradient


def test_consistency_kl_closed_form():
    p = torch.tensor([[0.25, 0.75]])
    q = torch.tensor([[0.5, 0.5]])
    expected = 0.5 * np.log(0.5 / 0.25) + 0.5 * np.log(0.5 / 0.75)
    assert float(consistency_loss(p, q, "kl")) == pytest.approx(expected)
    assert float(consistency_loss(q, q, "kl")) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="'l1'"):
        consistency_loss(p, q, "l1")


def test_sigmoid_rampup():
    assert sigmoid_rampup(0, 10) == pytest.approx(np.exp(-5.0))
    assert sigmoid_rampup(10, 10) == 1.0
    assert sigmoid_rampup(20, 10) == 1.0
    assert sigmoid_rampup(0, 0) == 1.0
    values = [sigmoid_rampup(t, 10) for t in range(11)]
    assert values == sorted(values)


def test_ema_update_is_exact():
    torch.manual_seed(0)
    student = torch.nn.Linear(3, 2)
    teacher = copy.deepcopy(student)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    before = [p.clone() for p in teacher.parameters()]
    ema_update(teacher, student, 0.9)
    for t, b, s in zip(teacher.parameters(), before, student.parameters(), strict=True):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * s)


def test_mean_teacher_rate_starts_small_then_reaches_decay():
    student = torch.nn.Linear(1, 1, bias=False)
    mt = MeanTeacher(decay=0.99)
    teacher = mt.build(student)
    rates = []
    for _ in range(200):
        with torch.no_grad():
            teacher.weight.fill_(0.0)
            student.weight.fill_(1.0)
        mt.update(teacher, student)
        rates.append(1.0 - float(teacher.weight.detach()))
    # alpha_t = min(1 - 1 / (t + 1), alpha): 1/2, 2/3, ... then 0.99.
    assert rates[0] == pytest.approx(0.5) and rates[1] == pytest.approx(2 / 3)
    assert rates[-1] == pytest.approx(0.99)
    assert mt.steps == 200


def test_mean_teacher_weight_schedule():
    mt = MeanTeacher(weight=10.0, rampup=4, start_epoch=2)
    assert mt.weight_at(0) == mt.weight_at(1) == 0.0
    assert mt.weight_at(2) == pytest.approx(10 * np.exp(-5.0))
    assert mt.weight_at(6) == mt.weight_at(60) == 10.0


def test_teacher_never_receives_gradients():
    student = torch.nn.Linear(3, 2)
    teacher = MeanTeacher().build(student)
    x = torch.randn(4, 3)
    loss = consistency_loss(torch.softmax(student(x), 1), torch.softmax(teacher(x), 1))
    loss.backward()
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())


def test_gaussian_noise_and_random_shift():
    torch.manual_seed(0)
    x = torch.zeros(2000, 3)
    assert float(GaussianNoise(0.2)(x).std()) == pytest.approx(0.2, rel=0.05)
    assert torch.equal(GaussianNoise(0.0)(x), x)
    seq = torch.arange(10.0).repeat(500, 1)
    shifted = RandomShift(max_shift=2, std=0.0)(seq)
    offsets = (shifted[:, 0] - seq[:, 0]) % 10
    assert set(offsets.long().tolist()) == {0, 1, 2, 8, 9}
    assert torch.equal(torch.sort(shifted, 1).values, seq)
    restored = pickle.loads(pickle.dumps(RandomShift(4, 0.1)))
    assert (restored.max_shift, restored.std) == (4, 0.1)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: GaussianNoise(-1.0), "std=-1.0"),
        (lambda: RandomShift(max_shift=1.5), "max_shift=1.5"),
        (lambda: RandomShift(std="x"), "std='x'"),
    ],
)
def test_augment_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()
