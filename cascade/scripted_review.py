"""A scripted reviewer: answers an Argilla dataset's pending records from a recording.

For measurement and tests only. No people review here, so a recording of what reviewers answered
for the same headlines (``data/cascade/benzinga_reviewed_pool_contested.jsonl``) stands in for
them, through the real server and SDK: the cascade's ``pull`` reads these answers exactly as it
reads a person's. A record the recording lacks stays pending, as an unreviewed record would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.replay import Recording
from workers.review.argilla_settings import ArgillaSettings

REVIEWER = "scripted-reviewer"


def answer_from_recording(dataset: str, recording: str | Path,
                          settings: ArgillaSettings | None = None) -> dict[str, Any]:
    """Submit the recorded spans for every record of ``dataset`` that has none yet."""
    import secrets

    import argilla as rg

    from workers.review.argilla import find_dataset
    from workers.review.records import FIELD, QUESTION
    from workers.review.server import connect, workspace_of

    s = settings or ArgillaSettings()
    rec = Recording.load(recording)
    client = connect(s)
    ws = workspace_of(client, s)
    ds = find_dataset(client, dataset, ws)
    if ds is None:
        raise ValueError(f"no Argilla dataset {ws}/{dataset} to review")
    user = client.users(REVIEWER)
    if user is None:
        user = rg.User(username=REVIEWER, password=secrets.token_urlsafe(16), role="admin",
                       client=client).create()
        client.workspaces(ws).add_user(user)
    answered = missing = 0
    batch = []
    for record in ds.records(with_responses=True):
        if any(r.user_id == user.id for r in record.responses):
            continue
        row = rec.row(record.fields[FIELD])
        if row is None:
            missing += 1
            continue
        value = [{"start": e["start"], "end": e["end"], "label": e["label"]}
                 for e in row.get("entities") or []]
        record.responses.add(rg.Response(QUESTION, value, user_id=user.id, status="submitted"))
        batch.append(record)
        answered += 1
    if batch:
        ds.records.log(batch)
    return {"answered": answered, "not_in_recording": missing, "reviewer": REVIEWER}
