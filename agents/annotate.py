"""Rollout annotation web page: label rollouts for reward-model adaptation in a browser.

Usage::

    python -m agents.annotate --data data/rollouts --labels data/rollouts/labels.jsonl [--port 8765]

then open the printed URL (``http://127.0.0.1:8765/``). The server listens on 127.0.0.1 only and uses the
standard library alone (``http.server``); the page is static HTML/JS in ``agents/annotate_static``.

Binding to 127.0.0.1 keeps other machines out, not other web pages open in the same browser, and the labels
written here train the reward model SPIRAL optimises. So the server also refuses (403, nothing written):

- any request whose ``Host`` header is not its own loopback address and port (``127.0.0.1:<port>``,
  ``localhost:<port>``, ``[::1]:<port>``): a DNS-rebinding page reaches the server under a foreign name;
- any ``POST`` without the write token, a random value made at launch and served only inside the page
  (``<meta name="sarm2-annotate-token">``, sent back in the ``X-Annotate-Token`` header): another origin cannot
  read the page, so it cannot learn the token;
- any ``POST`` whose ``Content-Type`` is not ``application/json`` (cross-site "simple" requests cannot set it
  without a preflight, which this server never grants) or whose ``Origin``, when present, is not the page's own.

The token is never logged nor written to the labels file.

On the page: the episode list shows which rollouts are annotated and opens the first unannotated one (so a
session resumes where the last one stopped; ``#<episode_id>`` in the URL opens a given one). The three camera
views play with a scrubber (space plays/pauses, arrow keys step, shift+arrow steps 10). Mark the start of a range
with ``i`` (and optionally its end with ``o``; otherwise the current frame is the end), then press ``1``/``f``
fast, ``2``/``s`` slow, ``3``/``a`` adjust or ``4``/``m`` mistake; the next range starts where that one ended.
``x`` marks the current frame as a catastrophic failure, ``u`` removes the last segment, ``ctrl+s`` saves. The
progress curve that :func:`agents.annotation.synthesize_progress` will produce is drawn live; the server
recomputes it on every save and says whether the page's preview agreed.

Saves go through :class:`agents.annotation.AnnotationStore` (one JSONL line per rollout, atomic rewrites;
lines it cannot parse are reported on the page and kept verbatim).

HTTP API (JSON unless noted)::

    GET  /                                    the page
    GET  /static/<file>                       its JS / CSS
    GET  /api/state                           episodes, which are annotated, first unannotated, file problems
    GET  /api/episode/<episode_id>            metadata, the saved annotation (if any) and its curve
    GET  /api/frame/<episode_id>/<camera>/<t>.jpg   one camera frame (image/jpeg)
    POST /api/annotation/<episode_id>         {"final_progress", "segments", "catastrophic_frame", "annotator",
                                              "notes", "curve"?} -> the stored annotation and the server's curve
"""

from __future__ import annotations

import argparse
import collections
import hmac
import json
import logging
import os
import re
import secrets
import sys
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from agents.annotation import (
    LABEL_DESCRIPTIONS,
    LABEL_WEIGHTS,
    LABELS,
    AnnotationError,
    AnnotationFileError,
    AnnotationStore,
    RolloutAnnotation,
    parse_segments,
    synthesize_progress,
)
from sarm2_env.constants import CAMERAS
from sarm2_env.dataset import Episode, EpisodeDataset
from sarm2_env.errors import DatasetError

__all__ = ["HOST", "AnnotationServer", "main", "make_server"]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
STATIC_DIR = Path(__file__).with_name("annotate_static")
#: Largest accepted request body (a curve of 100k frames is ~2 MB of JSON).
MAX_BODY = 16 * 1024 * 1024
#: Largest |page curve - server curve| that still counts as agreement (the server's curve is float32).
CURVE_TOLERANCE = 1e-5
_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_SAVE_KEYS = ("final_progress", "segments", "catastrophic_frame", "annotator", "notes", "curve")
_FRAME_RE = re.compile(r"/api/frame/([^/]+)/([^/]+)/(\d+)\.jpg")
#: Header that carries the write token on every POST (a custom header also forces a CORS preflight).
TOKEN_HEADER = "X-Annotate-Token"
#: Placeholder in ``index.html`` that the server replaces with the token when it serves the page.
_TOKEN_PLACEHOLDER = "__SARM2_ANNOTATE_TOKEN__"
#: The names under which the page itself reaches the server (the ``Host`` of every accepted request).
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


class _HTTPError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AnnotationServer(ThreadingHTTPServer):
    """HTTP server of the annotation page for one dataset and one label file, bound to 127.0.0.1.

    Args:
        data: dataset root (a ``dataset.json`` directory, see :mod:`sarm2_env.dataset`).
        labels: the JSONL annotation file (created on the first save).
        port: TCP port; 0 picks a free one (see :attr:`url`).
        jpeg_quality: quality of the served camera frames.

    Raises:
        DatasetError: ``data`` is not a readable dataset.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        data: str | os.PathLike[str],
        labels: str | os.PathLike[str],
        port: int = 8765,
        jpeg_quality: int = 90,
    ) -> None:
        self.data_root = Path(data)
        self._dataset = EpisodeDataset(self.data_root)
        self.store = AnnotationStore(labels)
        self.jpeg_quality = int(jpeg_quality)
        self._cache: collections.OrderedDict[str, Episode] = collections.OrderedDict()
        self._cache_lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # Made fresh at every launch and kept in memory only: the page carries it, nothing on disk does.
        self._token = secrets.token_urlsafe(32)
        super().__init__((HOST, int(port)), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log (instead of printing to stderr) errors outside a request handler, e.g. a browser closing."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            logger.debug("connection from %s ended: %s", client_address, exc)
        else:
            logger.exception("error serving %s", client_address)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        return f"http://{HOST}:{self.server_address[1]}/"

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """``Host`` header values the server answers: its loopback names with its port."""
        port = self.server_address[1]
        return frozenset(f"{name}:{port}" for name in _LOOPBACK_NAMES)

    @property
    def allowed_origins(self) -> frozenset[str]:
        """``Origin`` header values a write may carry: the page's own origin under each loopback name."""
        return frozenset(f"http://{host}" for host in self.allowed_hosts)

    def token_matches(self, presented: str | None) -> bool:
        """Whether ``presented`` is this launch's write token (constant-time comparison)."""
        return presented is not None and hmac.compare_digest(presented.encode("utf-8"), self._token.encode("utf-8"))

    def page_html(self) -> bytes:
        """``index.html`` with this launch's write token filled in."""
        html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        return html.replace(_TOKEN_PLACEHOLDER, self._token).encode("utf-8")

    # -- background use (tests, notebooks)

    def start(self) -> AnnotationServer:
        """Serve from a daemon thread; returns self."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="annotate-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()

    def __enter__(self) -> AnnotationServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- data access

    def dataset(self) -> EpisodeDataset:
        """The dataset, its index re-read when it changed (rollouts may be added while annotating)."""
        try:
            fresh = EpisodeDataset(self.data_root)
        except DatasetError as exc:
            logger.warning("keeping the last good index of %s: %s", self.data_root, exc)
            return self._dataset
        if fresh.episode_ids != self._dataset.episode_ids:
            with self._cache_lock:
                self._cache.clear()
        self._dataset = fresh
        return fresh

    def _entry(self, episode_id: str) -> dict[str, Any]:
        ds = self._dataset
        try:
            return ds.entries[ds.index_of(episode_id)]
        except KeyError:
            ds = self.dataset()
            try:
                return ds.entries[ds.index_of(episode_id)]
            except KeyError:
                raise _HTTPError(
                    HTTPStatus.NOT_FOUND, f"episode {episode_id!r} is not in the dataset {self.data_root}"
                ) from None

    def episode(self, episode_id: str) -> Episode:
        """The episode with frames, from a 2-episode cache."""
        self._entry(episode_id)
        with self._cache_lock:
            if episode_id in self._cache:
                self._cache.move_to_end(episode_id)
                return self._cache[episode_id]
            try:
                # a query-rate episode is shown with each rendered frame held until the next
                episode = self._dataset.load(self._dataset.index_of(episode_id)).with_frames_at_every_step()
            except DatasetError as exc:
                raise _HTTPError(HTTPStatus.UNPROCESSABLE_ENTITY, f"cannot load episode {episode_id!r}: {exc}") from exc
            self._cache[episode_id] = episode
            while len(self._cache) > 2:
                self._cache.popitem(last=False)
            return episode

    def _annotations(self) -> tuple[dict[str, RolloutAnnotation], list[str]]:
        errors: list[str] = []
        try:
            annotations, bad_lines = self.store.read()
        except AnnotationFileError as exc:
            return {}, [f"{exc} (the file is left untouched; saving is refused until it is fixed)"]
        for bad in bad_lines:
            errors.append(
                f"{self.store.path} line {bad.line}: {bad.message} "
                "(this line is kept as it is on every save; fix or delete it by hand)"
            )
        return annotations, errors

    # -- API

    def state(self) -> dict[str, Any]:
        """Payload of ``GET /api/state``."""
        ds = self.dataset()
        annotations, errors = self._annotations()
        episodes = []
        for e in ds.entries:
            ann = annotations.get(e["episode_id"])
            problem = None
            if ann is not None and ann.length != e["length"]:
                problem = f"annotated with length {ann.length} but the episode has {e['length']} frames"
                errors.append(f"episode {e['episode_id']!r}: {problem}; re-annotate it")
            episodes.append(
                {
                    "episode_id": e["episode_id"],
                    "task_id": e["task_id"],
                    "length": e["length"],
                    "success": e["success"],
                    "annotated": ann is not None and problem is None,
                    "problem": problem,
                }
            )
        pending = [e["episode_id"] for e in episodes if not e["annotated"]]
        return {
            "dataset": str(ds.root),
            "labels_file": str(self.store.path),
            "labels": list(LABELS),
            "weights": LABEL_WEIGHTS,
            "descriptions": LABEL_DESCRIPTIONS,
            "cameras": list(CAMERAS),
            "episodes": episodes,
            "annotated": len(episodes) - len(pending),
            "total": len(episodes),
            "first_pending": pending[0] if pending else None,
            "errors": errors,
        }

    def episode_info(self, episode_id: str) -> dict[str, Any]:
        """Payload of ``GET /api/episode/<id>``."""
        entry = self._entry(episode_id)
        episode = self.episode(episode_id)
        annotations, _ = self._annotations()
        ann = annotations.get(episode_id)
        problem = None
        if ann is not None and ann.length != episode.length:
            problem = (
                f"the saved annotation has length {ann.length} but the episode has {episode.length} frames; "
                "it was not loaded (saving replaces it)"
            )
            ann = None
        h, w = episode.image_size or (0, 0)
        return {
            "episode_id": episode_id,
            "task_id": entry["task_id"],
            "instruction": episode.instruction,
            "success": bool(episode.success),
            "length": episode.length,
            "fps": float(episode.fps),
            "cameras": list(CAMERAS),
            "image_size": [h, w],
            "annotation": ann.to_dict() if ann is not None else None,
            "curve": synthesize_progress(ann).tolist() if ann is not None else None,
            "problem": problem,
        }

    def frame_jpeg(self, episode_id: str, camera: str, t: int) -> bytes:
        """One camera frame as JPEG bytes."""
        import imageio.v3 as iio

        if camera not in CAMERAS:
            raise _HTTPError(HTTPStatus.NOT_FOUND, f"camera must be one of {list(CAMERAS)}; got {camera!r}")
        episode = self.episode(episode_id)
        if not 0 <= t < episode.length:
            raise _HTTPError(HTTPStatus.NOT_FOUND, f"frame must be in [0, {episode.length}); got {t}")
        image = np.ascontiguousarray(episode.frames[camera][t])
        return iio.imwrite("<bytes>", image, extension=".jpg", quality=self.jpeg_quality)

    def save(self, episode_id: str, body: Any) -> dict[str, Any]:
        """Validate, verify the page's curve, and upsert (``POST /api/annotation/<id>``)."""
        entry = self._entry(episode_id)
        if not isinstance(body, dict):
            raise _HTTPError(HTTPStatus.BAD_REQUEST, f"the request body must be a JSON object; got {body!r:.80}")
        unknown = sorted(set(body) - set(_SAVE_KEYS))
        if unknown:
            raise _HTTPError(HTTPStatus.BAD_REQUEST, f"keys must be among {list(_SAVE_KEYS)}; got unknown {unknown}")
        try:
            annotation = RolloutAnnotation(
                episode_id=episode_id,
                length=entry["length"],
                final_progress=body.get("final_progress"),  # type: ignore[arg-type]
                segments=parse_segments(body.get("segments", [])),
                catastrophic_frame=body.get("catastrophic_frame"),
                annotator=body.get("annotator", "unknown"),
                notes=body.get("notes", "") or "",
            )
        except AnnotationError as exc:
            raise _HTTPError(HTTPStatus.BAD_REQUEST, f"not saved: {exc}") from None
        curve = synthesize_progress(annotation)
        verified, max_diff, where = None, None, None
        page_curve = body.get("curve")
        if page_curve is not None:
            ok_shape = isinstance(page_curve, list) and len(page_curve) == len(curve)
            try:
                page = np.asarray(page_curve, dtype=np.float64) if ok_shape else None
            except (TypeError, ValueError):
                page = None
            if page is None or not np.all(np.isfinite(page)):
                verified = False
            else:
                diff = np.abs(page - curve.astype(np.float64))
                max_diff, where = float(diff.max()), int(diff.argmax())
                verified = max_diff <= CURVE_TOLERANCE
            if not verified:
                logger.warning(
                    "episode %s: the page's progress curve disagrees with synthesize_progress (max diff %s at %s)",
                    episode_id,
                    max_diff,
                    where,
                )
        with self._save_lock:
            try:
                stored = self.store.upsert(annotation)
            except AnnotationFileError as exc:
                raise _HTTPError(HTTPStatus.CONFLICT, f"not saved: {exc}") from None
        logger.info("saved the annotation of %s to %s", episode_id, self.store.path)
        state = self.state()
        return {
            "ok": True,
            "annotation": stored.to_dict(),
            "curve": curve.tolist(),
            "verified": verified,
            "max_abs_diff": max_diff,
            "max_diff_frame": where,
            "first_pending": state["first_pending"],
            "annotated": state["annotated"],
            "total": state["total"],
            "errors": state["errors"],
        }


class _Handler(BaseHTTPRequestHandler):
    server: AnnotationServer
    protocol_version = "HTTP/1.1"
    server_version = "sarm2-annotate/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        logger.debug("%s - %s", self.address_string(), format % args)

    # -- responses

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, cache: str = "no-store") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        body = json.dumps(payload, allow_nan=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json({"error": message, "status": int(status)}, status)

    def _check_host(self) -> None:
        host = self.headers.get("Host")
        if host is None or host.lower() not in self.server.allowed_hosts:
            self.close_connection = True
            raise _HTTPError(
                HTTPStatus.FORBIDDEN,
                f"refused: Host must be one of {sorted(self.server.allowed_hosts)}; got {host!r} "
                "(the annotation server answers only its own loopback address)",
            )

    def _check_write(self) -> None:
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            raise _HTTPError(HTTPStatus.FORBIDDEN, f"refused: Content-Type must be application/json; got {ctype!r}")
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() not in self.server.allowed_origins:
            raise _HTTPError(
                HTTPStatus.FORBIDDEN,
                f"refused: Origin must be the page's own ({self.server.url.rstrip('/')}); got {origin!r}",
            )
        if not self.server.token_matches(self.headers.get(TOKEN_HEADER)):
            raise _HTTPError(
                HTTPStatus.FORBIDDEN,
                f"refused: missing or wrong {TOKEN_HEADER} header (writes are accepted only from the page itself; "
                "reload it if the server was restarted)",
            )

    def _dispatch(self, handler: Any) -> None:
        try:
            self._check_host()
            handler()
        except _HTTPError as exc:
            self._error(exc.status, exc.message)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away during %s %s", self.command, self.path)
        except Exception as exc:  # noqa: BLE001 - the page shows every failure instead of a dropped connection
            logger.exception("error serving %s %s", self.command, self.path)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {exc}")

    # -- routes

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch(self._post)

    def _get(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path in ("/", "/index.html", "/static/index.html"):
            return self._send(HTTPStatus.OK, self.server.page_html(), _CONTENT_TYPES[".html"])
        if path.startswith("/static/"):
            return self._static(path[len("/static/") :])
        if path == "/api/state":
            return self._json(self.server.state())
        if path.startswith("/api/episode/"):
            episode_id = urllib.parse.unquote(path[len("/api/episode/") :])
            return self._json(self.server.episode_info(episode_id))
        match = _FRAME_RE.fullmatch(path)
        if match:
            episode_id, camera = (urllib.parse.unquote(g) for g in match.group(1, 2))
            body = self.server.frame_jpeg(episode_id, camera, int(match.group(3)))
            return self._send(HTTPStatus.OK, body, "image/jpeg", cache="private, max-age=3600")
        raise _HTTPError(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def _static(self, name: str) -> None:
        allowed = {p.name for p in STATIC_DIR.iterdir() if p.is_file()} if STATIC_DIR.is_dir() else set()
        if name not in allowed:
            raise _HTTPError(HTTPStatus.NOT_FOUND, f"no such file: {name}")
        file = STATIC_DIR / name
        self._send(HTTPStatus.OK, file.read_bytes(), _CONTENT_TYPES.get(file.suffix, "application/octet-stream"))

    def _post(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        # Refuse before reading the body; the unread body makes the connection unusable, so close it.
        try:
            self._check_write()
        except _HTTPError:
            self.close_connection = True
            raise
        try:
            size = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            size = -1
        if not 0 <= size <= MAX_BODY:
            self.close_connection = True
            status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if size > MAX_BODY else HTTPStatus.BAD_REQUEST
            raise _HTTPError(status, f"Content-Length must be in [0, {MAX_BODY}]; got {size}")
        raw = self.rfile.read(size)
        if not path.startswith("/api/annotation/"):
            raise _HTTPError(HTTPStatus.NOT_FOUND, f"no such endpoint: POST {path}")
        try:
            body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as exc:
            raise _HTTPError(HTTPStatus.BAD_REQUEST, f"the request body must be JSON; got an error: {exc}") from None
        episode_id = urllib.parse.unquote(path[len("/api/annotation/") :])
        self._json(self.server.save(episode_id, body))


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number the annotation format accepts")


def make_server(
    data: str | os.PathLike[str], labels: str | os.PathLike[str], port: int = 8765, **kwargs: Any
) -> AnnotationServer:
    """Build (but do not start) an :class:`AnnotationServer`; ``port=0`` picks a free port."""
    return AnnotationServer(data, labels, port=port, **kwargs)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``python -m agents.annotate --data DIR --labels FILE [--port N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m agents.annotate",
        description="Serve the rollout annotation page on 127.0.0.1 (labels for reward-model adaptation).",
    )
    parser.add_argument("--data", required=True, help="dataset directory (with dataset.json)")
    parser.add_argument("--labels", required=True, help="JSONL annotation file (created on the first save)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        server = make_server(args.data, args.labels, port=args.port)
    except DatasetError as exc:
        parser.error(f"--data: {exc}")
    except OSError as exc:
        parser.error(f"--port {args.port}: cannot listen on {HOST} ({exc})")
    state = server.state()
    for message in state["errors"]:
        logger.warning("%s", message)
    print(
        f"annotating {state['total']} episodes of {args.data} ({state['annotated']} done) into {args.labels}\n"
        f"open {server.url} in a browser on this machine (ctrl+c to stop); saves are accepted only from that page, "
        "so reload it if you restart the server",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
