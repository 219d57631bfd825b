"""Human review in Argilla: curated splits -> Argilla datasets -> reviewed JSONL.

``push`` creates (or updates) one dataset per split with the case study's task: a ``text``
field and a ``span_label`` SpanQuestion (label Company, no overlap), ``LABELING.md`` as the
guidelines, the LLM's spans as suggestions. Record ids are the headline ids, so pushing again
updates records in place (Argilla upserts on the record id) and never duplicates them, and
responses already given survive. Records are logged most-doubtful first and carry a
``priority`` metadata property, because Argilla's default order is insertion order and a
reviewer with one hour should spend it where the LLM is least trustworthy.

``pull`` reads the submitted responses (review may still be under way), turns them into
character spans checked by ``check_spans``, and writes ``<results>/<run>/reviewed/{split}.jsonl``
in the curated row format (``entities`` are the reviewed spans), which training reads. It also
returns progress and agreement: between reviewers, and between the LLM and the review, both
scored with ``common.metrics.score``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from common.jsonl import read_jsonl, write_jsonl
from common.metrics import score
from common.services import ManagedProcess, wait_until
from common.settings import LABELED_DIR, REPO_ROOT, get_settings
from common.spans import LABEL, Span, check_spans
from workers.review.argilla_settings import ArgillaSettings

if TYPE_CHECKING:  # the SDK is imported lazily: it is slow to import and only this stage needs it
    import argilla as rg

log = logging.getLogger(__name__)

FIELD = "text"
QUESTION = "span_label"
SPLITS = ("train", "valid", "test")
GUIDELINES_PATH = LABELED_DIR / "LABELING.md"

# Why a record is worth a reviewer's time first, with its weight in ``priority``.
REASON_WEIGHTS = {
    "invalid": 8,  # the LLM's answer did not parse / validate: its spans mean nothing
    "hallucinated": 4,  # it named companies that are not in the headline
    "disagree": 2,  # another source (the provider's ticker, a second annotator) disagrees
    "warning": 1,  # the answer was repaired on the way in (e.g. list lengths differed)
}


class ReviewError(RuntimeError):
    """A review step cannot go on; the message says what to do about it."""


# -- connection ------------------------------------------------------------------------------

def connect(settings: ArgillaSettings | None = None) -> rg.Argilla:
    """An SDK client that has proven it can reach the server and that the key is accepted.

    The SDK's own errors (a bare ``ConnectError``, "credentials are invalid") do not say which
    setting to fix; these do, without ever printing the key.
    """
    import argilla as rg
    from argilla._exceptions import ArgillaError  # the SDK exports no public base class

    s = settings or ArgillaSettings()
    if s.api_key is None:
        raise ReviewError("no Argilla API key: set TICKERTAG_ARGILLA_API_KEY "
                          "(`tickertag review serve` prints one for the local server)")
    try:
        client = rg.Argilla(**s.client_kwargs())
        client.me  # noqa: B018 - the SDK validates lazily on some paths; force it now
    except httpx.HTTPError as e:
        raise ReviewError(f"cannot reach Argilla at {s.url} ({type(e).__name__}: {e}); start one "
                          "with `tickertag review serve` or set TICKERTAG_ARGILLA_URL") from None
    except ArgillaError as e:
        if "credentials" in str(e).lower() or "401" in str(e):
            raise ReviewError(f"Argilla at {s.url} rejected the API key (TICKERTAG_ARGILLA_API_KEY)"
                              ) from None
        raise ReviewError(f"Argilla at {s.url}: {e}") from None
    return client


def dataset_name(run: str, split: str, settings: ArgillaSettings | None = None) -> str:
    """``<prefix>-<run>-<split>``: one workspace can hold the review of several runs."""
    s = settings or ArgillaSettings()
    return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{s.dataset_prefix}-{run}-{split}")


def _workspace(client: rg.Argilla, settings: ArgillaSettings) -> str:
    if settings.workspace:
        return settings.workspace
    names = [w.name for w in client.workspaces]
    if not names:
        raise ReviewError("the API key's user has no workspace; set TICKERTAG_ARGILLA_WORKSPACE")
    return names[0]


# -- local server ---------------------------------------------------------------------------

LAUNCHER = REPO_ROOT / "scripts" / "argilla_launcher.py"


def local_credentials(s: ArgillaSettings) -> tuple[str, str]:
    """(API key, password) of the local server's owner: the configured key, else one generated
    on first start and kept (mode 0600) beside the server's data, so restarts keep it."""
    path = s.home / "credentials.json"
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
    else:
        saved = {"api_key": secrets.token_urlsafe(32), "password": secrets.token_urlsafe(12)}
        s.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(saved, f)
    key = s.api_key.get_secret_value() if s.api_key else saved["api_key"]
    return key, saved["password"]


def start_server(s: ArgillaSettings, log: Path, api_key: str, password: str) -> ManagedProcess:
    """Start ``scripts/argilla_launcher.py`` in the Argilla venv and wait until it answers.

    The secrets travel in the environment, not argv, so ``ps`` never shows them. The launcher
    runs in its own process group: stopping it stops uvicorn, the rq worker and the emulator.
    """
    python = s.venv / "bin" / "python"
    if not python.exists():
        raise ReviewError(f"no Argilla venv at {s.venv}: run scripts/install_argilla.sh")
    argv = [str(python), str(LAUNCHER), "--home", str(s.home), "--host", s.host,
            "--port", str(s.port), "--redis-url", s.redis_url.get_secret_value()]
    env = {"ARGILLA_LAUNCHER_API_KEY": api_key, "ARGILLA_LAUNCHER_PASSWORD": password,
           "VIRTUAL_ENV": str(s.venv)}
    proc = ManagedProcess("argilla", argv, log, env=env)
    url = f"http://{s.host}:{s.port}/api/v1/status"
    try:
        wait_until(lambda: httpx.get(url, timeout=2).status_code == 200, s.startup_timeout_s,
                   "argilla server", proc)
    except BaseException:
        proc.stop()
        raise
    return proc


# -- records ---------------------------------------------------------------------------------

def guidelines(path: Path = GUIDELINES_PATH) -> str:
    """The project's labeling rules, shown to reviewers beside every record."""
    return path.read_text(encoding="utf-8")


def build_settings(guidelines_text: str, min_submitted: int = 1) -> rg.Settings:
    """The case study's task plus the metadata a reviewer filters and sorts by."""
    import argilla as rg

    return rg.Settings(
        guidelines=guidelines_text,
        fields=[rg.TextField(name=FIELD, title="Headline", use_markdown=False)],
        questions=[rg.SpanQuestion(
            name=QUESTION, field=FIELD, labels=[LABEL], allow_overlapping=False,
            title="Mark every company name or ticker (see the guidelines).")],
        metadata=[
            rg.IntegerMetadataProperty(name="priority", title="Review priority (high first)"),
            rg.TermsMetadataProperty(name="review_reason", title="Why review first"),
            rg.TermsMetadataProperty(name="date", title="Date"),
            rg.IntegerMetadataProperty(name="year", title="Year"),
            rg.TermsMetadataProperty(name="stock_symbol", title="Stock symbol"),
            rg.TermsMetadataProperty(name="cluster", title="Company cluster"),
        ],
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
    )


def _symbol_missed(row: dict[str, Any], spans: Sequence[Span]) -> bool:
    """The data provider's ticker is written in the headline but no LLM span covers it."""
    sym = (row.get("stock_symbol") or "").strip()
    if len(sym) < 2:  # "A" is a ticker and an article; too ambiguous to call a disagreement
        return False
    text = row["text"]
    for m in re.finditer(rf"(?<![A-Za-z0-9]){re.escape(sym)}(?![A-Za-z0-9])", text):
        if not any(s.start <= m.start() and m.end() <= s.end for s in spans):
            return True
    return False


def review_reasons(row: dict[str, Any], spans: Sequence[Span]) -> list[str]:
    """Why this row deserves an early look (empty: the sources agree and the answer was clean)."""
    reasons = []
    if row.get("valid") is False:
        reasons.append("invalid")
    if row.get("hallucinated"):
        reasons.append("hallucinated")
    if row.get("disagree") or _symbol_missed(row, spans):
        reasons.append("disagree")
    if row.get("warning"):
        reasons.append("warning")
    return reasons


def _entity_spans(row: dict[str, Any]) -> list[Span]:
    return sorted(check_spans(row["text"], [
        {k: e[k] for k in ("start", "end", "label", "text", "score") if k in e}
        for e in row.get("entities") or []]), key=lambda s: s.start)


def _agent(row: dict[str, Any]) -> str:
    parts = [str(row[k]) for k in ("model", "prompt_version") if row.get(k)]
    return ":".join(parts) or "llm"


def _clusters(row: dict[str, Any]) -> list[str]:
    if row.get("cluster"):
        return [str(row["cluster"])]
    return [str(c) for c in row.get("clusters") or []]


def build_record(row: dict[str, Any]) -> tuple[rg.Record, int]:
    """One curated row as an Argilla record, and its priority. Raises ValueError on bad spans."""
    import argilla as rg

    spans = _entity_spans(row)
    reasons = review_reasons(row, spans)
    priority = sum(REASON_WEIGHTS[r] for r in reasons)
    date = row.get("date") or ""
    metadata: dict[str, Any] = {"priority": priority, "review_reason": reasons or ["none"]}
    if date:
        metadata["date"] = date
        if date[:4].isdigit():
            metadata["year"] = int(date[:4])
    if row.get("stock_symbol"):
        metadata["stock_symbol"] = row["stock_symbol"]
    if clusters := _clusters(row):
        metadata["cluster"] = clusters
    suggestions = []
    if row.get("valid") is not False:  # an invalid answer has nothing to suggest, not "no company"
        value = [{"start": s.start, "end": s.end, "label": s.label} for s in spans]
        scores = [s.score for s in spans]
        suggestions.append(rg.Suggestion(
            question_name=QUESTION, value=value, agent=_agent(row), type="model",
            score=scores if spans and all(x is not None for x in scores) else None))
    record = rg.Record(id=str(row["id"]), fields={FIELD: row["text"]}, metadata=metadata,
                       suggestions=suggestions)
    return record, priority


def build_records(rows: Iterable[dict[str, Any]]) -> tuple[list[rg.Record], list[str]]:
    """Records ordered for review (priority desc, then date, then id) and ids left out.

    The last row of an id wins, so a file with repeated ids still makes one record each.
    """
    built: dict[str, tuple[rg.Record, int, str]] = {}
    rejected = []
    for row in rows:
        try:
            rec, prio = build_record(row)
        except (ValueError, KeyError) as e:
            log.warning("left out %s: %s", row.get("id"), e)
            rejected.append(str(row.get("id")))
            continue
        built[str(row["id"])] = (rec, prio, row.get("date") or "")
    order = sorted(built.items(), key=lambda kv: (-kv[1][1], kv[1][2], kv[0]))
    return [rec for _, (rec, _, _) in order], rejected


# -- push ------------------------------------------------------------------------------------

def curated_dir(run: str) -> Path:
    from common.store import ResultStore

    return ResultStore(get_settings().results_dir, run).stage_dir("curated")


def reviewed_dir(run: str) -> Path:
    from common.store import ResultStore

    return ResultStore(get_settings().results_dir, run).stage_dir("reviewed")


def find_dataset(client: rg.Argilla, name: str, workspace: str) -> rg.Dataset | None:
    """The dataset or None (the SDK also warns on a miss; here a miss is an ordinary answer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return client.datasets(name=name, workspace=workspace)


def _ensure_dataset(client: rg.Argilla, name: str, workspace: str, settings: rg.Settings
                    ) -> tuple[rg.Dataset, bool]:
    """The existing dataset (guidelines refreshed) or a new one; True when it was created."""
    import argilla as rg

    ds = find_dataset(client, name, workspace)
    if ds is None:
        return rg.Dataset(name=name, workspace=workspace, settings=settings, client=client
                          ).create(), True
    questions = {q.name: q for q in ds.settings.questions}
    if QUESTION not in questions or FIELD not in {f.name for f in ds.settings.fields}:
        raise ReviewError(f"dataset {workspace}/{name} exists with another task; "
                          "delete it or use another TICKERTAG_ARGILLA_DATASET_PREFIX")
    if ds.settings.guidelines != settings.guidelines:
        ds.settings.guidelines = settings.guidelines
        ds.update()
    return ds, False


def push(run: str, input_dir: Path | None = None, splits: Sequence[str] = SPLITS,
         settings: ArgillaSettings | None = None, client: rg.Argilla | None = None,
         guidelines_path: Path = GUIDELINES_PATH) -> dict[str, Any]:
    """Create or update ``<prefix>-<run>-<split>`` for each split file found; return the report.

    ``input_dir`` defaults to the curated output of ``run``. A missing split file is skipped
    (reported), a missing directory is an error.
    """
    s = settings or ArgillaSettings()
    src = Path(input_dir) if input_dir else curated_dir(run)
    if not src.is_dir():
        raise ReviewError(f"no curated splits at {src}: run `tickertag curate {run}` or pass "
                          "--input-dir")
    client = client or connect(s)
    ws = _workspace(client, s)
    rg_settings = build_settings(guidelines(guidelines_path), s.min_submitted)
    report: dict[str, Any] = {"run": run, "input_dir": str(src), "workspace": ws, "splits": {}}
    t_all = time.perf_counter()
    for split in splits:
        path = src / f"{split}.jsonl"
        if not path.exists():
            report["splits"][split] = {"skipped": f"{path} not found"}
            continue
        t0 = time.perf_counter()
        records, rejected = build_records(read_jsonl(path))
        name = dataset_name(run, split, s)
        ds, created = _ensure_dataset(client, name, ws, rg_settings)
        if records:
            ds.records.log(records, batch_size=min(s.batch_size, len(records)))
        report["splits"][split] = {
            "dataset": name, "created": created, "records": len(records),
            "rejected": rejected, "priority": sum(1 for r in records if r.metadata["priority"]),
            "seconds": round(time.perf_counter() - t0, 2)}
    report["seconds"] = round(time.perf_counter() - t_all, 2)
    return report


# -- pull ------------------------------------------------------------------------------------

def _value_spans(text: str, value: Any) -> list[Span]:
    """A span answer from Argilla as checked character spans (text filled in from the record)."""
    spans = [Span(start=int(v["start"]), end=int(v["end"]), label=str(v.get("label") or LABEL),
                  text=text[int(v["start"]):int(v["end"])]) for v in value or []]
    return sorted(check_spans(text, spans), key=lambda s: s.start)


def _key(spans: Sequence[Span]) -> tuple[tuple[int, int, str], ...]:
    return tuple(sorted(s.key() for s in spans))


def _iter_records(ds: rg.Dataset) -> Iterator[rg.Record]:
    return iter(ds.records(with_suggestions=True, with_responses=True))


def resolve(answers: Sequence[list[Span]]) -> tuple[list[Span], bool]:
    """One reviewed answer from several reviewers' submitted ones, and whether they all agreed.

    The most common answer wins; a tie goes to the earliest in the server's order (the SDK
    exposes no response timestamps). Rows where reviewers disagree are flagged
    (``reviewers_agree: false``) so they can be adjudicated rather than silently trusted.
    """
    counts = Counter(_key(sp) for sp in answers)
    best = max(counts.values())
    chosen = next(sp for sp in answers if counts[_key(sp)] == best)
    return chosen, len(counts) == 1


def record_review(rec: rg.Record) -> dict[str, Any]:
    """What one Argilla record says: status, submitted answers, the LLM's suggestion."""
    text = rec.fields[FIELD]
    submitted: list[list[Span]] = []
    reviewers: list[str] = []
    discarded = 0
    for resp in rec.responses:
        if resp.question_name != QUESTION:
            continue
        status = str(getattr(resp.status, "value", resp.status))
        if status == "submitted":
            submitted.append(_value_spans(text, resp.value))
            reviewers.append(str(resp.user_id))
        elif status == "discarded":
            discarded += 1
    llm = None
    for sug in rec.suggestions:
        if sug.question_name == QUESTION:
            llm = _value_spans(text, sug.value)
    return {"text": text, "submitted": submitted, "reviewers": reviewers,
            "discarded": discarded, "llm": llm}


def _pairwise(answers: list[list[list[Span]]]) -> dict[str, Any]:
    """Agreement over records that two or more reviewers submitted: exact-match rate and the
    micro F1 of every reviewer pair (F1 is symmetric, so the pair's order does not matter)."""
    gold, pred = [], []
    exact = 0
    for per_record in answers:
        exact += len({_key(sp) for sp in per_record}) == 1
        for a, b in combinations(per_record, 2):
            gold.append(a)
            pred.append(b)
    out: dict[str, Any] = {"records": len(answers), "exact": exact,
                           "exact_rate": round(exact / len(answers), 4) if answers else None}
    out["pairwise_f1"] = round(score(gold, pred).f1, 4) if gold else None
    return out


def pull_split(ds: rg.Dataset, out_path: Path | None) -> dict[str, Any]:
    """Progress and agreement of one dataset; reviewed rows written to ``out_path``."""
    rows: list[dict[str, Any]] = []
    counts = Counter()
    multi: list[list[list[Span]]] = []
    llm_gold, llm_pred, invalid = [], [], []
    for rec in _iter_records(ds):
        counts["total"] += 1
        try:
            r = record_review(rec)
        except ValueError as e:  # a span that does not fit its text: report, never train on it
            invalid.append(f"{rec.id}: {e}")
            continue
        if not r["submitted"]:
            counts["discarded" if r["discarded"] else "pending"] += 1
            continue
        counts["submitted"] += 1
        spans, agreed = resolve(r["submitted"])
        if len(r["submitted"]) > 1:
            multi.append(r["submitted"])
        if r["llm"] is not None:
            llm_gold.append(spans)
            llm_pred.append(r["llm"])
        md = dict(rec.metadata or {})
        row = {"id": str(rec.id), "text": r["text"], "date": md.get("date"),
               "stock_symbol": md.get("stock_symbol"),
               "entities": [s.model_dump(exclude={"score"}) for s in spans],
               "reviewers": len(r["submitted"]), "reviewers_agree": agreed,
               "llm_entities": ([s.model_dump(exclude={"score"}) for s in r["llm"]]
                                if r["llm"] is not None else None)}
        if md.get("cluster"):
            row["clusters"] = md["cluster"] if isinstance(md["cluster"], list) else [md["cluster"]]
        rows.append(row)
    rows.sort(key=lambda r: (r.get("date") or "", r["id"]))
    if out_path is not None:
        write_jsonl(out_path, rows)
    llm = score(llm_gold, llm_pred) if llm_gold else None
    return {
        "dataset": ds.name, "records": counts["total"], "submitted": counts["submitted"],
        "pending": counts["pending"], "discarded": counts["discarded"],
        "invalid_responses": invalid, "reviewers_agreement": _pairwise(multi),
        "llm_vs_reviewed": llm.as_dict() if llm else None,
        "output": str(out_path) if out_path else None,
    }


def pull(run: str, out_dir: Path | None = None, splits: Sequence[str] = SPLITS,
         settings: ArgillaSettings | None = None, client: rg.Argilla | None = None,
         write: bool = True) -> dict[str, Any]:
    """Pull every split's submitted reviews; ``write=False`` only reports progress."""
    s = settings or ArgillaSettings()
    client = client or connect(s)
    ws = _workspace(client, s)
    out = Path(out_dir) if out_dir else reviewed_dir(run)
    report: dict[str, Any] = {"run": run, "workspace": ws, "splits": {}}
    t0 = time.perf_counter()
    for split in splits:
        name = dataset_name(run, split, s)
        ds = find_dataset(client, name, ws)
        if ds is None:
            report["splits"][split] = {"dataset": name, "missing": True}
            continue
        report["splits"][split] = pull_split(ds, out / f"{split}.jsonl" if write else None)
    report["seconds"] = round(time.perf_counter() - t0, 2)
    if write:
        out.mkdir(parents=True, exist_ok=True)
        (out / "progress.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report

