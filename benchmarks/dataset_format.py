"""Compare on-disk formats for episode camera frames: size and decode speed.

Options measured, each on the same ``(T, H, W, 3)`` uint8 frames of three cameras:

* ``np.savez``             uncompressed npz (lossless)
* ``np.savez_compressed``  zlib npz (lossless; the default of ``sarm2_env.dataset.DatasetWriter``)
* ``mp4 h264 crf23``       one mp4 per camera via imageio + imageio-ffmpeg, libx264 yuv420p crf 23 (lossy)
* ``mp4 h264rgb lossless`` one mp4 per camera, libx264rgb crf 0 (lossless, RGB)

The mp4 rows are reported as skipped when ``imageio-ffmpeg`` is not importable.

Frames come from the simulated CleanWhiteboard station when it can be built (``gymnasium.make``, else the env
class directly), stepping ``home_action`` plus a slow sinusoid on the joints so the arms and wrist cameras move
(``--motion 0`` steps ``home_action`` alone); and always from a synthetic generator (smooth moving gradients and
shapes, ``--frames`` x 3 cameras). Decode speed is frames per second summed over cameras, single process, files
in the page cache.

Usage::

    python benchmarks/dataset_format.py [--frames 300] [--size 128] [--env-steps 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sarm2_env.constants import CAMERAS, STATE_DIM

logger = logging.getLogger("dataset_format")

Frames = dict[str, np.ndarray]


# ------------------------------------------------------------------------------------------------ frame sources


def synthetic_frames(n_frames: int, size: int, seed: int = 0) -> Frames:
    """Smoothly varying images with moving, shaded shapes: a stand-in for rendered frames."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    frames: Frames = {}
    for c, cam in enumerate(CAMERAS):
        out = np.empty((n_frames, size, size, 3), np.uint8)
        centers = rng.uniform(0.2, 0.8, size=(4, 2))
        velocity = rng.uniform(-0.004, 0.004, size=(4, 2))
        colours = rng.uniform(40, 230, size=(4, 3))
        radii = rng.uniform(0.06, 0.15, size=4)
        for t in range(n_frames):
            phase = 0.02 * t + c
            base = np.stack(
                [
                    120 + 60 * np.sin(2.0 * xx + phase),
                    110 + 50 * np.cos(1.5 * yy - 0.5 * phase),
                    100 + 40 * np.sin(xx + yy + 0.3 * phase),
                ],
                axis=-1,
            )
            for k in range(4):
                cx, cy = (centers[k] + velocity[k] * t) % 1.0
                d2 = (xx - cx) ** 2 + (yy - cy) ** 2
                inside = d2 < radii[k] ** 2
                shade = 1.0 - 0.5 * d2 / radii[k] ** 2  # lit sphere-like shading
                base[inside] = colours[k] * shade[inside, None]
            # a moving rectangle with a hard edge (gripper-like)
            x0 = int((0.1 + 0.3 * (1 + np.sin(0.05 * t + c))) * size)
            base[size // 2 : size // 2 + size // 6, x0 : x0 + size // 5] = (30, 30, 35)
            out[t] = np.clip(base, 0, 255).astype(np.uint8)
        frames[cam] = out
    return frames


def env_frames(steps: int, motion: float) -> Frames | None:
    """Rendered CleanWhiteboard frames, or ``None`` (logged) when the simulator cannot be built."""
    try:
        try:
            import gymnasium

            import tasks  # noqa: F401  (registers the SARM2 envs)

            env = gymnasium.make("SARM2/CleanWhiteboard-v0")
        except Exception as exc:  # noqa: BLE001 - any failure means: try the class directly
            logger.info("gymnasium.make failed (%s); building CleanWhiteboardEnv directly", exc)
            from tasks.rendering import configure_gl

            configure_gl()
            from tasks.clean_whiteboard import CleanWhiteboardEnv

            env = CleanWhiteboardEnv()
        home = np.asarray(env.unwrapped.home_action, np.float32)
        obs, _ = env.reset(seed=0)
        collected: dict[str, list[np.ndarray]] = {cam: [] for cam in CAMERAS}
        joints = np.array([i for i in range(STATE_DIM) if i not in (6, 13)])
        for t in range(steps):
            for cam in CAMERAS:
                collected[cam].append(np.array(obs["pixels"][cam], np.uint8))
            action = home.copy()
            action[joints] += motion * np.sin(0.06 * t + np.arange(len(joints)))
            obs, *_ = env.step(action)
        env.close()
        return {cam: np.stack(v) for cam, v in collected.items()}
    except Exception as exc:  # noqa: BLE001 - benchmark falls back to synthetic frames
        logger.warning("simulated frames unavailable (%s: %s); using synthetic frames only", type(exc).__name__, exc)
        return None


# ------------------------------------------------------------------------------------------------ formats


def _time_best(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_npz(frames: Frames, directory: Path, compressed: bool, repeats: int) -> dict[str, float | str]:
    """Write and read ``frames`` as NPZ ``repeats`` times: sizes and timings."""
    path = directory / ("c.npz" if compressed else "u.npz")
    arrays = {f"frames_{cam}": v for cam, v in frames.items()}
    save = np.savez_compressed if compressed else np.savez
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        save(f, **arrays)
    encode = time.perf_counter() - t0

    def decode() -> None:
        with np.load(path) as z:
            for key in arrays:
                z[key]

    with np.load(path) as z:
        exact = all(np.array_equal(z[k], v) for k, v in arrays.items())
    return {
        "bytes": path.stat().st_size,
        "encode_s": encode,
        "decode_s": _time_best(decode, repeats),
        "psnr": "inf (exact)" if exact else "NOT EXACT",
    }


def bench_mp4(frames: Frames, directory: Path, lossless: bool, fps: float, repeats: int) -> dict[str, float | str]:
    """Write and read ``frames`` as MP4 ``repeats`` times: sizes, timings and reconstruction error."""
    import imageio.v2 as iio

    params = ["-crf", "0", "-preset", "medium"] if lossless else ["-crf", "23", "-preset", "medium"]
    codec, pix = ("libx264rgb", "rgb24") if lossless else ("libx264", "yuv420p")
    paths = {}
    t0 = time.perf_counter()
    for cam, video in frames.items():
        path = directory / f"{cam}{'_ll' if lossless else ''}.mp4"
        with iio.get_writer(
            path,
            format="FFMPEG",
            fps=fps,
            codec=codec,
            quality=None,
            pixelformat=pix,
            ffmpeg_params=params,
            macro_block_size=1,
            ffmpeg_log_level="error",
        ) as w:
            for image in video:
                w.append_data(image)
        paths[cam] = path
    encode = time.perf_counter() - t0

    def read(path: Path) -> np.ndarray:
        with iio.get_reader(path, format="FFMPEG") as r:
            return np.stack([np.asarray(im) for im in r])

    def decode() -> None:
        for path in paths.values():
            read(path)

    mse = []
    for cam, path in paths.items():
        got = read(path)
        if got.shape != frames[cam].shape:
            return {"bytes": 0, "encode_s": 0, "decode_s": 0, "psnr": f"shape {got.shape}"}
        mse.append(np.mean((got.astype(np.float64) - frames[cam]) ** 2))
    m = float(np.mean(mse))
    psnr = "inf (exact)" if m == 0 else f"{10 * np.log10(255**2 / m):.1f} dB"
    return {
        "bytes": sum(p.stat().st_size for p in paths.values()),
        "encode_s": encode,
        "decode_s": _time_best(decode, repeats),
        "psnr": psnr,
    }


def run(name: str, frames: Frames, repeats: int, fps: float) -> list[str]:
    """Compare the storage formats on one set of frames; returns the report lines."""
    n = sum(len(v) for v in frames.values())
    t, h, w, _ = frames[CAMERAS[0]].shape
    raw = sum(v.nbytes for v in frames.values())
    lines = [f"\n{name}: {t} frames x {len(frames)} cameras, {h}x{w}, raw {raw / 1e6:.1f} MB"]
    header = f"{'format':<24} {'MB':>7} {'B/frame/cam':>12} {'ratio':>6} {'enc s':>6} {'dec frames/s':>13}  fidelity"
    lines += [header, "-" * len(header)]
    try:
        import imageio_ffmpeg  # noqa: F401

        have_ffmpeg = True
    except ImportError:
        have_ffmpeg = False
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        rows: list[tuple[str, Callable[[], dict[str, float | str]] | None]] = [
            ("np.savez", lambda: bench_npz(frames, d, False, repeats)),
            ("np.savez_compressed", lambda: bench_npz(frames, d, True, repeats)),
            ("mp4 h264 crf23", (lambda: bench_mp4(frames, d, False, fps, repeats)) if have_ffmpeg else None),
            ("mp4 h264rgb lossless", (lambda: bench_mp4(frames, d, True, fps, repeats)) if have_ffmpeg else None),
        ]
        for label, fn in rows:
            if fn is None:
                lines.append(f"{label:<24} skipped (imageio-ffmpeg not importable)")
                continue
            r = fn()
            size = float(r["bytes"])
            lines.append(
                f"{label:<24} {size / 1e6:>7.2f} {size / n:>12,.0f} {raw / size:>6.1f} {r['encode_s']:>6.2f} "
                f"{n / float(r['decode_s']):>13,.0f}  {r['psnr']}"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Compare episode storage formats on rendered frames; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="synthetic frames per camera")
    parser.add_argument("--size", type=int, default=128, help="synthetic image side (pixels)")
    parser.add_argument("--env-steps", type=int, default=100, help="simulated steps (0: skip the simulator)")
    parser.add_argument("--motion", type=float, default=0.3, help="joint sinusoid amplitude (rad) added to home")
    parser.add_argument("--repeats", type=int, default=3, help="decode timing: best of N")
    parser.add_argument("--fps", type=float, default=10.0, help="video frame rate (mp4 only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    lines = [f"dataset format benchmark: {os.cpu_count()} CPU(s), numpy {np.__version__}"]
    if args.env_steps > 0:
        real = env_frames(args.env_steps, args.motion)
        if real is not None:
            lines += run(
                f"CleanWhiteboard rendered (home_action + {args.motion} rad sinusoid)", real, args.repeats, args.fps
            )
    lines += run("synthetic", synthetic_frames(args.frames, args.size), args.repeats, args.fps)
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
