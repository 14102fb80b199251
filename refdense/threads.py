"""Torch's CPU thread count for one block of code: :func:`torch_threads`.

Floating-point sums on the CPU can differ in their last bits between thread counts, and small
models gain little from a second thread; the places that fix the count for a while (the demo, a
run of experiments, the synthetic cache's prompt embeddings, the course's evidence runs) set it
here, and the caller's setting comes back afterwards, also when the block raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch intra-op threads (``torch.set_num_threads``), then
    restore the previous count, also on an exception. ``None`` leaves torch's setting alone."""
    if count is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
