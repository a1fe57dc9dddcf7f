"""Shared fixtures: torch's intra-op thread count for a test module, restored afterwards."""
import pytest
import torch


def _threads(k):
    before = torch.get_num_threads()
    torch.set_num_threads(k)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny problems: extra torch threads only contend on a shared machine."""
    yield from _threads(1)


@pytest.fixture
def two_torch_threads():
    """Two threads: the fused path then runs two workers on tiled data."""
    yield from _threads(2)
