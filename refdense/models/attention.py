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

Both biases are built by the skew itself (one zero pad and a strided view of ``q E^T``), never by
gathering ``(B, H, N, N)`` entries: a gather's backward is a scatter, slow on every device.
``position_bias_index`` spells out which query and which row each entry reads (the definition the
tests check the skew against).

The attention itself runs through ``torch.nn.functional.scaled_dot_product_attention`` with one float
mask ``(B, H, N, M)`` (or ``(B, 1, 1, M)`` without a bias): the position bias, already divided by
``sqrt(head_dim)``, with ``-inf`` on padded keys. PyTorch then picks its fused kernel where one
applies: the flash kernel on the CPU without gradients (inference) or when the mask needs none
(cross-attention), the memory-efficient kernel on CUDA also with a learnable bias; its exact
reference ("math") implementation otherwise (training with a bias on the CPU).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

PositionMode = Literal["pat", "relative"]
POSITION_MODES = get_args(PositionMode)


def check_position_mode(position: str) -> None:
    """Raise ValueError unless ``position`` is one of ``POSITION_MODES``."""
    if position not in POSITION_MODES:
        raise ValueError(f"position must be one of {POSITION_MODES}, found {position!r}")


def position_table_rows(position: str, max_len: int) -> int:
    """Number of rows of the bias table: ``max_len`` for ``"pat"``, ``2 max_len - 1`` for ``"relative"``."""
    check_position_mode(position)
    return max_len if position == "pat" else 2 * max_len - 1


def _check_length(length: int, max_len: int, position: str) -> None:
    check_position_mode(position)
    if position == "pat" and length > max_len:
        raise ValueError(
            f"position='pat' supports sequences of at most max_len={max_len} positions, found {length}; "
            "use position='relative' or predict_full_video, which cuts a video into windows"
        )


def position_bias_index(
    length: int, max_len: int, position: str, device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each bias entry ``S[i, j]`` is read from, for a sequence of ``length`` positions.

    With ``QE[i, r] = q_i . E[r]`` (query rows against table rows), the bias is
    ``S[i, j] = QE[query[i, j], row[i, j]] * keep[i, j]``. ``position_bias`` computes exactly this
    without gathering; this function is its definition, for reading and testing.

    Returns:
        query: ``(length, length)`` long, which query's projection is used (``i``, or ``i + 1`` in
            the third case of the ``pat`` mode).
        row: ``(length, length)`` long, which table row is used.
        keep: ``(length, length)`` bool, False where the bias is zero (``j == i + 1`` in ``pat`` mode).
    """
    _check_length(length, max_len, position)
    i = torch.arange(length, device=device).unsqueeze(1)
    j = torch.arange(length, device=device).unsqueeze(0)
    if position == "relative":
        distance = (i - j).clamp(-(max_len - 1), max_len - 1)
        return (
            i.expand(length, length),
            distance + max_len - 1,
            torch.ones(length, length, dtype=torch.bool, device=device),
        )
    past = j <= i  # keys at or before the query
    query = torch.where(past, i, (i + 1).clamp(max=length - 1))
    row = torch.where(past, max_len - 1 - (i - j), (j - i - 2).clamp(min=0))
    keep = j != i + 1
    return query, row, keep


def _skew(padded: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """``S[..., i, j] = flat[start + i * (W - 1) + j]`` for ``i, j < length``, where ``flat`` is
    ``padded`` ``(..., rows, W)`` flattened over its last two dimensions (a view, no copy)."""
    width = padded.shape[-1] - 1
    flat = padded.flatten(-2)[..., start : start + length * width]
    return flat.unflatten(-1, (length, width))[..., :length]


def _distance_rows(table: torch.Tensor, length: int) -> torch.Tensor:
    """Rows of a ``relative`` table ``(2 M - 1, d)`` for the distances ``length - 1, ..., -(length - 1)``
    (clamped to ``+-(M - 1)``): ``(2 length - 1, d)``."""
    max_len = (table.shape[0] + 1) // 2
    extra = max(length - max_len, 0)  # distances beyond M - 1 repeat the last row of their side
    flipped = table.flip(0)  # row f holds distance M - 1 - f
    rows = torch.cat([flipped[:1].expand(extra, -1), flipped, flipped[-1:].expand(extra, -1)])
    start = max_len - length + extra
    return rows[start : start + 2 * length - 1]


def position_bias(q: torch.Tensor, table: torch.Tensor, position: str) -> torch.Tensor:
    """The relative-position bias ``S`` for queries ``q`` (see the module docstring).

    ``pat``: ``QE = q E^T`` ``(N, M)`` with a zero column on its left and a zero row below, read with
    a row stride of ``M``: ``S[i, j] = QE_padded[(i + 1) M + j]`` gives the three cases at once.
    ``relative``: ``QR = q R_w^T`` against the rows ``R_w`` of the distances ``N - 1`` down to
    ``-(N - 1)``, with a zero column on its right, read with a row stride of ``2 N - 1``.

    Args:
        q: ``(B, H, N, d)`` queries of each head.
        table: ``(rows, d)`` bias table ``E`` (``rows = position_table_rows(position, max_len)``).
        position: ``"pat"`` or ``"relative"``.

    Returns:
        ``(B, H, N, N)`` bias, to add to ``q k^T`` before the ``1 / sqrt(d)`` scaling.
    """
    rows, n = table.shape[0], q.shape[-2]
    if position == "pat":
        _check_length(n, rows, position)
        qe = q @ table.transpose(0, 1).to(q.dtype)  # (B, H, N, M): every query against every row
        return _skew(F.pad(qe, (1, 0, 0, 1)), start=rows, length=n)
    check_position_mode(position)
    qr = q @ _distance_rows(table, n).transpose(0, 1).to(
        q.dtype
    )  # (B, H, N, 2N - 1), distance N - 1 - column
    return _skew(F.pad(qr, (0, 1)), start=n - 1, length=n)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(B, N, heads * d)`` -> ``(B, heads, N, d)``."""
    b, n, _ = x.shape
    return x.view(b, n, heads, -1).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(B, heads, N, d)`` -> ``(B, N, heads * d)``."""
    return x.transpose(1, 2).flatten(2)


def float_mask(
    key_mask: torch.Tensor, dtype: torch.dtype, scaled_bias: torch.Tensor | None = None
) -> torch.Tensor:
    """The float mask added to ``q k^T / sqrt(d)``: ``scaled_bias`` (``bias / sqrt(d)``, or 0) with
    ``-inf`` on padded keys.

    Args:
        key_mask: ``(B, M)`` bool, True on valid keys; dtype: the mask's dtype (the queries');
        scaled_bias: ``(B, H, N, M)`` or None.

    Returns:
        ``(B, H, N, M)``, or ``(B, 1, 1, M)`` without a bias.
    """
    valid = key_mask[:, None, None, :]
    if scaled_bias is None:
        return torch.zeros(valid.shape, dtype=dtype, device=key_mask.device).masked_fill(
            ~valid, float("-inf")
        )
    return torch.where(
        valid, scaled_bias.to(dtype), float("-inf")
    )  # one pass (masked_fill copies, then fills)


def attention_weights(
    q: torch.Tensor, k: torch.Tensor, key_mask: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """``softmax((q k^T + bias) / sqrt(d))`` with padded keys masked, as explicit weights (to look at;
    the models' forward runs ``scaled_dot_product_attention``, which never forms them).

    Args:
        q: ``(B, H, N, d)``; k: ``(B, H, M, d)``; key_mask: ``(B, M)`` bool, True on valid keys (at
            least one per batch element); bias: ``(B, H, N, M)`` or None.

    Returns:
        ``(B, H, N, M)`` weights; each row sums to 1 and is zero on padded keys.
    """
    scale = q.shape[-1] ** -0.5
    scaled_bias = None if bias is None else bias * scale
    return (q @ k.transpose(-1, -2) * scale + float_mask(key_mask, q.dtype, scaled_bias)).softmax(dim=-1)


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

    def _queries_keys_values_mask(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``q, k, v`` ``(B, H, N, d)`` and the float mask ``(B, H, N, N)`` of ``float_mask``."""
        q = split_heads(self.to_q(x), self.heads)
        k, v = (split_heads(t, self.heads) for t in self.to_kv(x).chunk(2, dim=-1))
        # S / sqrt(d) = q (E / sqrt(d))^T, skewed: scaling the table costs nothing, the bias a pass
        scaled_bias = position_bias(q, self.position_table * q.shape[-1] ** -0.5, self.position)
        return q, k, v, float_mask(mask, q.dtype, scaled_bias)

    def attention(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention weights ``(B, H, N, N)`` and values ``(B, H, N, d)`` for ``x`` ``(B, N, dim)``, ``mask`` ``(B, N)``."""
        q, k, v, scores_mask = self._queries_keys_values_mask(x, mask)
        return (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5 + scores_mask).softmax(dim=-1), v

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, N, dim)``, ``mask`` ``(B, N)`` bool -> ``(B, N, dim)``."""
        q, k, v, scores_mask = self._queries_keys_values_mask(x, mask)
        return self.to_out(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=scores_mask)))


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
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=float_mask(context_mask, q.dtype))
        return self.to_out(merge_heads(out))
