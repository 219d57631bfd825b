"""``tickertag serve --max-chars`` reaches the micro-batcher: the knob that trades a small
request's wait behind large ones against the large ones' speed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner


@pytest.mark.parametrize("argv, expected", [([], 8000), (["--max-chars", "1500"], 1500)])
def test_max_chars_reaches_the_app(argv: list[str], expected: int, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch):
    import uvicorn

    import training.inference
    import workers.ner.service as service
    from tickertag.cli import _register_all, app

    seen: dict[str, Any] = {}
    monkeypatch.setattr(training.inference, "servable_manifest", lambda m: {"kind": "spacy"})
    monkeypatch.setattr(service, "create_app", lambda *a, **kw: seen.update(kw) or "app")
    monkeypatch.setattr(uvicorn, "run", lambda app_, **kw: seen.update(app=app_))
    if not app.registered_commands:
        _register_all()
    r = CliRunner().invoke(app, ["serve", "--model", str(tmp_path), *argv])
    assert r.exit_code == 0, r.output
    assert seen["app"] == "app" and seen["max_chars"] == expected
    assert service.MAX_CALL_CHARS == 8000
