"""Reading the rate limits an endpoint announces: every spelling and duration, exact values."""

from __future__ import annotations

from datetime import datetime

import pytest
from fake_llm import FakeLLM

from workers.annotate.rate_headers import Grant, granted_limits, parse_duration, parse_reset


@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("59.5s", 59.5), ("1h2m3.5s", 3723.5),
    ("1m30s", 90.0), ("500us", 0.0005), ("250µs", 0.00025), ("100ns", 1e-7), ("0s", 0.0),
    ("2h", 7200.0), ("1.5", 1.5), ("7", 7.0), (" 3s ", 3.0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("text", ["", "s", "1x", "1s2", "abc", "-1s", "1 s", "nan", "inf"])
def test_not_durations(text):
    assert parse_duration(text) is None


def test_resets_as_rfc3339_times():
    now = datetime.fromisoformat("2026-12-07T04:30:00+00:00").timestamp()
    assert parse_reset("2026-12-07T04:30:10Z", now) == 10.0
    assert parse_reset("2026-12-07T04:30:10.250Z", now) == 10.25
    assert parse_reset("2026-12-07T05:30:07+01:00", now) == 7.0
    assert parse_reset("2026-12-07T04:29:00Z", now) == 0.0  # already past
    assert parse_reset("2026-12-07T04:30:10", now) is None  # no zone: cannot be placed
    assert parse_reset("6m0s", now) == 360.0
    assert parse_reset("soon", now) is None


def test_openai_headers():
    headers = {
        "X-RateLimit-Limit-Requests": "60", "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "1s", "x-ratelimit-limit-tokens": "150000",
        "x-ratelimit-remaining-tokens": "149984", "x-ratelimit-reset-tokens": "6m0s",
        "content-type": "application/json",
    }
    assert granted_limits(headers) == {"requests": Grant(60.0, 59.0, 1.0),
                                       "tokens": Grant(150000.0, 149984.0, 360.0)}


def test_anthropic_headers():
    now = datetime.fromisoformat("2026-12-07T04:30:00+00:00").timestamp()
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": "2026-12-07T04:30:01.200Z",
        "Anthropic-RateLimit-Tokens-Limit": "40000",
        "anthropic-ratelimit-tokens-remaining": "39000",
        "anthropic-ratelimit-tokens-reset": "2026-12-07T04:30:02Z",
    }
    assert granted_limits(headers, now) == {"requests": Grant(50.0, 0.0, pytest.approx(1.2)),
                                            "tokens": Grant(40000.0, 39000.0, 2.0)}


@pytest.mark.parametrize("headers", [
    None, {},
    {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59"},  # no reset
    {"x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "1s"},  # no limit
    {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "many",
     "x-ratelimit-reset-requests": "1s"},
    {"x-ratelimit-limit-requests": "0", "x-ratelimit-remaining-requests": "0",
     "x-ratelimit-reset-requests": "1s"},  # a limit of nothing is no grant
    {"retry-after": "1"},
])
def test_incomplete_or_unreadable_headers_grant_nothing(headers):
    assert granted_limits(headers) == {}


def test_remaining_is_clamped_to_the_limit():
    headers = {"x-ratelimit-limit-requests": "5", "x-ratelimit-remaining-requests": "9",
               "x-ratelimit-reset-requests": "20ms"}
    assert granted_limits(headers) == {"requests": Grant(5.0, 5.0, 0.02)}


@pytest.mark.parametrize(("seconds", "text"), [
    (0.02, "20ms"), (0.0004, "1ms"), (1.0, "1s"), (59.5, "59.5s"), (360.0, "6m0s"),
    (90.25, "1m30.25s"),
])
def test_the_fake_endpoint_writes_what_is_read(seconds, text):
    assert FakeLLM.go_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(max(seconds, 0.001))
