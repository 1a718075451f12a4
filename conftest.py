"""Test configuration shared by tests/ and the doctests under skssl/."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Run the tiny networks of the tests and doctests on one thread.

    On a small shared machine torch's thread team spin-waits for descheduled
    workers, which makes micro-batches up to 20x slower; one thread avoids it.
    The previous setting is restored after each test.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
