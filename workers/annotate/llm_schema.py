"""What the LLM must answer, as a Pydantic model; its JSON schema is the decoding grammar.

Mirrors the case study's ``Companies`` model: ``result`` holds mentions exactly as written in
the headline, ``normalized_result`` the canonical company names, in the same order.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class Companies(BaseModel):
    """The LLM's answer for one headline."""

    model_config = ConfigDict(extra="forbid")

    result: list[str]
    normalized_result: list[str]

    @model_validator(mode="after")
    def _same_length(self) -> Companies:
        if len(self.result) != len(self.normalized_result):
            raise ValueError(
                f"result has {len(self.result)} items but normalized_result has "
                f"{len(self.normalized_result)}"
            )
        return self


def companies_schema(max_items: int = 16) -> dict[str, Any]:
    """JSON schema of Companies with bounded lists and strings.

    Small models loop when lists and strings are unbounded; the bounds make the grammar force an
    end well inside ``max_tokens``.
    """
    item = {"type": "string", "maxLength": 80}
    arr = {"type": "array", "items": item, "maxItems": max_items}
    return {
        "title": "Companies",
        "type": "object",
        "properties": {"result": arr, "normalized_result": arr},
        "required": ["result", "normalized_result"],
        "additionalProperties": False,
    }


def response_format(style: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The ``response_format`` a backend honours for a JSON-schema grammar.

    llama.cpp's server constrains only with ``{"type": "json_object", "schema": S}``; TGI (and
    HF Inference Endpoints) with ``{"type": "json", "value": S}``; OpenAI-style servers (vLLM,
    Ollama, OpenAI) with ``json_schema``. ``none`` sends no grammar (the answer is still parsed).
    """
    if style == "llama.cpp":
        return {"type": "json_object", "schema": schema}
    if style == "tgi":
        return {"type": "json", "value": schema}
    if style == "openai":
        return {
            "type": "json_schema",
            "json_schema": {"name": "Companies", "schema": schema, "strict": True},
        }
    if style == "none":
        return None
    raise ValueError(f"unknown response_format style {style!r}")


def resolve_style(style: str, base_url: str) -> str:
    """Pick a grammar style for ``auto``: TGI for HF endpoints, llama.cpp for local servers."""
    if style != "auto":
        return style
    url = base_url.lower()
    if "huggingface" in url or "hf.space" in url or "endpoints" in url:
        return "tgi"
    if "127.0.0.1" in url or "localhost" in url:
        return "llama.cpp"
    return "openai"


def parse_answer(content: str) -> tuple[Companies | None, str | None, str | None]:
    """Parse a raw answer into (answer, why invalid, warning).

    Not JSON, or not the schema -> invalid (the caller keeps the raw text). Lists of different
    lengths are repaired rather than thrown away: the mentions in ``result`` are what gets
    aligned and stored, so a missing normalized name falls back to the mention itself and the
    defect is reported as a warning (small models often leave ``normalized_result`` empty).
    """
    from pydantic import ValidationError

    try:
        return Companies.model_validate_json(content), None, None
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "answer"
        why = f"{where}: {first.get('msg')}"
    try:
        raw = json.loads(content)
        result = [str(x) for x in raw["result"]]
        norm = [str(x) for x in raw["normalized_result"]]
    except (ValueError, KeyError, TypeError):
        return None, why, None
    if not isinstance(raw.get("result"), list) or not isinstance(raw.get("normalized_result"), list):
        return None, why, None
    fixed = (norm + result[len(norm):])[: len(result)]
    return Companies(result=result, normalized_result=fixed), None, why
