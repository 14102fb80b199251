"""``refdense.threads.torch_threads``: torch's thread count for a block, the caller's count after."""

import pytest
import torch

from refdense.threads import torch_threads


@pytest.fixture
def three_threads():
    """Start from three torch threads (a count no test sets on its own), the suite's count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


def test_the_count_holds_inside_and_the_previous_one_comes_back(three_threads):
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == three_threads


def test_the_previous_count_comes_back_after_an_exception(three_threads):
    with pytest.raises(RuntimeError, match="inside"), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("inside")
    assert torch.get_num_threads() == three_threads


def test_none_leaves_the_setting_alone(three_threads):
    with torch_threads(None):
        assert torch.get_num_threads() == three_threads
        torch.set_num_threads(2)  # the block's own change is not undone: nothing was set
    assert torch.get_num_threads() == 2
