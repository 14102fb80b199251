"""``ModelConfig``: every architecture and ablation of the paper as plain, YAML-serialisable fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from refdense.models.attention import POSITION_MODES
from refdense.models.inputs import STREAMS

ARCHS = ("refdense", "pat", "entity_only", "motion_only")

#: Where RefDense's Action-Motion branches cross-attend to F_ent: once per branch after its blocks
#: (the default reading of Eq. 6-7) or inside every block (a variant).
CROSS_ATTENTION_PLACEMENTS = ("branch", "block")

#: The stream each single-network architecture reads when ``inputs`` is None (Table 3 of the paper
#: feeds the sub-networks alone with I3D and CLIP features concatenated).
DEFAULT_STREAM = {"pat": "video", "entity_only": "concat", "motion_only": "concat"}


@dataclass
class ModelConfig:
    """Hyper-parameters of a detector. Defaults are the Charades configuration of the paper.

    Attributes:
        arch: ``"refdense"`` (the paper's network), ``"pat"`` (the PAT backbone alone),
            ``"entity_only"`` (the Action-Entity sub-network alone predicting the actions, Table 3),
            ``"motion_only"`` (the Action-Motion sub-network alone, Table 3: without an entity stream
            there is nothing to cross-attend to, so it *is* PAT, on concatenated features by default).
        inputs: the stream a single-network architecture reads: ``"video"``, ``"image"`` or
            ``"concat"`` (channel concatenation of both); None picks ``DEFAULT_STREAM[arch]``. Must be
            None for ``refdense``, which reads video in Action-Motion and image in Action-Entity.
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
    inputs: str | None = None
    position: str = "pat"
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
    cross_attention_placement: str = "branch"
    entity_head: bool = True
    motion_head: bool = True
    fusion_kernel: int = 1

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"ModelConfig.arch must be one of {ARCHS}, found {self.arch!r}")
        if self.arch == "refdense" and self.inputs is not None:
            raise ValueError(
                "ModelConfig.inputs must be None for arch='refdense' (it reads video in Action-Motion and "
                f"image in Action-Entity), found {self.inputs!r}"
            )
        if self.inputs is not None and self.inputs not in STREAMS:
            raise ValueError(f"ModelConfig.inputs must be None or one of {STREAMS}, found {self.inputs!r}")
        if self.position not in POSITION_MODES:
            raise ValueError(f"ModelConfig.position must be one of {POSITION_MODES}, found {self.position!r}")
        for name in ("dim", "heads", "head_dim", "blocks", "entity_blocks", "max_len", "local_hidden", "fusion_kernel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, found {value!r}")
        if self.fusion_kernel % 2 == 0:
            raise ValueError(f"ModelConfig.fusion_kernel must be odd (same-length output), found {self.fusion_kernel}")
        if self.cross_attention_placement not in CROSS_ATTENTION_PLACEMENTS:
            raise ValueError(
                f"ModelConfig.cross_attention_placement must be one of {CROSS_ATTENTION_PLACEMENTS}, "
                f"found {self.cross_attention_placement!r}"
            )
        if isinstance(self.strides, (str, int)) or not len(self.strides):
            raise ValueError(f"ModelConfig.strides must be a non-empty list of coarse strides, found {self.strides!r}")
        self.strides = list(self.strides)
        for s in self.strides:
            if isinstance(s, bool) or not isinstance(s, int) or s < 2 or self.max_len % s:
                raise ValueError(
                    f"ModelConfig.strides must be integers >= 2 that divide max_len={self.max_len}, found {self.strides}"
                )
        for name in ("input_dropout", "head_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"ModelConfig.{name} must be in [0, 1), found {value!r}")
        if not 0.0 <= self.fine_weight <= 1.0:
            raise ValueError(f"ModelConfig.fine_weight must be in [0, 1], found {self.fine_weight!r}")
        for name in ("cross_attention", "entity_head", "motion_head"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"ModelConfig.{name} must be true or false, found {getattr(self, name)!r}")

    @property
    def stream(self) -> str | None:
        """The stream a single-network architecture reads (None for ``refdense``)."""
        return None if self.arch == "refdense" else self.inputs or DEFAULT_STREAM[self.arch]

    @property
    def action_feature_dim(self) -> int:
        """Width of ``DetectionOutput.action_features``: ``[F_ent ; F_mot]`` (2 dim) for RefDense, else dim."""
        return 2 * self.dim if self.arch == "refdense" else self.dim

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        """Build from a mapping (e.g. a YAML section); unknown keys are an error naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig field(s) {unknown}; expected some of {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict:
        """Plain dict of the fields (lists, strings, numbers, bools), ready for YAML."""
        return dataclasses.asdict(self)
