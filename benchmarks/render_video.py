"""Videos that show what a reward model thinks, frame by frame.

Each video frame stacks, top to bottom:

* a header naming the task and episode;
* the three camera views (``top``, ``left_wrist``, ``right_wrist``) side by side, nearest-neighbour upscaled
  by an integer factor so small simulated frames stay legible;
* an info strip: frame index and time, the physics ground-truth progress and the expert's primitive label, and
  per backend its predicted progress, predicted primitive (with probability), MoE gate group and top-2 experts
  when the backend provides them (``RewardOutput.primitive_probs``, ``extras["group"]``,
  ``extras["expert_weights"]``);
* a plot of predicted progress per backend against the ground truth (``episode.calibrated_progress`` where
  recorded, else ``episode.progress``; the simulator's
  physics progress), with a strip of the predicted primitive per frame underneath, and a cursor at the current
  frame.

The plot is drawn once with matplotlib (Agg) into an array. Per frame only the camera pixels are copied in, the
cursor and per-backend markers are blitted with numpy slicing, and the info strip's text is gathered from a
glyph atlas rendered once with Pillow (matplotlib's own dependency) in the DejaVu Sans Mono font matplotlib
ships. Encoding goes through imageio-ffmpeg: H.264 (libx264), yuv420p, so the result plays everywhere.

Measured on the 2-core dev machine (4 backends, 100 frames; other jobs running): the one-off plot costs
0.2-0.7 s, the per-frame overlay 1.2-3 ms (576x596 px at 64 px cameras to 768x746 px at 128 px), and libx264
(preset veryfast) 6-11 ms per frame.

Library use::

    from benchmarks.render_video import render_video
    out = model.predict_episode(episode)              # episode loaded with frames=True
    stats = render_video(episode, {"sarm2": out}, "ep.mp4")
    stats.ms_per_frame                                 # overlay cost, encoding excluded

Command line::

    python -m benchmarks.render_video --data data/64px-seed0/heldout_rollouts --episode 3 \\
        --backends sarm2,oracle --out ep3.mp4
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sarm2_env.atomic import atomic_path
from sarm2_env.constants import CAMERAS, NUM_PRIMITIVES, PRIMITIVE_GROUPS, PRIMITIVE_TO_GROUP, PRIMITIVES
from sarm2_env.errors import ConfigError, InputShapeError, UnknownNameError
from sarm2_env.lerobot_io import imageio_ffmpeg_module

if TYPE_CHECKING:
    from rewards.base import RewardOutput
    from sarm2_env.dataset import Episode, EpisodeDataset

__all__ = ["VideoStats", "load_episode", "render_video", "write_videos", "main"]

log = logging.getLogger(__name__)

#: the smallest camera tile height (pixels) the automatic integer upscale aims for
MIN_CAMERA_HEIGHT = 160
#: per-backend colours (matplotlib tab10 without red, which the cursor uses); ground truth is black
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_GT_COLOUR = "#000000"
_CURSOR = np.array([220, 20, 60], dtype=np.uint8)  # crimson
_BACKGROUND = (255, 255, 255)
_PLOT_TOP, _PLOT_GAP, _AXIS_LABEL_H, _STRIP_ROW_H, _MIN_PROGRESS_H = 8, 6, 30, 11, 80
_MAX_LEGEND = 8
_HEADER_BG = (40, 40, 40)


@dataclasses.dataclass(frozen=True)
class VideoStats:
    """What :func:`render_video` wrote and what it cost.

    ``ms_per_frame`` is the per-frame overlay cost (camera copy, cursor, markers, text), encoding excluded;
    ``encode_ms_per_frame`` is the time spent handing frames to ffmpeg (it blocks while libx264 encodes);
    ``static_ms`` is the one-off matplotlib render of the plot.
    """

    path: Path
    frames: int
    width: int
    height: int
    fps: float
    static_ms: float
    ms_per_frame: float
    encode_ms_per_frame: float


@dataclasses.dataclass
class _Track:
    """One backend's per-frame predictions, normalised from a ``RewardOutput`` or a flat arrays dict."""

    name: str
    label: str
    colour: str
    progress: np.ndarray  # (T,) float64, NaN where not predicted
    primitive: np.ndarray | None = None  # (T,) int, -1 unknown
    confidence: np.ndarray | None = None  # (T,) probability of the predicted primitive
    group: np.ndarray | None = None  # (T,) int gate group
    experts: np.ndarray | None = None  # (T, E) routing weights
    query_indices: np.ndarray | None = None


# --------------------------------------------------------------------------------------------------- inputs


def _field(output: Any, name: str) -> Any:
    """``name`` from a RewardOutput (attributes, then ``extras``) or from a flat mapping of arrays."""
    if isinstance(output, Mapping):
        return output.get(name)
    if name in ("progress", "primitive_probs", "query_indices"):
        return getattr(output, name, None)
    extras = getattr(output, "extras", None) or {}
    return extras.get(name)


def _as_track(name: str, output: Any, length: int, label: str, colour: str) -> _Track:
    def shaped(field: str, value: Any, tail: tuple[int, ...], kind: str = "f") -> np.ndarray:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise InputShapeError(
                f"backend {name!r}: `{field}`: expected an array; got {type(value).__name__}"
            ) from exc
        if (
            array.ndim != 1 + len(tail)
            or array.shape[0] != length
            or any(t is not None and s != t for s, t in zip(array.shape[1:], tail))
        ):
            want = ", ".join(["T", *("*" if t is None else str(t) for t in tail)])
            raise InputShapeError(
                f"backend {name!r}: `{field}`: expected shape ({want}) with T={length} frames of the episode; "
                f"got {array.shape}"
            )
        if kind == "i" and array.dtype.kind not in "iu":
            raise InputShapeError(f"backend {name!r}: `{field}`: expected integers; got dtype {array.dtype}")
        if kind == "f" and array.dtype.kind not in "iuf":
            raise InputShapeError(f"backend {name!r}: `{field}`: expected numbers; got dtype {array.dtype}")
        return array

    progress = _field(output, "progress")
    if progress is None:
        raise InputShapeError(f"backend {name!r}: expected a `progress` array of {length} frames; got none")
    track = _Track(name, label, colour, shaped("progress", progress, ()).astype(np.float64))
    probs = _field(output, "primitive_probs")
    if probs is not None:
        probs = shaped("primitive_probs", probs, (NUM_PRIMITIVES,)).astype(np.float64)
        track.primitive = probs.argmax(-1)
        track.confidence = probs.max(-1)
    elif isinstance(output, Mapping) and output.get("primitive") is not None:
        track.primitive = shaped("primitive", output["primitive"], (), kind="i").astype(np.int64)
    if track.primitive is not None and ((track.primitive < -1) | (track.primitive >= NUM_PRIMITIVES)).any():
        raise InputShapeError(f"backend {name!r}: `primitive`: expected indices in [-1, {NUM_PRIMITIVES})")
    group = _field(output, "group")
    if group is not None:
        track.group = shaped("group", group, (), kind="i").astype(np.int64)
    experts = _field(output, "expert_weights")
    if experts is not None:
        track.experts = shaped("expert_weights", experts, (None,)).astype(np.float64)
    query = _field(output, "query_indices")
    if query is not None:
        track.query_indices = np.asarray(query, dtype=np.int64).reshape(-1)
    return track


def _check_episode(episode: Episode) -> tuple[int, int, int]:
    frames = getattr(episode, "frames", None)
    if not frames:
        raise InputShapeError("`episode`: expected camera frames (load it with frames=True); got none")
    missing = [c for c in CAMERAS if c not in frames]
    if missing:
        raise InputShapeError(f"`episode.frames`: expected cameras {list(CAMERAS)}; missing {missing}")
    length = int(episode.length)
    shapes = {c: np.shape(frames[c]) for c in CAMERAS}
    first = shapes[CAMERAS[0]]
    for cam, shape in shapes.items():
        if len(shape) != 4 or shape[0] != length or shape[3] != 3 or shape[1:3] != first[1:3]:
            raise InputShapeError(
                f"`episode.frames[{cam!r}]`: expected shape ({length}, {first[1]}, {first[2]}, 3); got {shape}"
            )
    if np.shape(episode.progress) != (length,):
        raise InputShapeError(f"`episode.progress`: expected shape ({length},); got {np.shape(episode.progress)}")
    return length, int(first[1]), int(first[2])


# --------------------------------------------------------------------------------------------------- drawing


def _font(size: int):
    from matplotlib import font_manager
    from PIL import ImageFont

    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans Mono"), fallback_to_default=True)
    try:
        return ImageFont.truetype(path, size)
    except OSError:  # pragma: no cover - matplotlib always ships DejaVu
        return ImageFont.load_default()


class _Glyphs:
    """Black-on-white text blitted from a monospaced glyph atlas rendered once (printable ASCII).

    ``atlas[i]`` is the ``(h, w)`` grey cell of character ``32 + i``; a line of text is one fancy-indexing
    gather, so drawing costs microseconds per line instead of a font rasterisation per frame.
    """

    def __init__(self, font) -> None:
        from PIL import Image, ImageDraw

        ascent, descent = font.getmetrics()
        self.h, self.w = ascent + descent, max(1, int(round(font.getlength("M"))))
        cells = []
        for code in range(32, 127):
            cell = Image.new("L", (self.w, self.h), 255)
            ImageDraw.Draw(cell).text((0, 0), chr(code), fill=0, font=font)
            cells.append(np.asarray(cell))
        self.atlas = np.stack(cells)  # (95, h, w) uint8
        self.lut = np.full(256, ord("?") - 32, dtype=np.intp)
        self.lut[32:127] = np.arange(95)

    def draw(self, buffer: np.ndarray, x: int, y: int, text: str) -> None:
        """Write ``text`` into ``buffer (H, W, 3)`` with its top-left corner at ``(x, y)``, clipped to the buffer."""
        width = (buffer.shape[1] - x) // self.w
        codes = np.frombuffer(text[:width].encode("ascii", "replace"), dtype=np.uint8)
        if not len(codes):
            return
        line = self.atlas[self.lut[codes]].transpose(1, 0, 2).reshape(self.h, -1)  # (h, n * w)
        h = min(self.h, buffer.shape[0] - y)
        buffer[y : y + h, x : x + line.shape[1]] = line[:h, :, None]


def _primitive_colours() -> np.ndarray:
    """(23, 3) uint8: one colour per primitive (``dummy`` light grey) and a last row for 'unknown' (white)."""
    import matplotlib

    tab20 = matplotlib.colormaps["tab20"](np.arange(20))[:, :3]
    extra = np.array([[0.35, 0.35, 0.35], [0.82, 0.82, 0.82], [1.0, 1.0, 1.0]])  # zip_unzip, dummy, unknown
    return np.round(np.concatenate([tab20, extra]) * 255).astype(np.uint8)


class _StaticPlot:
    """The progress plot and primitive strips, rendered once; pixel maps for the per-frame cursor and markers."""

    def __init__(
        self, tracks: Sequence[_Track], gt: np.ndarray, labels: np.ndarray, width: int, height: int | None
    ) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap

        length = len(gt)
        t = np.arange(length)
        strips = [("expert label", labels)] + [(tr.name, tr.primitive) for tr in tracks if tr.primitive is not None]
        colours = _primitive_colours()
        counts = np.bincount(
            np.concatenate([np.asarray(p).ravel() for _, p in strips]) + 1, minlength=NUM_PRIMITIVES + 1
        )
        frequent = np.argsort(-counts[1:], kind="stable")[:_MAX_LEGEND]  # the most used primitives get a legend
        used = sorted(int(i) for i in frequent if counts[i + 1] > 0)
        # layout in pixels, converted to figure fractions: [progress axes][gap][strips][x ticks + label][legend]
        left = max(44, 12 + int(4.2 * max(len(name) for name, _ in strips)))
        ncol = max(1, (width - left - 10) // 95)
        legend_h = _legend_height(len(used), ncol)
        bottom = legend_h + _AXIS_LABEL_H
        strip_h = _STRIP_ROW_H * len(strips)
        if height is None:  # default: a progress panel about 0.3 x the width
            height = _even(_PLOT_TOP + _PLOT_GAP + strip_h + bottom + max(150, int(0.3 * width)))
        prog_h = height - _PLOT_TOP - _PLOT_GAP - strip_h - bottom
        if prog_h < _MIN_PROGRESS_H:
            raise ConfigError(
                f"`plot_height` must be at least {height - prog_h + _MIN_PROGRESS_H} px for {len(strips)} "
                f"primitive strips; got {height}"
            )
        span = (width - left - 10) / width
        dpi = 100
        fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
        ax = fig.add_axes((left / width, (bottom + strip_h + _PLOT_GAP) / height, span, prog_h / height))
        ax_strip = fig.add_axes((left / width, bottom / height, span, strip_h / height))
        ax.plot(t, gt, color=_GT_COLOUR, ls="--", lw=2.0, label="ground truth (physics progress)")
        for tr in tracks:
            ax.plot(t, tr.progress, color=tr.colour, lw=1.6, label=tr.label)
            q = tr.query_indices
            if q is not None and len(q) < length:
                q = q[(q >= 0) & (q < length)]
                ax.plot(q, tr.progress[q], "o", color=tr.colour, ms=2.5)
        ax.set_xlim(-0.5, max(length - 0.5, 0.5))
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("progress", fontsize=8)
        ax.tick_params(labelsize=7, labelbottom=False)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", framealpha=0.85)
        rows = np.stack([np.where(np.asarray(p) < 0, NUM_PRIMITIVES, np.asarray(p)) for _, p in strips])
        ax_strip.imshow(
            rows,
            aspect="auto",
            interpolation="nearest",
            cmap=ListedColormap(colours / 255.0),
            vmin=-0.5,
            vmax=len(colours) - 0.5,
            extent=(-0.5, length - 0.5, len(strips) - 0.5, -0.5),
        )
        ax_strip.set_yticks(range(len(strips)), [name for name, _ in strips], fontsize=6)
        ax_strip.tick_params(labelsize=7, length=2, pad=1)
        ax_strip.set_xlabel("frame (primitive per frame below the curves: expert label, then each backend)", fontsize=7)
        if used:
            fig.legend(
                [plt.Rectangle((0, 0), 1, 1, color=colours[i] / 255.0) for i in used],
                [PRIMITIVES[i] for i in used],
                fontsize=6,
                loc="lower left",
                bbox_to_anchor=(left / width, 0.0),
                frameon=False,
                ncol=ncol,
                handlelength=1.2,
                columnspacing=0.8,
                borderaxespad=0.2,
            )
        fig.canvas.draw()
        self.image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()  # (H, W, 3)
        # display coordinates have their origin bottom-left; image rows count from the top
        h = self.image.shape[0]
        xs = ax.transData.transform(np.stack([t, np.zeros(length)], 1))[:, 0]
        # the cursor is 2 px wide and starts on an even column, so yuv420p's 2x2 chroma blocks keep its colour
        self.cursor_x = np.clip(np.round(xs).astype(int) // 2 * 2, 0, self.image.shape[1] - 2)
        top = h - int(round(ax.get_window_extent().y1))
        bottom = h - int(round(ax_strip.get_window_extent().y0))
        self.cursor_rows = (max(top, 0), min(bottom, h))
        self.marker_y: list[np.ndarray] = []
        for tr in tracks:
            ys = ax.transData.transform(np.stack([t, np.nan_to_num(tr.progress, nan=-1.0)], 1))[:, 1]
            y = h - np.round(ys).astype(int)
            y[~np.isfinite(tr.progress)] = -1
            self.marker_y.append(y)
        self.marker_colours = [np.array(matplotlib.colors.to_rgb(tr.colour)) * 255 for tr in tracks]
        plt.close(fig)


def _legend_height(n_items: int, ncol: int) -> int:
    return 0 if n_items == 0 else 12 * (-(-n_items // ncol)) + 4


def _even(n: int) -> int:
    return n + (n % 2)


def _describe_track(tr: _Track, i: int) -> str:
    value = tr.progress[i]
    parts = [f"{tr.name[:12]:<12} p={value:5.3f}" if np.isfinite(value) else f"{tr.name[:12]:<12} p=  n/a"]
    if tr.primitive is not None:
        p = int(tr.primitive[i])
        name = PRIMITIVES[p] if p >= 0 else "?"
        parts.append(f"{name}" + (f" {100 * tr.confidence[i]:3.0f}%" if tr.confidence is not None else ""))
    if tr.group is not None:
        g = int(tr.group[i])
        parts.append(f"gate {PRIMITIVE_GROUPS[g][0] if 0 <= g < len(PRIMITIVE_GROUPS) else g}")
    elif tr.primitive is not None and tr.experts is not None and int(tr.primitive[i]) >= 0:
        parts.append(f"gate {PRIMITIVE_GROUPS[PRIMITIVE_TO_GROUP[int(tr.primitive[i])]][0]}")
    if tr.experts is not None:
        w = tr.experts[i]
        top = np.argsort(-w)[:2]
        parts.append("experts " + " ".join(f"e{int(e)}:{w[e]:.2f}" for e in top if w[e] > 0))
    return "  ".join(parts)


def render_video(
    episode: Episode,
    outputs: Mapping[str, RewardOutput | Mapping[str, np.ndarray]],
    path: str | os.PathLike[str],
    *,
    labels: Mapping[str, str] | None = None,
    fps: float | None = None,
    scale: int | None = None,
    plot_height: int | None = None,
    crf: int = 23,
    title: str | None = None,
) -> VideoStats:
    """Write an H.264 MP4 of ``episode``'s three cameras above a live plot of each backend's predicted progress.

    Args:
        episode: a :class:`sarm2_env.dataset.Episode` loaded with frames (T frames).
        outputs: backend name -> its predictions for this episode: a :class:`rewards.base.RewardOutput`, or a
            flat mapping of arrays as the benchmark stores them (``progress`` (T,), optional ``primitive`` (T,)
            indices or ``primitive_probs`` (T, 22), ``group`` (T,), ``expert_weights`` (T, E),
            ``query_indices``). May be empty (ground truth only). At most 9 backends.
        path: the ``.mp4`` to write (parent folders are created; written to a temporary name, then renamed).
        labels: backend name -> legend label (default: the name).
        fps: playback rate (default: ``episode.fps``).
        scale: integer upscale of the camera tiles (default: the smallest that makes them >= 160 px tall).
        plot_height: pixel height of the plot panel (default: a progress axes about 0.3 x the width, at least
            150 px, plus one primitive strip per backend that predicts primitives and their legend).
        crf: libx264 constant rate factor (lower is better quality; 23 is ffmpeg's default).
        title: header text (default: task id, episode id, success).

    Returns:
        :class:`VideoStats` with the frame count and size and the measured per-frame cost.

    Raises:
        InputShapeError: the episode has no frames or inconsistent shapes, or a backend's arrays do not have
            one entry per frame.
        ConfigError: a bad ``scale``, ``fps``, ``crf`` or ``plot_height``, or more than 9 backends.
    """
    from PIL import Image, ImageDraw

    length, h, w = _check_episode(episode)
    if len(outputs) > len(_COLOURS):
        raise ConfigError(f"`outputs` must hold at most {len(_COLOURS)} backends; got {len(outputs)}")
    labels = dict(labels or {})
    tracks = [
        _as_track(name, out, length, labels.get(name, name), _COLOURS[k])
        for k, (name, out) in enumerate(outputs.items())
    ]
    fps = float(episode.fps if fps is None else fps)
    if not (np.isfinite(fps) and fps > 0):
        raise ConfigError(f"`fps` must be a positive number; got {fps!r}")
    if scale is None:
        scale = max(1, -(-MIN_CAMERA_HEIGHT // h))
    if not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"`scale` must be a positive int; got {scale!r}")
    if not (isinstance(crf, int) and 0 <= crf <= 51):
        raise ConfigError(f"`crf` must be an int in [0, 51]; got {crf!r}")

    started = time.perf_counter()
    cam_h, cam_w = h * scale, w * scale
    width = _even(len(CAMERAS) * cam_w)
    # DejaVu Sans Mono advances 0.6 em per character: fit ~80 characters per info line
    font_size = int(np.clip((width - 30) / (0.61 * 80), 8, 18))
    font = _font(font_size)
    line_h = font_size + 4
    header_h = 2 * line_h + 4  # title, camera names
    info_h = (1 + len(tracks)) * line_h + 6
    calibrated = getattr(episode, "calibrated_progress", None)  # demo-time units, where the episode has it
    gt = np.asarray(episode.progress if calibrated is None else calibrated, dtype=np.float64)
    expert_labels = np.asarray(episode.primitive, dtype=np.int64)
    if plot_height is not None and (not isinstance(plot_height, int) or plot_height < 1):
        raise ConfigError(f"`plot_height` must be a positive int; got {plot_height!r}")
    plot = _StaticPlot(tracks, gt, expert_labels, width, None if plot_height is None else _even(plot_height))
    plot_h = plot.image.shape[0]
    info_h += (header_h + cam_h + info_h + plot_h) % 2  # libx264 with yuv420p needs an even height
    height = header_h + cam_h + info_h + plot_h

    # the static canvas: header with the camera names, white info strip, the plot
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, header_h + cam_h), fill=_HEADER_BG)
    if title is None:
        status = "success" if episode.success else "failure"
        title = f"{episode.task_id}  {episode.episode_id or '(no id)'}  [{status}]"
    draw.text((4, 2), title, fill=(255, 255, 255), font=font)
    for k, cam in enumerate(CAMERAS):
        x = k * cam_w + (cam_w - int(draw.textlength(cam, font=font))) // 2
        draw.text((max(x, k * cam_w + 2), 2 + line_h), cam, fill=(190, 190, 190), font=font)
    info_y = header_h + cam_h
    for k, colour in enumerate(plot.marker_colours):  # each backend's colour swatch, before its info line
        y = info_y + 3 + (k + 1) * line_h
        draw.rectangle((4, y + 3, 4 + font_size - 4, y + font_size - 1), fill=tuple(int(v) for v in colour))
    base = np.array(canvas)
    glyphs = _Glyphs(font)
    plot_y = info_y + info_h
    base[plot_y : plot_y + plot_h] = plot.image[:plot_h, :width]
    static_ms = 1000 * (time.perf_counter() - started)

    frames = [np.asarray(episode.frames[c]) for c in CAMERAS]
    buffer = np.empty_like(base)
    r0, r1 = plot.cursor_rows
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    overlay_s = encode_s = 0.0
    with atomic_path(final, suffix=final.suffix or ".mp4") as tmp:  # ffmpeg picks the container by extension
        writer = imageio_ffmpeg_module("writing videos needs").write_frames(
            str(tmp),
            (width, height),
            fps=fps,
            codec="libx264",
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            quality=None,
            macro_block_size=1,
            ffmpeg_log_level="error",
            output_params=["-crf", str(crf), "-preset", "veryfast"],
        )
        try:
            writer.send(None)  # start ffmpeg
            for i in range(length):
                t0 = time.perf_counter()
                np.copyto(buffer, base)
                for k, cam in enumerate(frames):
                    tile = cam[i]
                    if scale > 1:
                        tile = tile.repeat(scale, 0).repeat(scale, 1)
                    buffer[header_h : header_h + cam_h, k * cam_w : (k + 1) * cam_w] = tile
                cx = plot.cursor_x[i]
                buffer[plot_y + r0 : plot_y + r1, cx : cx + 2] = _CURSOR
                for y_map, colour in zip(plot.marker_y, plot.marker_colours):
                    y = y_map[i]
                    if y >= 0:
                        yy = plot_y + y
                        buffer[max(yy - 4, plot_y) : yy + 4, max(cx - 3, 0) : cx + 5] = colour
                label = PRIMITIVES[int(expert_labels[i])]
                glyphs.draw(
                    buffer,
                    4,
                    info_y + 3,
                    f"frame {i:4d}/{length - 1}  t={i / fps:6.2f}s  ground truth (physics) p={gt[i]:5.3f}  "
                    f"expert label {label}",
                )
                for k, tr in enumerate(tracks):
                    glyphs.draw(buffer, 8 + font_size, info_y + 3 + (k + 1) * line_h, _describe_track(tr, i))
                t1 = time.perf_counter()
                writer.send(buffer)
                overlay_s += t1 - t0
                encode_s += time.perf_counter() - t1
        finally:
            t1 = time.perf_counter()
            writer.close()
            encode_s += time.perf_counter() - t1
    stats = VideoStats(
        path=final,
        frames=length,
        width=width,
        height=height,
        fps=fps,
        static_ms=static_ms,
        ms_per_frame=1000 * overlay_s / length,
        encode_ms_per_frame=1000 * encode_s / length,
    )
    log.info(
        "wrote %s: %d frames %dx%d; static plot %.0f ms, overlay %.2f ms/frame, encode %.2f ms/frame",
        final,
        length,
        width,
        height,
        stats.static_ms,
        stats.ms_per_frame,
        stats.encode_ms_per_frame,
    )
    return stats


# --------------------------------------------------------------------------------------------------- loading


def load_episode(data: str | os.PathLike[str] | EpisodeDataset, episode: str | int) -> Episode:
    """Episode ``episode`` of a dataset, with frames: an episode id, or a position (``"3"``, ``-1``).

    An episode recorded at a query rate comes with a frame at every step (each rendered frame held until the next).

    Raises:
        UnknownNameError: no episode has that id (and it is not an in-range position); lists the ids.
        DatasetError: the dataset or the episode file cannot be read.
    """
    from sarm2_env.dataset import EpisodeDataset

    dataset = data if isinstance(data, EpisodeDataset) else EpisodeDataset(data)
    ids = dataset.episode_ids
    if isinstance(episode, str) and episode in ids:
        return dataset.load(ids.index(episode), frames=True).with_frames_at_every_step()
    try:
        position = int(episode)
    except (TypeError, ValueError):
        raise UnknownNameError("episode", str(episode), ids) from None
    if not -len(ids) <= position < len(ids):
        raise UnknownNameError(f"episode (position out of range for {len(ids)} episodes)", str(episode), ids)
    return dataset.load(position, frames=True).with_frames_at_every_step()


def _build_backend(name: str, checkpoint: str | None, device: str | None):
    from rewards.registry import reward_model_from_command_line

    return reward_model_from_command_line(name, checkpoint, device, flag=f"--checkpoint {name}=")


# --------------------------------------------------------------------------------------------------- benchmark


def _pick(candidates: list, per_task: int) -> list:
    """Up to ``per_task`` episodes, alternating failures and successes so both kinds are shown."""
    failures = [f for f in candidates if not f.success]
    successes = [f for f in candidates if f.success]
    picked = []
    while len(picked) < per_task and (failures or successes):
        for pool in (failures, successes):
            if pool and len(picked) < per_task:
                picked.append(pool.pop(0))
    return picked


#: backends that only restate ground truth (the video draws the physics progress itself)
_REFERENCE_BACKENDS = ("oracle", "sparse", "time_linear")
#: the benchmark's videos show at most this many backends (in the config's order)
MAX_VIDEO_BACKENDS = 8


def write_videos(state: Any, predictions: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]], per_task: int = 2):
    """Write ``per_task`` videos per task of a benchmark run under ``<run_dir>/videos/``.

    Episodes come from the held-out imperfect rollouts (failures and successes alternately), else the held-out
    demos; every backend with predictions for the episode is drawn. A video that fails is logged and skipped.

    Args:
        state: the benchmark's :class:`benchmarks.pipeline.RunState` (``features``, ``models``, ``run_dir``,
            ``data_dir(split)``).
        predictions: ``{backend: {"<set>|<episode_id>": {array name: array}}}`` as ``stage_predict`` returns.
        per_task: videos per task.

    Returns:
        The written paths.
    """
    from sarm2_env.dataset import EpisodeDataset

    if not isinstance(per_task, int) or per_task < 0:
        raise ConfigError(f"`per_task` must be a non-negative int; got {per_task!r}")
    out_dir = Path(state.run_dir) / "videos"
    labels = {name: getattr(model, "label", name) for name, model in getattr(state, "models", {}).items()}
    written: list[Path] = []
    datasets: dict[str, EpisodeDataset] = {}
    for task in state.task_ids:
        chosen: list[tuple[str, Any]] = []
        for split in ("heldout_rollouts", "heldout_demos"):
            feats = [f for f in state.features.get(split, []) if f.task_id == task]
            chosen += [(split, f) for f in _pick(feats, per_task - len(chosen))]
        for split, feats in chosen:
            key = f"{split}|{feats.episode_id}"
            # the ground truth is drawn anyway, so ground-truth references are left out; cap what fits
            outputs = {
                b: results[key] for b, results in predictions.items() if key in results and b not in _REFERENCE_BACKENDS
            }
            outputs = dict(list(outputs.items())[:MAX_VIDEO_BACKENDS])
            path = out_dir / f"{task.split('/')[-1].removesuffix('-v0')}_{split}_{feats.episode_id}.mp4"
            try:
                if split not in datasets:
                    datasets[split] = EpisodeDataset(state.data_dir(split))
                episode = load_episode(datasets[split], feats.episode_id)
                stats = render_video(episode, outputs, path, labels=labels)
                written.append(stats.path)
            except Exception as exc:  # videos are a convenience: never lose the report over one
                log.error("video %s failed: %s: %s", path.name, type(exc).__name__, exc)
    return written


# --------------------------------------------------------------------------------------------------- CLI


def _parse_checkpoints(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"`--checkpoint` must be NAME=PATH; got {item!r}")
        out[name] = path
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.render_video``: render one episode with the named backends' predictions."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.render_video", description=main.__doc__)
    parser.add_argument("--data", required=True, help="dataset directory (sarm2_env.dataset layout)")
    parser.add_argument("--episode", required=True, help="episode id, or its position in the dataset")
    parser.add_argument("--backends", default="oracle", help="comma-separated reward backends (default: oracle)")
    parser.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="checkpoint of a backend (repeatable); trainable backends default to their shipped checkpoint",
    )
    parser.add_argument("--out", required=True, help="output .mp4")
    parser.add_argument("--device", default=None, help="torch device for learned backends")
    parser.add_argument("--scale", type=int, default=None, help="integer upscale of the camera tiles")
    parser.add_argument("--crf", type=int, default=23, help="libx264 quality (0 lossless, 23 default)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    checkpoints = _parse_checkpoints(args.checkpoint)
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    unknown = sorted(set(checkpoints) - set(names))
    if unknown:
        raise ConfigError(f"`--checkpoint` names backends not in --backends: {unknown}")
    episode = load_episode(args.data, args.episode)
    outputs, labels = {}, {}
    for name in names:
        model = _build_backend(name, checkpoints.get(name), args.device)
        if not model.covers(episode.task_id):
            log.warning(
                "backend %s was not trained on %s; its predictions are out of distribution", name, episode.task_id
            )
        outputs[name] = model.predict_episode(episode)
        labels[name] = getattr(model, "label", name)
    stats = render_video(episode, outputs, args.out, labels=labels, scale=args.scale, crf=args.crf)
    print(
        f"wrote {stats.path} ({stats.frames} frames, {stats.width}x{stats.height}, "
        f"overlay {stats.ms_per_frame:.2f} ms/frame, encode {stats.encode_ms_per_frame:.2f} ms/frame)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
