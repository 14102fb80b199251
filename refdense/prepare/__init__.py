"""Real datasets: official annotation files, feature conversion, label decomposition, feature extraction.

- :mod:`refdense.prepare.formats`: readers of the official annotation files (super-events JSON,
  Charades CSV, MultiTHUMOS per-class files, TSU JSON) into :class:`RawAnnotations`.
- :mod:`refdense.prepare.features`: per-video ``.npy`` / HDF5 feature sources.
- :mod:`refdense.prepare.prepare`: :func:`prepare_dataset`, the whole conversion, with its report.
- :mod:`refdense.prepare.decompose`: entity/motion decompositions (Charades files, the shipped
  MultiTHUMOS one, the LLM prompt and answer parser).
- :mod:`refdense.prepare.extract`: CLIP and video-network features from raw videos (needs
  PyAV and torchvision; imported on demand).
"""

from refdense.prepare.decompose import (
    Decomposition,
    DecompositionError,
    build_decomposition_prompt,
    charades_decomposition,
    parse_decomposition_answer,
    read_decomposition,
    shipped_decomposition,
    write_decomposition,
)
from refdense.prepare.features import FeatureError, FeatureSource
from refdense.prepare.formats import (
    FORMATS,
    FormatError,
    RawAnnotations,
    read_class_list,
    read_raw_annotations,
)
from refdense.prepare.prepare import PrepareReport, prepare_dataset

__all__ = [
    "Decomposition",
    "DecompositionError",
    "build_decomposition_prompt",
    "charades_decomposition",
    "parse_decomposition_answer",
    "read_decomposition",
    "shipped_decomposition",
    "write_decomposition",
    "FeatureError",
    "FeatureSource",
    "FORMATS",
    "FormatError",
    "RawAnnotations",
    "read_raw_annotations",
    "read_class_list",
    "PrepareReport",
    "prepare_dataset",
]
