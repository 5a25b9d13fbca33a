"""RealSense D405 camera driver: one ``pyrealsense2`` pipeline and one reader thread per camera.

``D405Camera(config, "top").open()`` opens the camera with the configured serial number (or plays a recording
of it through the same pipeline when ``playback_file`` is set) and starts a thread that keeps the newest colour
frame, resized to ``output_size`` with area averaging so the control loop never waits for the camera.
:meth:`D405Camera.latest` returns it with its host arrival time and device timestamp, and raises
:class:`~real.errors.StaleFrameError` when it is older than allowed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from typing import Any

import numpy as np

from real._sdk import require
from real.closing import ClosedOnExit
from real.config import CameraConfig
from real.errors import CameraError, HardwareNotFoundError, StaleFrameError

__all__ = ["D405Camera", "Frame", "connected_serials", "resize_rgb"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Frame:
    """One colour frame: ``image`` ``(H, W, 3)`` uint8 RGB, arrival time on the host clock
    (``time.monotonic()``), the device timestamp (ms) and frame number."""

    image: np.ndarray
    timestamp: float
    device_timestamp_ms: float
    frame_number: int

    @property
    def age(self) -> float:
        """Seconds since the frame arrived."""
        return time.monotonic() - self.timestamp


def _bins(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Start index and length of the input run that each of ``n_out`` output samples averages."""
    starts = (np.arange(n_out) * n_in) // n_out
    lengths = np.diff(np.append(starts, n_in))
    return starts, np.maximum(lengths, 1)  # enlarging repeats a sample (reduceat returns it alone)


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 image to ``size = (height, width)`` by averaging the block of input pixels
    under each output pixel (area interpolation on whole-pixel bins: no aliasing when shrinking, nearest
    neighbour when enlarging). ~4 ms for 480x640 -> 128x128 on one CPU core. Returns a new uint8 array."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise CameraError(f"`image` must be (H, W, 3) uint8; got {image.shape} {image.dtype}")
    h, w = int(size[0]), int(size[1])
    if image.shape[:2] == (h, w):
        return image.copy()
    rows, row_len = _bins(image.shape[0], h)
    cols, col_len = _bins(image.shape[1], w)
    sums = np.add.reduceat(image, rows, axis=0, dtype=np.uint32)  # (h, W, 3)
    sums = np.add.reduceat(sums, cols, axis=1, dtype=np.uint32)  # (h, w, 3)
    area = (row_len[:, None] * col_len[None, :])[..., None]
    return ((sums + area // 2) // area).astype(np.uint8)


def connected_serials() -> list[str]:
    """Serial numbers of the RealSense devices connected to this machine."""
    rs = require("pyrealsense2", "the D405 camera driver")
    out = []
    for dev in rs.context().query_devices():
        try:
            out.append(dev.get_info(rs.camera_info.serial_number))
        except RuntimeError:
            continue
    return out


class D405Camera(ClosedOnExit):
    """One D405 colour stream with a reader thread and latest-frame access.

    Args:
        config: serial, stream mode, optional ``playback_file``.
        name: camera name for messages (``top``, ``left_wrist``, ``right_wrist``).
        output_size: ``(height, width)`` the reader thread resizes frames to; ``None`` keeps the stream size.
    """

    def __init__(self, config: CameraConfig, name: str = "camera", output_size: tuple[int, int] | None = None) -> None:
        if not isinstance(config, CameraConfig):
            raise TypeError(f"`config` must be a CameraConfig; got {type(config).__name__}")
        self.config = config
        self.name = name
        self.output_size = None if output_size is None else (int(output_size[0]), int(output_size[1]))
        self.frames_received = 0
        self.timeouts = 0
        self._pipeline: Any = None
        self._playback: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._new_frame = threading.Condition()
        self._latest: Frame | None = None
        self._error: str | None = None
        self._opened_at = 0.0

    # -- lifetime
    def open(self) -> D405Camera:
        """Start the pipeline and the reader thread.

        Raises:
            HardwareNotFoundError: no connected camera (or recording) has the configured serial.
            CameraError: the pipeline could not start.
        """
        if self._pipeline is not None:
            return self
        rs = require("pyrealsense2", "the D405 camera driver")
        cfg = self.config
        rs_config = rs.config()
        if cfg.playback_file is not None:
            if not os.path.isfile(cfg.playback_file):
                raise HardwareNotFoundError(
                    f"camera {self.name!r}: `playback_file` {cfg.playback_file!r} does not exist"
                )
            rs_config.enable_device_from_file(cfg.playback_file, repeat_playback=True)
            rs_config.enable_stream(rs.stream.color)
        else:
            serials = connected_serials()
            if cfg.serial not in serials:
                raise HardwareNotFoundError(
                    f"camera {self.name!r}: no RealSense with serial {cfg.serial} is connected; connected: "
                    f"{serials or 'none'}. Check the USB cable (USB 3) and `serial` in the config."
                )
            rs_config.enable_device(cfg.serial)
            rs_config.enable_stream(rs.stream.color, cfg.width, cfg.height, rs.format.rgb8, cfg.fps)
        pipeline = rs.pipeline()
        self._check_serial(rs, rs_config, pipeline)
        try:
            profile = pipeline.start(rs_config)
        except RuntimeError as exc:
            raise CameraError(f"camera {self.name!r} (serial {cfg.serial}): could not start the stream: {exc}") from exc
        device = profile.get_device()
        if cfg.playback_file is not None:
            self._playback = device.as_playback()
            self._playback.set_real_time(True)
        self._pipeline = pipeline
        self._stop.clear()
        self._error = None
        self._opened_at = time.monotonic()
        self._thread = threading.Thread(target=self._read, name=f"d405-{self.name}", daemon=True)
        self._thread.start()
        logger.info(
            "camera %s (serial %s) streaming%s",
            self.name,
            cfg.serial,
            f" from {cfg.playback_file}" if self._playback else "",
        )
        return self

    def _check_serial(self, rs: Any, rs_config: Any, pipeline: Any) -> None:
        """Refuse a device (or recording) whose serial is not the configured one, before any stream starts.

        The device is resolved without streaming: starting a pipeline only to stop it at once races librealsense's
        own threads (an intermittent native abort of the whole process)."""
        cfg = self.config
        try:
            device = rs_config.resolve(rs.pipeline_wrapper(pipeline)).get_device()
        except RuntimeError as exc:
            raise CameraError(f"camera {self.name!r} (serial {cfg.serial}): could not open the device: {exc}") from exc
        try:
            serial = device.get_info(rs.camera_info.serial_number)
        except RuntimeError:
            serial = None
        if serial != cfg.serial:
            raise HardwareNotFoundError(
                f"camera {self.name!r}: expected serial {cfg.serial}; got a device with serial {serial!r}"
                + (f" in {cfg.playback_file}" if cfg.playback_file else "")
            )

    def close(self) -> None:
        """Stop the reader thread and the pipeline (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        pipeline, self._pipeline = self._pipeline, None
        self._playback = None
        if pipeline is not None:
            try:
                pipeline.stop()
            except RuntimeError as exc:  # already stopped (e.g. the device went away)
                logger.debug("camera %s: stopping the pipeline: %s", self.name, exc)

    def __enter__(self) -> D405Camera:
        return self.open()

    # -- reader thread
    def _read(self) -> None:
        poll_ms = min(self.config.timeout_ms, 100)
        waited_ms = 0
        pipeline = self._pipeline
        while not self._stop.is_set():
            try:
                ok, frames = pipeline.try_wait_for_frames(poll_ms)
            except RuntimeError as exc:
                self._fail(f"the stream failed: {exc}")
                return
            if not ok:
                waited_ms += poll_ms
                if waited_ms >= self.config.timeout_ms:
                    self.timeouts += 1
                    waited_ms = 0
                    logger.debug("camera %s: no frame for %d ms", self.name, self.config.timeout_ms)
                continue
            waited_ms = 0
            color = frames.get_color_frame()
            if not color:
                continue
            image = np.asanyarray(color.get_data())
            if image.ndim != 3 or image.shape[2] != 3:
                self._fail(f"expected an RGB colour stream; got frames of shape {image.shape}")
                return
            image = resize_rgb(image, self.output_size) if self.output_size else np.array(image, copy=True)
            frame = Frame(image, time.monotonic(), float(color.get_timestamp()), int(color.get_frame_number()))
            with self._new_frame:
                self._latest = frame
                self.frames_received += 1
                self._new_frame.notify_all()

    def _fail(self, reason: str) -> None:
        self._error = reason
        logger.error("camera %s (serial %s): %s", self.name, self.config.serial, reason)
        with self._new_frame:
            self._new_frame.notify_all()

    # -- access
    @property
    def is_open(self) -> bool:
        """Whether the pipeline runs and the reader thread is alive."""
        return self._pipeline is not None and self._thread is not None and self._thread.is_alive()

    @property
    def error(self) -> str | None:
        """Why the reader stopped, or ``None``."""
        return self._error

    def frame_age(self) -> float:
        """Seconds since the newest frame arrived (since opening when none has yet)."""
        frame = self._latest
        return time.monotonic() - (frame.timestamp if frame is not None else self._opened_at)

    def _check(self) -> None:
        if self._error is not None:
            raise CameraError(f"camera {self.name!r} (serial {self.config.serial}) stopped: {self._error}")
        if self._pipeline is None:
            raise CameraError(f"camera {self.name!r} is not open; call open() first")

    def latest(self, max_age_s: float | None = None) -> Frame:
        """The newest frame. Raises :class:`StaleFrameError` if there is none yet or it is older than ``max_age_s``,
        :class:`CameraError` if the stream failed."""
        self._check()
        frame = self._latest
        if frame is None:
            raise StaleFrameError(f"camera {self.name!r} (serial {self.config.serial}) has not delivered a frame yet")
        if max_age_s is not None and frame.age > max_age_s:
            raise StaleFrameError(
                f"camera {self.name!r} (serial {self.config.serial}): newest frame is {frame.age * 1000:.0f} ms old; "
                f"allowed {max_age_s * 1000:.0f} ms"
            )
        return frame

    def wait_for_frame(self, timeout_s: float = 5.0, newer_than: float | None = None) -> Frame:
        """Block until a frame (newer than ``newer_than``, a monotonic time) has arrived, then return it."""
        deadline = time.monotonic() + timeout_s
        with self._new_frame:
            while True:
                self._check()
                frame = self._latest
                if frame is not None and (newer_than is None or frame.timestamp > newer_than):
                    return frame
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StaleFrameError(
                        f"camera {self.name!r} (serial {self.config.serial}): no frame within {timeout_s:.1f} s"
                    )
                self._new_frame.wait(remaining)

    def fps(self) -> float:
        """Mean frames per second since opening."""
        span = time.monotonic() - self._opened_at
        return self.frames_received / span if span > 0 else 0.0

    def pause(self, timeout_s: float = 2.0) -> None:
        """Pause a recording's playback (frames stop arriving, as from a stalled camera). Live cameras: no-op.

        Retries until librealsense reports the playback paused: a pause that lands while a looping playback
        restarts at the end of the file is otherwise undone by the restart."""
        if self._playback is None:
            return
        rs = require("pyrealsense2", "the D405 camera driver")
        deadline = time.monotonic() + timeout_s
        while True:
            self._playback.pause()
            time.sleep(0.02)
            if self._playback.current_status() == rs.playback_status.paused or time.monotonic() > deadline:
                return

    def resume(self) -> None:
        """Resume a paused playback."""
        if self._playback is not None:
            self._playback.resume()
