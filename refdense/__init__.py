"""refdense: RefDense ("Reframing Dense Action Detection", Sardari et al.) and the PAT backbone.

Subpackages: ``data`` (dataset format, labels, loaders), ``synth`` (synthetic benchmark),
``models`` (PAT, RefDense), ``losses`` (BCE, asymmetric, CoLV), ``text`` (frozen text encoders),
``metrics`` (per-frame mAP, action-conditional metrics), ``train`` (engine), ``viz`` (plots),
``widgets`` (notebook explorers), ``prepare`` (real datasets), ``cli`` (command line).
"""

__version__ = "0.1.0"
