"""D405Camera: recorded streams (rs.software_device + rs.recorder -> .db3) through the normal pyrealsense2 pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyrealsense2", reason="pyrealsense2 wheel not installed (pip install pyrealsense2)")

from real.camera import D405Camera, resize_rgb  # noqa: E402
from real.config import CameraConfig  # noqa: E402
from real.emulation import record_synthetic_stream  # noqa: E402
from real.errors import CameraError, HardwareNotFoundError, StaleFrameError  # noqa: E402
from tests.real.helpers import wait_until  # noqa: E402

SERIAL = "218600000042"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_synthetic_stream(tmp_path_factory.mktemp("cam") / "cam.db3", SERIAL, width=64, height=48, frames=10)


def _config(recording: Path, serial: str = SERIAL) -> CameraConfig:
    return CameraConfig(serial=serial, width=64, height=48, playback_file=str(recording))


def test_playback_delivers_the_recorded_frames_in_order(recording: Path) -> None:
    with D405Camera(_config(recording), "top") as cam:
        frame = cam.wait_for_frame(5.0)
        seen, stamps = [], [frame.timestamp]
        for _ in range(12):
            frame = cam.wait_for_frame(5.0, newer_than=frame.timestamp)
            assert frame.image.shape == (48, 64, 3) and frame.image.dtype == np.uint8
            assert frame.image[0, 0, 0] == frame.frame_number % 256  # the synthetic stream stamps the frame number
            seen.append(frame.frame_number)
            stamps.append(frame.timestamp)
        # Playback is real time, so a loaded machine may skip frames: check what holds whatever the load (every
        # read is a newer frame, from the 10 recorded ones, and the stream moves on), not how many were seen.
        assert all(b > a for a, b in zip(stamps, stamps[1:]))
        assert set(seen) <= set(range(10)) and len(set(seen)) >= 2
        assert cam.latest(max_age_s=1.0).frame_number in range(10)
        assert cam.frames_received >= 12 and cam.is_open


def test_frames_are_resized_in_the_reader_thread(recording: Path) -> None:
    with D405Camera(_config(recording), "top", output_size=(32, 40)) as cam:
        assert cam.wait_for_frame(5.0).image.shape == (32, 40, 3)


def test_paused_stream_goes_stale_then_recovers(recording: Path) -> None:
    with D405Camera(_config(recording), "top") as cam:
        frame = cam.wait_for_frame(5.0)
        cam.pause()
        assert wait_until(lambda: cam.frame_age() > 0.2)
        with pytest.raises(StaleFrameError, match="ms old"):
            cam.latest(max_age_s=0.2)
        cam.resume()
        assert cam.wait_for_frame(5.0, newer_than=frame.timestamp + 0.2).age < 1.0


class _ColourFrame:
    def __init__(self, number: int) -> None:
        self.number = number

    def __bool__(self) -> bool:
        return True

    def get_data(self) -> np.ndarray:
        return np.full((48, 64, 3), self.number, dtype=np.uint8)

    def get_timestamp(self) -> float:
        return 1000.0 + self.number

    def get_frame_number(self) -> int:
        return self.number


class _UnpluggedPipeline:
    """Delivers two frames, then fails the way librealsense does when the device goes away."""

    def __init__(self) -> None:
        self.delivered = 0
        self.stopped = False

    def try_wait_for_frames(self, timeout_ms: int) -> tuple[bool, object]:
        if self.delivered == 2:
            raise RuntimeError("No device connected")
        self.delivered += 1
        frame = _ColourFrame(self.delivered)
        return True, type("Frames", (), {"get_color_frame": lambda _self: frame})()

    def stop(self) -> None:
        self.stopped = True


def test_a_stream_that_dies_is_a_camera_error() -> None:
    # A pipeline stand-in, not a recording stopped from this thread: stopping a pipeline under its reader is what
    # an unplug does, and librealsense intermittently aborts the process on it (a native crash, not an exception).
    cam = D405Camera(CameraConfig(serial=SERIAL, width=64, height=48), "top")
    pipeline = _UnpluggedPipeline()
    cam._pipeline = pipeline
    cam._read()  # returns once the stream fails
    assert cam.frames_received == 2 and cam.error is not None and "No device connected" in cam.error
    with pytest.raises(CameraError, match="stopped: the stream failed"):
        cam.latest()
    with pytest.raises(CameraError, match="stopped"):
        cam.wait_for_frame(0.1)
    assert not cam.is_open
    cam.close()
    assert pipeline.stopped and not cam.is_open


def test_wrong_or_missing_camera_is_a_typed_error(recording: Path, tmp_path: Path) -> None:
    with pytest.raises(HardwareNotFoundError, match="expected serial 999"):
        D405Camera(_config(recording, serial="999"), "top").open()
    with pytest.raises(HardwareNotFoundError, match="does not exist"):
        D405Camera(CameraConfig(serial=SERIAL, playback_file=str(tmp_path / "none.db3")), "top").open()
    with pytest.raises(HardwareNotFoundError, match="no RealSense with serial 123456789012"):
        D405Camera(CameraConfig(serial="123456789012"), "top").open()  # no camera on this machine


def test_latest_before_open_and_before_the_first_frame(recording: Path) -> None:
    cam = D405Camera(_config(recording), "top")
    with pytest.raises(CameraError, match="not open"):
        cam.latest()


def test_resize_rgb_averages_blocks() -> None:
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1).repeat(3, axis=2)
    half = resize_rgb(image, (2, 2))
    np.testing.assert_array_equal(half[..., 0], [[3, 5], [11, 13]])  # mean of each 2x2 block, rounded half up
    np.testing.assert_array_equal(resize_rgb(image, (8, 8))[::2, ::2, 0], image[..., 0])  # enlarging repeats
    assert resize_rgb(image, (4, 4)) is not image
    big = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    small = resize_rgb(big, (128, 128))
    assert small.shape == (128, 128, 3) and abs(float(small.mean()) - float(big.mean())) < 1.0
    with pytest.raises(CameraError):
        resize_rgb(np.zeros((4, 4), dtype=np.uint8), (2, 2))
