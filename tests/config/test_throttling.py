"""The sliding-window rate limit (config/throttling.py), driven by a fake clock."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIRequestFactory

from config.throttling import UserRateThrottle
from tests.factories import UserFactory


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def user(db):
    return UserFactory()


def throttle(clock: Clock, rate: str = "4/min") -> UserRateThrottle:
    limiter = UserRateThrottle()
    limiter.rate = rate
    limiter.num_requests, limiter.duration = limiter.parse_rate(rate)
    limiter.timer = clock
    return limiter


def allowed(clock: Clock, user, rate: str = "4/min") -> tuple[bool, float | None]:
    request = APIRequestFactory().get("/")
    request.user = user
    limiter = throttle(clock, rate)
    ok = limiter.allow_request(request, view=None)
    return ok, (None if ok else limiter.wait())


def test_it_allows_the_rate_and_refuses_the_next_request_with_a_wait(user):
    cache.clear()
    clock = Clock(600.0)  # the start of a window

    results = [allowed(clock, user)[0] for _ in range(4)]
    refused, wait = allowed(clock, user)

    assert results == [True] * 4
    assert refused is False
    assert wait is not None
    assert 60 <= wait <= 120


def test_a_full_window_still_holds_back_the_start_of_the_next_one(user):
    cache.clear()
    clock = Clock(659.0)  # the last second of a window
    assert all(allowed(clock, user)[0] for _ in range(4))

    clock.now = 661.0  # the next window has started, but the last minute saw 4 requests
    ok, wait = allowed(clock, user)

    assert ok is False
    assert wait is not None
    assert wait > 0


def test_requests_are_allowed_again_once_the_last_minute_is_quiet(user):
    cache.clear()
    clock = Clock(600.0)
    assert all(allowed(clock, user)[0] for _ in range(4))
    assert allowed(clock, user)[0] is False

    clock.now = 600.0 + 120  # two windows later nothing weighs any more
    assert [allowed(clock, user)[0] for _ in range(4)] == [True] * 4


def test_refused_requests_do_not_count(user):
    cache.clear()
    clock = Clock(600.0)
    assert all(allowed(clock, user)[0] for _ in range(4))
    for _ in range(10):
        assert allowed(clock, user)[0] is False

    clock.now = 690.0  # half the previous window (4 requests) still overlaps: 2 of them weigh
    assert [allowed(clock, user)[0] for _ in range(3)] == [True, True, False]
