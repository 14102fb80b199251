"""``ModelConfig``: every architecture and ablation of the paper as plain, YAML-serialisable fields."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from refdense.models.attention import PositionMode
from refdense.models.inputs import Stream
from refdense.models.registry import architecture, architectures
from refdense.schema import build, check_fields, require

#: Where RefDense's Action-Motion branches cross-attend to F_ent: once per branch after its blocks
#: (the default reading of Eq. 6-7) or inside every block (a variant).
CrossAttentionPlacement = Literal["branch", "block"]
CROSS_ATTENTION_PLACEMENTS = get_args(CrossAttentionPlacement)


@dataclass
class ModelConfig:
    """Hyper-parameters of a detector. Defaults are the Charades configuration of the paper.

    Attributes:
        arch: a registered architecture (:mod:`refdense.models.registry`): ``"refdense"`` (the
            paper's network), ``"pat"`` (the PAT backbone alone), ``"entity_only"`` (the Action-Entity
            sub-network alone predicting the actions, Table 3), ``"motion_only"`` (the Action-Motion
            sub-network alone, Table 3: without an entity stream there is nothing to cross-attend to,
            so it *is* PAT, on concatenated features by default).
        inputs: the stream a single-network architecture reads: ``"video"``, ``"image"`` or
            ``"concat"`` (channel concatenation of both); None picks the architecture's own
            (``Architecture.stream``). Must be None for ``refdense``, which reads video in
            Action-Motion and image in Action-Entity.
        position: ``"pat"`` (faithful skewed bias, sequences up to ``max_len``) or ``"relative"``
            (bidirectional, any length); see ``refdense.models.attention``.
        dim: model width D* (512).
        heads, head_dim: attention heads and their width (8 x 64).
        blocks: position-aware blocks per branch of the multi-scale trunk (3 Charades, 4 MultiTHUMOS).
        entity_blocks: blocks of the Action-Entity sub-network (1 in the paper).
        strides: strides of the coarse branches (2, 4, 8).
        max_len: training window T; the fine position table has ``max_len`` rows, the coarse one of
            stride s ``max_len // s`` (``2 * that - 1`` in ``relative`` mode).
        local_hidden: width of the local part of a block (4096).
        input_dropout: dropout on the input features (0.5).
        head_dropout: dropout inside PAT's coarse head, and on the features before the action head
            of ``refdense`` and ``entity_only`` (0.5).
        fine_weight: PAT's logit mix ``fine_weight * fine + (1 - fine_weight) * coarse`` (0.1
            Charades, 0.2 MultiTHUMOS); read by ``pat`` and ``motion_only``.
        cross_attention: Action-Motion cross-attends to F_ent (Eq. 6-7; Table 7 ablates it); read by
            ``refdense``.
        cross_attention_placement: ``"branch"`` (default): ONE cross-attention per branch, fine and
            coarse, after its stack of self-attention blocks: Eq. 6-7 wrap ``Self-att(F)``, the whole
            branch of Eq. 2-3. ``"block"``: one inside every block, after its self-attention (a
            variant, 12 cross-attentions instead of 4 in the Charades configuration). Keys and values
            come from the full-length F_ent in both. See ``docs/METHOD.md``.
        entity_head, motion_head: the auxiliary heads of Eq. 9 (training only: in eval mode they run
            when the forward is asked with ``auxiliary=True``); read by ``refdense``.
        fusion_kernel: kernel of the action head's 1D convolution (Eq. 8), odd; read by
            ``refdense`` and ``entity_only``.
    """

    arch: str = "refdense"
    inputs: Stream | None = None
    position: PositionMode = "pat"
    dim: int = 512
    heads: int = 8
    head_dim: int = 64
    blocks: int = 3
    entity_blocks: int = 1
    strides: list[int] = field(default_factory=lambda: [2, 4, 8])
    max_len: int = 256
    local_hidden: int = 4096
    input_dropout: float = 0.5
    head_dropout: float = 0.5
    fine_weight: float = 0.1
    cross_attention: bool = True
    cross_attention_placement: CrossAttentionPlacement = "branch"
    entity_head: bool = True
    motion_head: bool = True
    fusion_kernel: int = 1

    def __post_init__(self) -> None:
        check_fields(self)
        names = architectures()
        require(self, self.arch in names, "arch", f"one of {', '.join(map(repr, names))}")
        require(
            self,
            architecture(self.arch).stream is not None or self.inputs is None,
            "inputs",
            f"None for arch={self.arch!r} (it reads both streams its own way)",
        )
        for name in (
            "dim",
            "heads",
            "head_dim",
            "blocks",
            "entity_blocks",
            "max_len",
            "local_hidden",
            "fusion_kernel",
        ):
            require(self, getattr(self, name) >= 1, name, "a positive integer")
        require(self, self.fusion_kernel % 2 == 1, "fusion_kernel", "odd (same-length output)")
        require(self, len(self.strides) > 0, "strides", "a non-empty list of coarse strides")
        require(
            self,
            all(s >= 2 and self.max_len % s == 0 for s in self.strides),
            "strides",
            f"integers >= 2 that divide max_len={self.max_len}",
        )
        for name in ("input_dropout", "head_dropout"):
            require(self, 0.0 <= getattr(self, name) < 1.0, name, "in [0, 1)")
        require(self, 0.0 <= self.fine_weight <= 1.0, "fine_weight", "in [0, 1]")

    @property
    def stream(self) -> str | None:
        """The stream a single-network architecture reads (None for one that reads both its own way,
        as ``refdense``)."""
        default = architecture(self.arch).stream
        return None if default is None else self.inputs or default

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelConfig:
        """Build from a mapping (e.g. a YAML section); unknown keys and bad values raise
        :class:`refdense.schema.ConfigError` naming them."""
        return build(cls, values, source="ModelConfig")

    def to_dict(self) -> dict:
        """Plain dict of the fields (lists, strings, numbers, bools), ready for YAML."""
        return dataclasses.asdict(self)
