"""The annotation stage: headlines -> rate-limited LLM calls with a JSON grammar -> aligned
spans -> result shards (``batch``), and its queue task (``tasks``)."""
