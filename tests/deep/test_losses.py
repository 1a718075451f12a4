import pytest
import torch

from skssl.deep.losses import weighted_mean


def test_weighted_mean_counts_zero_weight_rows():
    losses = torch.tensor([2.0, 4.0, 6.0])
    weights = torch.tensor([1.0, 0.5, 0.0])
    assert float(weighted_mean(losses, weights)) == pytest.approx((2 + 2) / 3)
