"""Rate limits as a sliding-window counter: O(1) cache work per request, whatever the rate.

DRF's SimpleRateThrottle keeps the timestamp of every request in the window and reads, trims and
rewrites (pickles) that whole list on every request — at 1,200/min that is up to 1,200 floats per
polled status read. Here each window is one integer counter in the shared cache (`add` + `incr`,
atomic on Redis), and the limit is checked against the current window's count plus the previous
window's, weighted by how much of it still overlaps the last `duration` seconds (the estimate
Cloudflare and nginx use). There is no burst at window boundaries: a client that used its quota
at the end of one window is still held back at the start of the next.
"""

from __future__ import annotations

from typing import Any

from rest_framework import throttling
from rest_framework.request import Request


class SlidingWindowMixin:
    """For SimpleRateThrottle subclasses: same rates, cache, keys and `Retry-After`, cheaper counting."""

    cache: Any
    duration: int
    num_requests: int
    rate: str | None
    timer: Any
    get_cache_key: Any  # the throttle class's own (user id, client address, ...)

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        current, previous = f"{key}:{window}", f"{key}:{window - 1}"
        prior = self.cache.get(previous, 0)
        if self.cache.add(current, 1, self.duration * 2):
            count = 1
        else:
            try:
                count = self.cache.incr(current)
            except ValueError:  # expired between add and incr
                self.cache.set(current, 1, self.duration * 2)
                count = 1
        elapsed = (self.now - window * self.duration) / self.duration  # of the current window, 0..1
        if count + prior * (1 - elapsed) <= self.num_requests:
            return True
        self.count, self.prior, self.elapsed = self.cache.decr(current), prior, elapsed  # a refusal doesn't count
        return False

    def wait(self) -> float | None:
        """Seconds until one more request fits under the limit again (the `Retry-After`)."""
        limit, d = self.num_requests, self.duration
        if self.count + 1 > limit:
            # This window alone is full: wait for the next one, then for this count (now the previous
            # window's) to weigh little enough.
            return (1 - self.elapsed) * d + max(0.0, 1 - (limit - 1) / max(self.count, 1)) * d
        # The previous window's weight is what holds us back: wait until it has decayed enough.
        needed = 1 - (limit - 1 - self.count) / max(self.prior, 1)
        return max(0.0, (needed - self.elapsed) * d)


class UserRateThrottle(SlidingWindowMixin, throttling.UserRateThrottle):
    pass


class AnonRateThrottle(SlidingWindowMixin, throttling.AnonRateThrottle):
    pass
