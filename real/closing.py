"""Lifetime of the station's resources (arms, cameras, the env): closed on leaving a ``with`` block and, as a
last resort, when garbage-collected, so an exception or a forgotten ``close()`` never leaves a motor enabled or
a camera pipeline running."""

from __future__ import annotations


class ClosedOnExit:
    """Mixin for a class with an idempotent ``close()``: ``__exit__`` and ``__del__`` call it.

    ``__enter__`` stays with the class (a device opens there; the env is already open).
    """

    def close(self) -> None:  # pragma: no cover - every user defines its own
        """Release the resource; safe to call twice."""
        raise NotImplementedError

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown: modules may already be gone
            pass
