"""What a source would cost to annotate, before anything is sent (``tickertag produce
--estimate``).

Why before: the LLM is the bill. The estimate reads the source the way the producer does (the
same validation and de-duplication by headline id), counts the prompt's tokens per headline
(the system prompt, the user turn, the headline) and prices them at the per-token prices.

Prompt tokens are counted with the model's own tokenizer when the LLM is the local llama.cpp
model (its GGUF is read vocabulary-only, in well under a second); for any other endpoint they
are an estimate, characters / 4, and the report says which. Completion tokens are an estimate
either way (``COMPLETION_TOKENS`` a headline: the answer's JSON for one or two companies).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from common.records import InvalidRecord, make_headline
from common.settings import Settings
from common.summary import token_cost_usd

COMPLETION_TOKENS = 24  # {"result": ["Mizuho", "Autodesk"], "normalized_result": [...]}


def local_tokenizer(settings: Settings) -> Callable[[str], int] | None:
    """Token counter of the local GGUF when the configured LLM is the local llama.cpp server;
    None otherwise (or when llama.cpp is not installed)."""
    url = settings.llm_base_url
    if "127.0.0.1" not in url and "localhost" not in url:
        return None
    try:
        from llama_cpp import Llama

        from common.llm_server import bundled_gguf

        llm = Llama(model_path=settings.llm_gguf or str(bundled_gguf()), vocab_only=True,
                    verbose=False)
    except (ImportError, RuntimeError, ValueError, OSError):
        return None
    return lambda text: len(llm.tokenize(text.encode(), add_bos=False))


def estimate(rows: Iterable[dict[str, Any]], settings: Settings,
             count: Callable[[str], int] | None = None) -> dict[str, Any]:
    """Distinct valid headlines of ``rows``, their prompt and completion tokens and the $ at
    ``settings``' per-token prices. ``count`` counts tokens (default: characters / 4)."""
    from workers.annotate.prompt import build_messages

    how = "tokenizer" if count is not None else "chars/4"
    counter = count or (lambda text: max(1, len(text) // 4))
    system = build_messages("")[0]["content"]
    fixed = counter(system) + counter(build_messages("")[1]["content"])
    seen: set[str] = set()
    rows_read = rejected = prompt = 0
    for i, row in enumerate(rows, start=1):
        rows_read += 1
        try:
            h = make_headline(row, record=f"row#{i}")
        except InvalidRecord:
            rejected += 1
            continue
        if h.id in seen:
            continue
        seen.add(h.id)
        prompt += fixed + counter(h.text)
    completion = COMPLETION_TOKENS * len(seen)
    return {"rows": rows_read, "headlines": len(seen), "rejected": rejected,
            "prompt_tokens": prompt, "completion_tokens": completion,
            "prompt_tokens_counted_by": how, "completion_tokens_counted_by": "estimate",
            "usd": round(token_cost_usd(prompt, completion, settings), 6),
            "price_input_per_mtok": settings.price_input_per_mtok,
            "price_output_per_mtok": settings.price_output_per_mtok}
