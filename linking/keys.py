"""How an alias table keys names and tickers, so that spellings of one name meet under one key
and a ticker written three ways is one ticker."""

from __future__ import annotations

import re
from functools import lru_cache

from common.clustering import name_key as _cluster_key

_OTC_SUFFIX = re.compile(r"\.(?:PK|OB)$")


@lru_cache(maxsize=1 << 16)
def name_key(name: str) -> str:
    """A name's table key: ``common.clustering.name_key`` (lower case, punctuation, legal
    suffixes and a leading "the" removed, so "Agilent Technologies Inc." == "agilent
    technologies" and "The Gap" == "Gap"), cached because ``link`` calls it per span."""
    return _cluster_key(name)


def norm_ticker(raw: str) -> str:
    """A ticker as the table keys it: upper case, Benzinga's OTC suffix dropped ("AGPDY.PK" ->
    "AGPDY"), share classes kept ("BRK.B", with "BRK-B" written the same way)."""
    t = raw.strip().lstrip("$").upper().replace("-", ".")
    return _OTC_SUFFIX.sub("", t)
