"""What an LLM endpoint says it grants, read from its response headers.

Hosted endpoints publish their own rate limits on every response; a configured limit that is
higher than theirs only earns 429s. Two spellings are common:

* OpenAI (and the many servers copying it): ``x-ratelimit-limit-requests``,
  ``x-ratelimit-remaining-requests``, ``x-ratelimit-reset-requests`` and the same with
  ``-tokens``; the reset is a Go-style duration such as ``1s``, ``6m0s`` or ``20ms``.
* Anthropic: ``anthropic-ratelimit-requests-limit``, ``-remaining``, ``-reset`` and the same
  for ``tokens``; the reset is an RFC 3339 time.

Both mean: ``remaining`` more units may be sent before ``reset``, when the allowance is back to
``limit``. Parsing is kept apart from the Redis side (``rate_limit.py``) so every spelling and
duration can be tested exactly, without a server.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

KINDS = ("requests", "tokens")

# Go's time.Duration.String() units, longest first so "ms" is not read as "m" + "s"
_UNITS = {"h": 3600.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9,
          "m": 60.0, "s": 1.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"({_NUMBER})(ms|us|µs|μs|ns|h|m|s)")
_BARE = re.compile(rf"{_NUMBER}")


@dataclass(frozen=True)
class Grant:
    """One kind's allowance: ``remaining`` of ``limit`` units until ``reset_s`` from now."""

    limit: float
    remaining: float
    reset_s: float


def parse_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``6m0s``, ``1h2m3.5s``, ``20ms``) or a bare number of
    seconds; ``None`` when it is neither."""
    text = text.strip()
    if not text:
        return None
    if _BARE.fullmatch(text):
        return float(text)
    pos, total = 0, 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    return total if pos == len(text) else None


def parse_reset(text: str, now: float | None = None) -> float | None:
    """Seconds from ``now`` until a reset given as a duration or an RFC 3339 time (a time
    already past gives 0)."""
    seconds = parse_duration(text)
    if seconds is not None:
        return seconds
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None  # a time without a zone cannot be placed
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _number(text: str | None) -> float | None:
    if text is None or not _BARE.fullmatch(text.strip()):
        return None
    return float(text.strip())


def _spellings(kind: str) -> list[tuple[str, str, str]]:
    """(limit, remaining, reset) header names for one kind, in every known spelling."""
    return [
        (f"x-ratelimit-limit-{kind}", f"x-ratelimit-remaining-{kind}",
         f"x-ratelimit-reset-{kind}"),
        (f"anthropic-ratelimit-{kind}-limit", f"anthropic-ratelimit-{kind}-remaining",
         f"anthropic-ratelimit-{kind}-reset"),
    ]


def granted_limits(headers: Mapping[str, str] | None, now: float | None = None) -> dict[str, Grant]:
    """The grants a response announces, by kind (``requests``, ``tokens``); a kind is left out
    unless its limit, remaining and reset are all present and readable."""
    if not headers:
        return {}
    lower = {k.lower(): v for k, v in headers.items()}
    out: dict[str, Grant] = {}
    for kind in KINDS:
        for limit_h, remaining_h, reset_h in _spellings(kind):
            limit, remaining = _number(lower.get(limit_h)), _number(lower.get(remaining_h))
            reset = parse_reset(lower[reset_h], now) if reset_h in lower else None
            if limit is not None and remaining is not None and reset is not None and limit > 0:
                out[kind] = Grant(limit, max(0.0, min(remaining, limit)), reset)
                break
    return out
