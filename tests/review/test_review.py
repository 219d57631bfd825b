"""Review round trip against a real Argilla server: push twice, reviewers submit through the
SDK, pull, and the reviewed spans are exactly what was submitted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from review_data import make_curated

from common.metrics import score
from common.services import free_port
from common.spans import Span, check_spans
from workers.review.argilla import find_dataset, pull, push
from workers.review.argilla_settings import ArgillaSettings
from workers.review.records import QUESTION, build_records, resolve
from workers.review.server import ReviewError, connect, dataset_name

# starts real servers, workers or trainers: `make test-fast` leaves these out
pytestmark = pytest.mark.slow

# -- without a server ------------------------------------------------------------------------


def test_settings_keep_secrets_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKERTAG_ARGILLA_API_KEY", "owner-key-123")
    monkeypatch.setenv("TICKERTAG_ARGILLA_HF_TOKEN", "hf_secret")
    monkeypatch.setenv("TICKERTAG_ARGILLA_HEADERS", '{"X-Team": "ner"}')
    s = ArgillaSettings()
    assert "owner-key-123" not in repr(s) and "hf_secret" not in repr(s)
    kw = s.client_kwargs()
    assert kw["api_key"] == "owner-key-123"
    assert kw["headers"] == {"X-Team": "ner", "Authorization": "Bearer hf_secret"}
    assert kw["verify"] is True


def test_records_are_ordered_for_review(tmp_path: Path) -> None:
    rows = make_curated(tmp_path)["train"]
    invalid, clustered = rows[-2]["id"], rows[-3]["id"]
    rows.append({**rows[0], "id": "bad", "entities": [
        {"start": 0, "end": 3, "label": "Company", "text": "nope"}]})
    records, rejected = build_records(rows)
    assert rejected == ["bad"]
    assert len(records) == len(rows) - 1
    prio = [r.metadata["priority"] for r in records]
    assert prio == sorted(prio, reverse=True)
    assert [r.metadata["review_order"] for r in records] == list(range(1, len(records) + 1))
    assert records[0].id == invalid  # the invalid answer outranks the hallucination
    assert "invalid" in records[0].metadata["review_reason"]
    assert "hallucinated" in records[1].metadata["review_reason"]
    by_id = {r.id: r for r in records}
    assert not list(by_id[invalid].suggestions)  # invalid answer: nothing to suggest
    assert by_id[clustered].metadata["cluster"] == ["c00042"]
    ok = by_id[rows[0]["id"]]
    sug = next(iter(ok.suggestions))
    assert sug.agent == "llama-3.1-70b:companies-v1"
    assert sug.value == [{k: e[k] for k in ("start", "end", "label")} for e in rows[0]["entities"]]


def test_resolve_majority_and_flag() -> None:
    a = [Span(start=0, end=5, text="Apple")]
    b: list[Span] = []
    assert resolve([a, a]) == (a, True)
    assert resolve([b, a, a]) == (a, False)
    assert resolve([b, a])[1] is False


def test_unreachable_server_is_a_clear_error() -> None:
    s = ArgillaSettings(url=f"http://127.0.0.1:{free_port()}", api_key="k", retries=0,
                        timeout_s=3)
    with pytest.raises(ReviewError, match="cannot reach Argilla"):
        connect(s)


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(ReviewError, match="TICKERTAG_ARGILLA_API_KEY"):
        connect(ArgillaSettings(url="http://127.0.0.1:1", api_key=None))


def test_review_tasks_route_to_the_review_queue() -> None:
    from common.celery_app import app
    from workers.review import tasks  # noqa: F401 - registers the tasks

    for name in ("tickertag.review.push", "tickertag.review.pull"):
        assert name in app.tasks
        assert app.amqp.router.route({}, name)["queue"].name == "review"


# -- against the server ----------------------------------------------------------------------


def test_wrong_key_is_a_clear_error(argilla: ArgillaSettings) -> None:
    bad = argilla.model_copy(update={"api_key": SecretStr("not-the-key")})
    with pytest.raises(ReviewError, match="rejected the API key"):
        connect(bad)


def _reviewer(client, settings: ArgillaSettings, name: str):
    """An admin-role reviewer (annotators get 403 on the SDK's bulk calls) and its client."""
    import argilla as rg

    user = rg.User(username=name, password="reviewer-pass", role="admin", client=client).create()
    ws = client.workspaces[0]
    ws.add_user(user)
    key = client.http_client.get(f"/api/v1/users/{user.id}").json()["api_key"]
    return user, connect(settings.model_copy(update={"api_key": SecretStr(key)}))


def _submit(client, ds_name: str, ws: str, answers: dict[str, list[dict] | None], user) -> None:
    """Submit (or discard, for None) span answers as ``user`` through the SDK."""
    import argilla as rg

    ds = find_dataset(client, ds_name, ws)
    batch = []
    for rec in ds.records(with_suggestions=True):
        if rec.id not in answers:
            continue
        value = answers[rec.id]
        status = "discarded" if value is None else "submitted"
        rec.responses.add(rg.Response(QUESTION, value or [], user_id=user.id, status=status))
        batch.append(rec)
    ds.records.log(batch)


def _spans(text: str, value: list[dict]) -> list[dict]:
    return [{"start": v["start"], "end": v["end"], "label": v["label"],
             "text": text[v["start"]:v["end"]]} for v in sorted(value, key=lambda v: v["start"])]


def test_push_twice_review_pull(argilla: ArgillaSettings, tmp_path: Path) -> None:
    run = "rt"
    splits = make_curated(tmp_path / "curated")
    client = connect(argilla)

    ticks: list[tuple] = []
    first = push(run, tmp_path / "curated", settings=argilla.model_copy(update={"batch_size": 5}),
                 client=client, progress=lambda *a: ticks.append(a))
    assert [t for t in ticks if t[0] == "push train"] == [("push train", n, 12) for n in (0, 5, 10, 12)]
    second = push(run, tmp_path / "curated", settings=argilla, client=client)
    ws = first["workspace"]
    for split, rows in splits.items():
        assert first["splits"][split]["created"] and not second["splits"][split]["created"]
        ds = find_dataset(client, dataset_name(run, split, argilla), ws)
        ids = [r.id for r in ds.records]
        assert sorted(ids) == sorted(r["id"] for r in rows)  # updated, not duplicated
        assert ids[0] == rows[-2]["id"]  # the invalid answer is logged first
        # What the reviewer's UI asks for after the one sort the guidelines name (the server's
        # own order is a per-user shuffle): the doubtful records come first.
        import httpx

        body = {"sort": [{"scope": {"entity": "metadata", "metadata_property": "review_order"},
                          "order": "asc"}]}
        got = httpx.post(f"{argilla.url}/api/v1/me/datasets/{ds.id}/records/search", json=body,
                         headers={"X-Argilla-Api-Key": argilla.api_key.get_secret_value()},
                         params={"limit": 100}, timeout=30).json()["items"]
        shown = [it["record"]["external_id"] for it in got]
        assert shown[0] == rows[-2]["id"] and shown[1] == rows[-1]["id"]  # invalid, hallucinated
        assert [it["record"]["metadata"]["review_order"] for it in got] == list(range(1, len(rows) + 1))
        assert ds.settings.guidelines.startswith("**Doubtful records first:**")

    # Reviewer 1 accepts some suggestions, corrects others, says "no company", discards one.
    train = splits["train"]
    u1, c1 = _reviewer(client, argilla, "reviewer1")
    u2, c2 = _reviewer(client, argilla, "reviewer2")
    texts = {r["id"]: r["text"] for r in train}
    accept = {r["id"]: [{k: e[k] for k in ("start", "end", "label")} for e in r["entities"]]
              for r in train[:4]}
    first_word = {r["id"]: [{"start": 0, "end": len(r["text"].split()[0]), "label": "Company"}]
                  for r in train[4:6]}
    nothing = {train[6]["id"]: []}
    answers1: dict[str, list[dict] | None] = {**accept, **first_word, **nothing,
                                               train[7]["id"]: None}
    name = dataset_name(run, "train", argilla)
    _submit(c1, name, ws, answers1, u1)
    # Reviewer 2 agrees on two records and disagrees on one.
    answers2 = {train[0]["id"]: accept[train[0]["id"]], train[1]["id"]: accept[train[1]["id"]],
                train[6]["id"]: [{"start": 0, "end": len(train[6]["text"].split()[0]),
                                  "label": "Company"}]}
    _submit(c2, name, ws, answers2, u2)

    # An annotator answers the way the web UI does (annotators get 403 on the SDK): this is the
    # scripted search-engine update the launcher's patch replaces.
    import argilla as rg
    import httpx

    ann = rg.User(username="annotator1", password="annotator-pass", role="annotator",
                  client=client).create()
    client.workspaces[0].add_user(ann)
    ann_key = client.http_client.get(f"/api/v1/users/{ann.id}").json()["api_key"]
    rec8 = next(r for r in find_dataset(client, name, ws).records if r.id == train[8]["id"])
    ui_value = [{"start": 0, "end": len(train[8]["text"].split()[0]), "label": "Company"}]
    answers1[train[8]["id"]] = ui_value
    resp = httpx.post(f"{argilla.url}/api/v1/records/{rec8._model.id}/responses",
                      headers={"X-Argilla-Api-Key": ann_key}, timeout=30,
                      json={"values": {QUESTION: {"value": ui_value}}, "status": "submitted"})
    assert resp.status_code == 201, resp.text

    # A third push (e.g. after a curation fix) must keep the responses.
    push(run, tmp_path / "curated", settings=argilla, client=client)

    out = tmp_path / "reviewed"
    rep = pull(run, out, settings=argilla, client=client, progress=lambda *a: ticks.append(a))
    assert ("pull train", len(train), len(train)) in ticks
    tr = rep["splits"]["train"]
    assert (tr["records"], tr["submitted"], tr["discarded"]) == (len(train), 8, 1)
    assert tr["pending"] == len(train) - 9
    assert rep["splits"]["valid"]["submitted"] == 0
    assert tr["reviewers_agreement"]["records"] == 3
    assert tr["reviewers_agreement"]["exact"] == 2

    reviewed = {r["id"]: r for r in map(json.loads, (out / "train.jsonl").open())}
    assert set(reviewed) == {k for k, v in answers1.items() if v is not None}
    for hid, row in reviewed.items():
        check_spans(row["text"], row["entities"])
        if hid != train[6]["id"]:  # the one record the reviewers disagree on
            assert row["entities"] == _spans(texts[hid], answers1[hid] or [])
            assert row["reviewers_agree"]
    disputed = reviewed[train[6]["id"]]
    assert not disputed["reviewers_agree"] and disputed["reviewers"] == 2
    assert disputed["entities"] in ([], _spans(texts[train[6]["id"]], answers2[train[6]["id"]]))
    assert (out / "valid.jsonl").read_text() == ""
    assert json.loads((out / "progress.json").read_text())["splits"]["train"]["submitted"] == 8

    # LLM vs reviewed is the project scorer on exactly these rows.
    llm = {r["id"]: r["entities"] for r in train if r.get("valid", True)}
    ids = [h for h in reviewed if h in llm]
    want = score([reviewed[h]["entities"] for h in ids], [llm[h] for h in ids])
    assert tr["llm_vs_reviewed"]["f1"] == pytest.approx(want.f1)
    assert tr["llm_vs_reviewed"]["tp"] == want.tp


def test_cli_and_task(argilla: ArgillaSettings, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from tickertag.cli import _register_all, app
    from workers.review.tasks import pull_task

    make_curated(tmp_path / "in", per_split=4)
    monkeypatch.setenv("TICKERTAG_ARGILLA_URL", argilla.url)
    monkeypatch.setenv("TICKERTAG_ARGILLA_API_KEY", argilla.api_key.get_secret_value())
    _register_all()
    runner = CliRunner()
    res = runner.invoke(app, ["review", "push", "cli", "--input-dir", str(tmp_path / "in")])
    assert res.exit_code == 0, res.output
    assert argilla.api_key.get_secret_value() not in res.output
    res = runner.invoke(app, ["review", "pull", "cli", "--out-dir", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "test.jsonl").exists()
    rep = pull_task.apply(args=["cli", str(tmp_path / "out2")]).get()
    assert rep["splits"]["train"]["records"] == 4 and rep["splits"]["train"]["pending"] == 4
    monkeypatch.setenv("TICKERTAG_ARGILLA_API_KEY", "wrong")
    res = runner.invoke(app, ["review", "pull", "cli", "--progress-only"])
    assert res.exit_code == 1 and "rejected the API key" in res.output
