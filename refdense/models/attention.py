"""Attention with a learnable relative-position bias (PAT, Sardari et al. 2023), and cross-attention.

Layout is channels-last: a batch of sequences is ``(B, N, D)``; ``mask`` is ``(B, N)`` bool, True on
valid positions. Every attention here is a key-padding attention: a padded key gets ``-inf`` before
the softmax, so it receives zero weight. A query row always has at least one valid key (the models
reject an all-padded sequence), so no row of the softmax is undefined and padded queries produce
finite (meaningless) outputs rather than NaN.

Position bias ``S`` (``docs/METHOD.md``, "PAT's position bias"). The score of query ``i`` against key ``j`` is
``(q_i . k_j + S[i, j]) / sqrt(head_dim)``: the bias is added *before* the scaling, as in PAT. ``S`` is
built from one table ``E`` per attention, shared by the heads, initialised ``N(0, 1)``:

``position="pat"`` (faithful to the published PAT code). PAT builds ``S`` with the "skew" trick of
the Music Transformer but without its causal mask. With ``M = max_len`` table rows the effective
bias is, for query ``i`` and key ``j``::

    j <= i      S[i, j] = q_i     . E[M - 1 - (i - j)]
    j == i + 1  S[i, j] = 0
    j >= i + 2  S[i, j] = q_{i+1} . E[M - N + j - i - 2]     (the NEXT query's row)

where ``N`` is the length the bias is built for. The reference builds it for the length of the tensor
it is given, so for ``N < M`` its third case shifts with the amount of padding. We always build it
for ``N = M`` (as if every sequence were padded to ``max_len``; the third case reads
``E[j - i - 2]``). For full windows (``N = M``: every training window of the paper, T = 256) this is
exactly the reference; for shorter sequences it makes the output independent of how much padding a
batch carries, and makes a short last window of a video behave like the padded windows seen in
training. A sequence longer than ``max_len`` is an error, as in the reference.

``position="relative"`` (clean, bidirectional). A table ``R`` of ``2 M - 1`` rows indexed by the
signed distance: ``S[i, j] = q_i . R[clip(i - j, -(M - 1), M - 1) + M - 1]``. It depends on ``i - j``
only, so attention is translation-equivariant and any length works; distances beyond ``M - 1`` share
the last row of their side (clamping).
"""

from __future__ import annotations

import math

import torch
from torch import nn

POSITION_MODES = ("pat", "relative")


def check_position_mode(position: str) -> None:
    """Raise ValueError unless ``position`` is one of ``POSITION_MODES``."""
    if position not in POSITION_MODES:
        raise ValueError(f"position must be one of {POSITION_MODES}, found {position!r}")


def position_table_rows(position: str, max_len: int) -> int:
    """Number of rows of the bias table: ``max_len`` for ``"pat"``, ``2 max_len - 1`` for ``"relative"``."""
    check_position_mode(position)
    return max_len if position == "pat" else 2 * max_len - 1


def position_bias_index(
    length: int, max_len: int, position: str, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each bias entry ``S[i, j]`` is read from, for a sequence of ``length`` positions.

    With ``QE[i, r] = q_i . E[r]`` (query rows against table rows), the bias is
    ``S[i, j] = QE[query[i, j], row[i, j]] * keep[i, j]``.

    Returns:
        query: ``(length, length)`` long, which query's projection is used (``i``, or ``i + 1`` in
            the third case of the ``pat`` mode).
        row: ``(length, length)`` long, which table row is used.
        keep: ``(length, length)`` bool, False where the bias is zero (``j == i + 1`` in ``pat`` mode).
    """
    check_position_mode(position)
    if position == "pat" and length > max_len:
        raise ValueError(
            f"position='pat' supports sequences of at most max_len={max_len} positions, found {length}; "
            "use position='relative' or predict_full_video, which cuts a video into windows"
        )
    i = torch.arange(length, device=device).unsqueeze(1)
    j = torch.arange(length, device=device).unsqueeze(0)
    if position == "relative":
        distance = (i - j).clamp(-(max_len - 1), max_len - 1)
        return i.expand(length, length), distance + max_len - 1, torch.ones(length, length, dtype=torch.bool, device=device)
    past = j <= i  # keys at or before the query
    query = torch.where(past, i, (i + 1).clamp(max=length - 1))
    row = torch.where(past, max_len - 1 - (i - j), (j - i - 2).clamp(min=0))
    keep = j != i + 1
    return query, row, keep


def position_bias(q: torch.Tensor, table: torch.Tensor, position: str) -> torch.Tensor:
    """The relative-position bias ``S`` for queries ``q``.

    Args:
        q: ``(B, H, N, d)`` queries of each head.
        table: ``(rows, d)`` bias table ``E`` (``rows = position_table_rows(position, max_len)``).
        position: ``"pat"`` or ``"relative"`` (see the module docstring).

    Returns:
        ``(B, H, N, N)`` bias, to add to ``q k^T`` before the ``1 / sqrt(d)`` scaling.
    """
    rows = table.shape[0]
    max_len = rows if position == "pat" else (rows + 1) // 2
    n = q.shape[-2]
    query, row, keep = position_bias_index(n, max_len, position, device=q.device)
    qe = q @ table.transpose(0, 1).to(q.dtype)  # (B, H, N, rows): every query against every row
    bias = qe[:, :, query, row]  # (B, H, N, N)
    return bias.masked_fill(~keep, 0.0)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(B, N, heads * d)`` -> ``(B, heads, N, d)``."""
    b, n, _ = x.shape
    return x.view(b, n, heads, -1).transpose(1, 2)


def attention_weights(
    q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``softmax((q k^T + bias) / sqrt(d))`` with padded keys masked.

    Args:
        q: ``(B, H, N, d)``; k: ``(B, H, M, d)``; key_mask: ``(B, M)`` bool, True on valid keys (at
            least one per batch element); bias: ``(B, H, N, M)`` or None.

    Returns:
        ``(B, H, N, M)`` weights; each row sums to 1 and is zero on padded keys.
    """
    scores = q @ k.transpose(-1, -2)
    if bias is not None:
        scores = scores + bias
    scores = (scores / math.sqrt(q.shape[-1])).masked_fill(~key_mask[:, None, None, :], float("-inf"))
    return scores.softmax(dim=-1)


class PositionAwareSelfAttention(nn.Module):
    """Multi-head self-attention with PAT's learnable relative-position bias.

    ``out = Wo(softmax((q k^T + S) / sqrt(head_dim)) v)`` with ``q = Wq x``, ``(k, v) = Wkv x``, padded
    keys masked. Parameters: ``to_q`` (dim -> heads*head_dim), ``to_kv`` (dim -> 2*heads*head_dim),
    ``to_out`` (heads*head_dim -> dim), all with bias, and ``position_table`` (see the module
    docstring), shared by the heads.

    Args:
        dim: model width D.
        heads: number of heads H.
        head_dim: width of one head d.
        max_len: longest sequence (``pat``); in ``relative`` mode, distances up to ``max_len - 1``
            have their own table row.
        position: ``"pat"`` or ``"relative"``.
    """

    def __init__(self, dim: int, heads: int, head_dim: int, max_len: int, position: str) -> None:
        super().__init__()
        self.heads, self.position = heads, position
        inner = heads * head_dim
        self.to_q = nn.Linear(dim, inner)
        self.to_kv = nn.Linear(dim, 2 * inner)
        self.to_out = nn.Linear(inner, dim)
        self.position_table = nn.Parameter(torch.randn(position_table_rows(position, max_len), head_dim))

    def attention(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention weights ``(B, H, N, N)`` and values ``(B, H, N, d)`` for ``x`` ``(B, N, dim)``, ``mask`` ``(B, N)``."""
        q = split_heads(self.to_q(x), self.heads)
        k, v = (split_heads(t, self.heads) for t in self.to_kv(x).chunk(2, dim=-1))
        return attention_weights(q, k, mask, position_bias(q, self.position_table, self.position)), v

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, N, dim)``, ``mask`` ``(B, N)`` bool -> ``(B, N, dim)``."""
        weights, v = self.attention(x, mask)
        return self.to_out((weights @ v).transpose(1, 2).flatten(2))


class CrossAttention(nn.Module):
    """Multi-head cross-attention (RefDense Eq. 6-7): queries from ``x``, keys and values from ``context``.

    ``out = Wo(softmax(q k^T / sqrt(head_dim)) v)``, ``q = Wq x``, ``(k, v) = Wkv context``. No position
    bias: the query sequence may be a coarse branch of length T/s while the context has length T.
    Padded context positions are masked.
    """

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads = heads
        inner = heads * head_dim
        self.to_q = nn.Linear(dim, inner)
        self.to_kv = nn.Linear(dim, 2 * inner)
        self.to_out = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, N, dim)``, ``context`` ``(B, T, dim)``, ``context_mask`` ``(B, T)`` -> ``(B, N, dim)``."""
        q = split_heads(self.to_q(x), self.heads)
        k, v = (split_heads(t, self.heads) for t in self.to_kv(context).chunk(2, dim=-1))
        weights = attention_weights(q, k, context_mask)
        return self.to_out((weights @ v).transpose(1, 2).flatten(2))
