"""Watch mode: keep pages current while sessions are being written.

Polls file sizes and mtimes (growth is seen by size even when the clock is coarse),
reads only appended bytes, leaves a torn last line until it is complete, re-renders
only exchanges that changed, and replaces pages atomically.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .publish import Publisher


def watch(pub: Publisher, on_update: Callable[[list[dict], float], None],
          interval: float = 0.25, rediscover_every: float = 2.0, stop_after: float | None = None) -> None:
    """Poll a built publisher until interrupted (or `stop_after` seconds, for tests)."""
    started = time.monotonic()
    last_scan = started
    while True:
        if stop_after is not None and time.monotonic() - started > stop_after:
            return
        time.sleep(interval)
        now = time.monotonic()
        rediscover = now - last_scan >= rediscover_every
        if rediscover:
            last_scan = now
        t0 = time.perf_counter()
        changed = pub.poll(rediscover=rediscover)
        if changed:
            on_update(changed, time.perf_counter() - t0)
