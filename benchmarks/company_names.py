"""Realistic company-name sets of any size, for the clustering benchmark and its tests.

Why not random strings: blocking is only as good as the names it sees. What the LLM returns is
real company names written in different ways, so every set here is built from real strings:

1. **Real names**: every Company/ORG entity text of the labelled and silver files
   (``data/labeled``, ``data/cascade`` and ``../shared/data/*.jsonl``: gold, LLM-labelled,
   FiNER-ORD, SEC-FiNER), about 4,000 distinct strings.
2. **More companies** than those: a real head (the first word of a real name that is not a
   ticker: "Barrick", "Acadia", about 1,900) with one or two real tail words (the later words
   of real names, drawn by how often real names use them: "Capital" is 69 times more likely
   than a word used once), so "Acadia Capital Partners" is a new company that looks like one;
   these also make the hard negatives of a large universe ("Arch Capital" / "Arco Capital",
   "Acadia Healthcare" / "Acadia Pharmaceuticals").
3. **Surface forms** of each company, one or two rewrites each: a legal suffix added or changed
   (Inc / Inc. / , Inc. / Corp / Ltd / plc / Holdings / Group / LLC / N.V. ...), case
   (upper, lower), punctuation ("J.P." / "JP", "&" / "and", hyphens, joined words), common
   abbreviations ("Intl", "Tech", "Pharma", "Mfg"), initials ("ADM"), a dropped last word
   ("Agilent Technologies" -> "Agilent"), a leading "The", and keyboard typos (a letter
   dropped, doubled, swapped with the next one, or replaced by or inserted next to a
   neighbouring key, at any position).

Companies get forms with a skew (a few have dozens, most one to three), as a run's mentions
do. Everything is drawn from one ``random.Random(seed)``: the same seed gives the same names.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from functools import cache
from pathlib import Path

from common.paths import DATA_DIR

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
ENTITY_LABELS = {"Company", "ORG"}

SUFFIXES = ["Inc", "Inc.", ", Inc.", "Corp", "Corp.", "Corporation", "Co.", "Company", "Ltd",
            "Ltd.", "Limited", "plc", "PLC", "Holdings", "Group", "LLC", "L.P.", "N.V.", "AG",
            "S.A.", "& Co."]
ABBREVIATIONS = {
    "International": "Intl", "Technologies": "Tech", "Technology": "Tech",
    "Pharmaceuticals": "Pharma", "Pharmaceutical": "Pharma", "Corporation": "Corp",
    "Company": "Co", "Manufacturing": "Mfg", "Services": "Svcs", "Systems": "Sys",
    "Holdings": "Hldgs", "Financial": "Finl", "Industries": "Inds", "Laboratories": "Labs",
    "Communications": "Comms", "Resources": "Res", "Brothers": "Bros", "Associates": "Assoc",
    "Management": "Mgmt", "Group": "Grp", "Partners": "Ptnrs", "Properties": "Props",
    "American": "Amer", "America": "Amer", "National": "Natl", "Insurance": "Ins",
    "Investments": "Invts", "Securities": "Secs", "Bancorp": "Bncp", "Therapeutics": "Thera",
    "Entertainment": "Ent", "Semiconductor": "Semi", "Solutions": "Sol", "Capital": "Cap",
}
_KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
_NEIGHBOURS = {
    c: "".join(row[j] for r2, row in enumerate(_KEYBOARD) for j in range(len(row))
               if abs(r2 - r) <= 1 and abs(j - i) <= 1 and row[j] != c)
    for r, row in enumerate(_KEYBOARD) for i, c in enumerate(row)
}
def _jsonl_files() -> list[Path]:
    dirs = [DATA_DIR / "labeled", DATA_DIR / "cascade", SHARED_DATA]
    return sorted(p for d in dirs if d.is_dir() for p in d.glob("*.jsonl"))


@cache
def real_names() -> tuple[str, ...]:
    """Distinct Company/ORG entity texts of the labelled and silver files, sorted."""
    names: set[str] = set()
    for p in _jsonl_files():
        with open(p, encoding="utf-8") as f:
            for line in f:
                for e in json.loads(line).get("entities") or ():
                    if e.get("label") in ENTITY_LABELS and len(e["text"].strip()) >= 2:
                        names.add(" ".join(e["text"].split()))
    return tuple(sorted(names))


_LEGAL = {"inc", "corp", "co", "ltd", "plc", "llc", "lp", "sa", "ag", "nv", "company",
          "corporation", "limited", "holdings", "holding", "group"}


@cache
def heads_and_tail_words() -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
    """Real first words (not tickers), and the later words of real names with how often each
    is one ("Capital" 69, "Pharma" 34, ...; legal suffixes left to the rewrites)."""
    heads: set[str] = set()
    tail_words: Counter[str] = Counter()
    for n in real_names():
        words = n.split()
        if words[0].isalpha() and len(words[0]) >= 3 and not words[0].isupper():
            heads.add(words[0])
        for w in words[1:]:
            if w.isalpha() and w[:1].isupper() and not w.isupper() and w.lower() not in _LEGAL:
                tail_words[w] += 1
    words, counts = zip(*sorted(tail_words.items()), strict=True)
    return tuple(sorted(heads)), words, counts


def make_companies(n: int, rng: random.Random) -> list[str]:
    """``n`` distinct company names: the real ones first, then a real head with one or two
    real tail words drawn by how often real names use them ("Barrick Capital Partners")."""
    real = list(real_names())
    rng.shuffle(real)
    out = real[:n]
    seen = set(out)
    heads, words, counts = heads_and_tail_words()
    while len(out) < n:
        tail = rng.choices(words, counts, k=1 if rng.random() < 0.6 else 2)
        name = " ".join([rng.choice(heads), *dict.fromkeys(tail)])
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def _typo(s: str, rng: random.Random) -> str:
    if len(s) < 4:
        return s
    i = rng.randrange(len(s))
    c = s[i]
    near = _NEIGHBOURS.get(c.lower(), "") or "aeiou"
    op = rng.randrange(5)
    if op == 0:
        return s[:i] + s[i + 1:]  # dropped
    if op == 1:
        return s[:i] + c + s[i:]  # doubled
    if op == 2 and i + 1 < len(s):
        return s[:i] + s[i + 1] + c + s[i + 2:]  # swapped with the next
    k = rng.choice(near)
    k = k.upper() if c.isupper() else k
    if op == 3:
        return s[:i] + k + s[i + 1:]  # a neighbouring key instead
    return s[:i] + k + s[i:]  # a neighbouring key as well


def _abbreviate(s: str, rng: random.Random) -> str:
    words = s.split()
    hits = [i for i, w in enumerate(words) if w in ABBREVIATIONS]
    if hits:
        i = rng.choice(hits)
        words[i] = ABBREVIATIONS[words[i]] + rng.choice(["", "."])
        return " ".join(words)
    if len(words) >= 2 and rng.random() < 0.5:
        return " ".join(words[:-1])  # "Agilent Technologies" -> "Agilent"
    if len(words) >= 2:
        return "".join(w[0] for w in words if w[:1].isalpha()).upper()
    return s


def _punctuate(s: str, rng: random.Random) -> str:
    r = rng.random()
    if " & " in s and r < 0.5:
        return s.replace(" & ", " and ")
    if " and " in s and r < 0.5:
        return s.replace(" and ", " & ")
    if "." in s or "," in s:
        return s.replace(".", "").replace(",", "")
    if "-" in s:
        return s.replace("-", rng.choice([" ", ""]))
    words = s.split()
    if len(words) >= 2 and r < 0.4:
        i = rng.randrange(len(words) - 1)
        return " ".join([*words[:i], words[i] + words[i + 1], *words[i + 2:]])
    if len(words) >= 2 and r < 0.7:
        return "-".join(words) if len(words) == 2 else s + "."
    if not s.lower().startswith("the "):
        return "The " + s
    return s[4:]


def _suffix(s: str, rng: random.Random) -> str:
    words = s.split()
    if len(words) >= 2 and words[-1].strip(",.").lower() in {
            "inc", "corp", "co", "ltd", "plc", "llc", "holdings", "group", "company"}:
        base = " ".join(words[:-1]).rstrip(",")
        return base if rng.random() < 0.5 else f"{base} {rng.choice(SUFFIXES)}".replace(" ,", ",")
    return f"{s} {rng.choice(SUFFIXES)}".replace(" ,", ",")


def _case(s: str, rng: random.Random) -> str:
    r = rng.random()
    return s.upper() if r < 0.4 else s.lower() if r < 0.8 else s.title()


_REWRITES = [(_suffix, 0.30), (_typo, 0.30), (_case, 0.12), (_punctuate, 0.14),
             (_abbreviate, 0.14)]


def variant(name: str, rng: random.Random) -> str:
    """One surface form of ``name``: one rewrite, or two (30 %), drawn by the weights above."""
    fns, weights = zip(*_REWRITES, strict=True)
    out = name
    for _ in range(2 if rng.random() < 0.3 else 1):
        out = rng.choices(fns, weights)[0](out, rng)
    return " ".join(out.split()) or name


def make_names(n: int, seed: int = 0, forms_per_company: float = 4.0) -> list[str]:
    """``n`` distinct strings, sorted: ``n / forms_per_company`` companies (each name once)
    and skewed extra forms of them (company ``i`` of the shuffled list is chosen with weight
    about ``1/sqrt(i)``)."""
    rng = random.Random(seed)
    companies = make_companies(max(1, int(n / forms_per_company)), rng)
    out = set(companies[:n])
    while len(out) < n:
        c = companies[int(len(companies) * rng.random() ** 2)]
        out.add(variant(c, rng))
    return sorted(out)
