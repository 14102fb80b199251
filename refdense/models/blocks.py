"""Building blocks of PAT and RefDense: masked temporal convolutions, the position-aware block,
the branches of the multi-scale trunk and the linear up-sampling of the mixer.

Padding never leaks into valid positions: every temporal convolution zeroes the padded positions of
its input first (``MaskedConv1d``), attention masks padded keys, and the up-sampling reads only the
valid coarse positions of each sequence. Hence a sequence gives the same valid outputs alone or
padded inside a longer batch (tested). Masks must be "valid prefix, then padding".
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from refdense.models.attention import CrossAttention, PositionAwareSelfAttention
from refdense.models.config import CROSS_ATTENTION_PLACEMENTS, ModelConfig


class MaskedConv1d(nn.Conv1d):
    """``nn.Conv1d`` on channels-last input that zeroes padded positions before convolving.

    ``forward(x (B, T, C_in), mask (B, T)) -> (B, T', C_out)`` with ``T' = ceil(T / stride)`` for
    ``kernel_size = 3, padding = 1`` (or ``kernel_size = 2 p + 1, padding = p``). A padded input
    position then looks exactly like the convolution's own zero padding at the end of a sequence.

    The parameters are those of ``nn.Conv1d`` (zero padding); the computation stays in the
    ``(B, T, C)`` layout, with no transposed copies:

    - a dense convolution (``groups=1``) is one matrix product of the windows of ``x``
      (``(B, T', C_in * kernel)``, made by ``unfold``) with the weight, whose backward is two matrix
      products: about twice as fast on a CPU as oneDNN's convolution backward;
    - a grouped (depthwise) one runs as a 2-D convolution of ``x`` seen as a channels-last
      ``(B, C_in, 1, T)`` image, which oneDNN and cuDNN read and write in that layout.
    """

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        x = torch.where(mask.unsqueeze(-1), x, 0.0)  # one pass (masked_fill is a copy, then a fill)
        if isinstance(self.padding, str):  # nn.Conv1d's "same" / "valid": the windows below need a number
            raise ValueError(f"MaskedConv1d needs an integer padding, found {self.padding!r}")
        (kernel,), (stride,), (padding,), (dilation,) = (
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
        )
        if self.groups == 1:
            span = dilation * (kernel - 1) + 1
            windows = F.pad(x, (0, 0, padding, padding)).unfold(1, span, stride)[
                ..., ::dilation
            ]  # (B, T', C_in, k)
            return F.linear(windows.flatten(2), self.weight.flatten(1), self.bias)
        image = x.transpose(1, 2).unsqueeze(2)  # (B, C_in, 1, T) with channels-last strides: a view
        out = F.conv2d(
            image, self.weight.unsqueeze(2), self.bias, (1, stride), (0, padding), (1, dilation), self.groups
        )
        return out.squeeze(2).transpose(1, 2)


def downsample_mask(mask: torch.Tensor, stride: int) -> torch.Tensor:
    """Mask of a stride-``stride`` branch: coarse position ``p`` is centred on input ``stride * p``.

    ``(B, T)`` -> ``(B, ceil(T / stride))``; a valid prefix of length ``n`` becomes one of ``ceil(n / stride)``.
    """
    return mask[:, ::stride]


def upsample_linear(x: torch.Tensor, stride: int, length: int, mask: torch.Tensor) -> torch.Tensor:
    """Linear up-sampling by ``stride`` (``align_corners=False``) that reads valid positions only.

    Output ``t`` reads the source coordinate ``(t + 0.5) / stride - 0.5``, clamped to
    ``[0, n_b - 1]`` where ``n_b`` is the number of valid coarse positions of sequence ``b``. For a
    fully valid input with ``length = stride * N`` this is exactly
    ``F.interpolate(mode="linear", align_corners=False)`` (the PAT mixer); with padding it equals what
    the same sequence alone would give.

    Args:
        x: ``(B, N, D)`` coarse features; stride: the up-sampling factor; length: output length T;
        mask: ``(B, N)`` valid coarse positions (a valid prefix).

    Returns:
        ``(B, length, D)``.
    """
    # coordinates in float32 whatever x's dtype: bf16 cannot even represent every index up to 256
    last = (mask.sum(dim=1, keepdim=True) - 1).clamp(min=0)  # (B, 1) last valid coarse position
    t = torch.arange(length, device=x.device, dtype=torch.float32).unsqueeze(0)
    source = torch.minimum(((t + 0.5) / stride - 0.5).clamp(min=0.0), last.float())  # (B, length)
    low = source.floor()
    weight = (source - low).unsqueeze(-1).to(x.dtype)
    low = low.long()
    high = torch.minimum(low + 1, last)

    def rows(index: torch.Tensor) -> torch.Tensor:  # (B, length) -> (B, length, D)
        return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))

    return rows(low) * (1 - weight) + rows(high) * weight


class LocalRelational(nn.Module):
    """PAT's local part: ``Linear(dim -> hidden) -> depthwise Conv1d(k3) -> GELU -> Linear(hidden -> dim)``.

    ``forward(x (B, T, dim), mask (B, T)) -> (B, T, dim)``; padded positions are zeroed before the
    depthwise convolution.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.expand = nn.Linear(dim, hidden)
        self.depthwise = MaskedConv1d(hidden, hidden, kernel_size=3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.project = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.project(self.act(self.depthwise(self.expand(x), mask)))


class ResidualCrossAttention(nn.Module):
    """RefDense's cross-attention step (Eq. 6-7), pre-norm with a residual like the rest of a block::

        x = x + CrossAttn(LN(x), context)

    ``forward(x (B, N, dim), context (B, T, dim), context_mask (B, T)) -> (B, N, dim)``: the queries
    come from ``x`` (any length ``N``, a coarse branch has ``T / s``), keys and values from the
    full-length ``context``.
    """

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = CrossAttention(dim, heads, head_dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None, context_mask: torch.Tensor | None
    ) -> torch.Tensor:
        if context is None or context_mask is None:
            raise ValueError(
                "this branch cross-attends to the entity features: pass context and context_mask"
            )
        return x + self.attn(self.norm(x), context, context_mask)


class PositionAwareBlock(nn.Module):
    """One PAT block, pre-norm with residuals, optionally with RefDense's cross-attention::

        x = x + SelfAttn(LN(x))                       # position-aware, padded keys masked
        x = x + CrossAttn(LN(x), context)             # only with cross_attention=True
        x = x + Local(LN(x))

    The cross-attention inside every block is the ``cross_attention_placement="block"`` variant of
    RefDense; the default places one cross-attention after the whole stack (see ``Branch``).

    Args:
        dim, heads, head_dim, max_len, position: as ``PositionAwareSelfAttention``.
        local_hidden: width of the local part (4096 in PAT).
        cross_attention: add the cross-attention step.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        head_dim: int,
        max_len: int,
        position: str,
        local_hidden: int,
        cross_attention: bool = False,
    ) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = PositionAwareSelfAttention(dim, heads, head_dim, max_len, position)
        self.cross = ResidualCrossAttention(dim, heads, head_dim) if cross_attention else None
        self.local_norm = nn.LayerNorm(dim)
        self.local = LocalRelational(dim, local_hidden)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x`` ``(B, N, dim)``, ``mask`` ``(B, N)``; ``context`` ``(B, T, dim)`` and ``context_mask``
        ``(B, T)`` are required with cross-attention and ignored without. Returns ``(B, N, dim)``."""
        x = x + self.attn(self.attn_norm(x), mask)
        if self.cross is not None:
            x = self.cross(x, context, context_mask)
        return x + self.local(self.local_norm(x), mask)


def init_pat_weights(module: nn.Module) -> None:
    """The published PAT initialisation of one module; use as ``branch.apply(init_pat_weights)``.

    ``nn.Linear``: weight truncated normal (std 0.02, cut at +-2), bias 0. ``nn.LayerNorm``: weight 1,
    bias 0. ``nn.Conv1d``: weight normal(0, sqrt(2 / fan_out)) with ``fan_out = kernel * out / groups``,
    bias 0. Other parameters (the position tables, N(0, 1)) are left alone. The published code
    applies it to its fine and coarse modules only: the mixer and the heads keep PyTorch's defaults.
    """
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02, a=-2.0, b=2.0)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
    elif isinstance(module, nn.Conv1d):
        fan_out = module.kernel_size[0] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
    else:
        return
    if module.bias is not None:
        nn.init.zeros_(module.bias)


class Branch(nn.Module):
    """A branch of the trunk: token projection, ``blocks`` position-aware blocks, final LayerNorm.

    Widths, heads, ``max_len``, position mode and local width come from ``cfg``.

    ``MaskedConv1d(in_dim -> dim, k3, stride, pad 1) -> LN -> blocks -> LN``. With ``stride = 1`` it is
    PAT's fine branch (and RefDense's Action-Entity temporal block); with ``stride = s`` a coarse
    branch, whose blocks see ``ceil(T / s)`` positions and whose position tables have
    ``max_len // s`` rows. Initialised as the published PAT (``init_pat_weights``).

    ``cross_attention`` (RefDense's Action-Motion, Eq. 6-7, ``Cross-attn(Self-att(F), F_ent)``):
    ``"branch"`` adds ONE ``ResidualCrossAttention`` after the stack of blocks, before the final
    LayerNorm; ``"block"`` adds one inside every block; None adds none.

    ``forward(x (B, T, in_dim), mask (B, T), context=None, context_mask=None) -> (B, ceil(T/stride), dim)``;
    ``context`` ``(B, T, dim)`` with ``context_mask`` ``(B, T)`` is what the branch cross-attends to.
    """

    def __init__(
        self, in_dim: int, cfg: ModelConfig, *, stride: int, blocks: int, cross_attention: str | None = None
    ) -> None:
        super().__init__()
        if cross_attention is not None and cross_attention not in CROSS_ATTENTION_PLACEMENTS:
            raise ValueError(
                f"cross_attention must be None or one of {CROSS_ATTENTION_PLACEMENTS}, found {cross_attention!r}"
            )
        self.stride = stride
        self.project = MaskedConv1d(in_dim, cfg.dim, kernel_size=3, stride=stride, padding=1)
        self.project_norm = nn.LayerNorm(cfg.dim)
        self.blocks = nn.ModuleList(
            PositionAwareBlock(
                cfg.dim,
                cfg.heads,
                cfg.head_dim,
                cfg.max_len // stride,
                cfg.position,
                cfg.local_hidden,
                cross_attention=cross_attention == "block",
            )
            for _ in range(blocks)
        )
        self.cross = (
            ResidualCrossAttention(cfg.dim, cfg.heads, cfg.head_dim) if cross_attention == "branch" else None
        )
        self.norm = nn.LayerNorm(cfg.dim)
        self.apply(init_pat_weights)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.project_norm(self.project(x, mask))
        mask = downsample_mask(mask, self.stride)
        for block in self.blocks:
            x = block(x, mask, context, context_mask)
        if self.cross is not None:
            x = self.cross(x, context, context_mask)
        return self.norm(x)


class MultiScaleTrunk(nn.Module):
    """PAT's multi-scale trunk (paper Eq. 2-3; Eq. 6-7 with ``cross_attention``).

    A fine branch on the input, coarse branches (one per stride of ``cfg.strides``) each fed the
    fine branch's output, all with ``cfg.blocks`` blocks, and the mixer: a ``MaskedConv1d(dim, dim,
    k3)`` per branch, the coarse outputs linearly up-sampled to T and summed.

    ``forward(x (B, T, in_dim), mask (B, T), context=None, context_mask=None)`` returns
    ``(fine, coarse)``, both ``(B, T, dim)``: the fine branch after its mixer convolution, and the
    sum of the up-sampled coarse branches after theirs. They are returned apart, as the published
    mixer does: PAT's fine head reads ``fine``, its coarse head ``coarse`` only.

    Args:
        in_dim: width of the input features.
        cfg: the model configuration.
        cross_attention: None, ``"branch"`` or ``"block"``, passed to every ``Branch``.
    """

    def __init__(self, in_dim: int, cfg: ModelConfig, *, cross_attention: str | None = None) -> None:
        super().__init__()
        self.fine = Branch(in_dim, cfg, stride=1, blocks=cfg.blocks, cross_attention=cross_attention)
        self.coarse = nn.ModuleList(
            Branch(cfg.dim, cfg, stride=s, blocks=cfg.blocks, cross_attention=cross_attention)
            for s in cfg.strides
        )
        self.mix_fine = MaskedConv1d(cfg.dim, cfg.dim, kernel_size=3, padding=1)
        self.mix_coarse = nn.ModuleList(
            MaskedConv1d(cfg.dim, cfg.dim, kernel_size=3, padding=1) for _ in cfg.strides
        )
        self.strides = tuple(cfg.strides)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        length = x.shape[1]
        fine_out = self.fine(x, mask, context, context_mask)
        coarse: torch.Tensor | None = None
        for branch, mix, stride in zip(self.coarse, self.mix_coarse, self.strides):
            coarse_mask = downsample_mask(mask, stride)
            mixed = mix(branch(fine_out, mask, context, context_mask), coarse_mask)
            upsampled = upsample_linear(mixed, stride, length, coarse_mask)
            coarse = upsampled if coarse is None else coarse + upsampled
        assert coarse is not None, "ModelConfig.strides is never empty"
        return self.mix_fine(fine_out, mask), coarse
