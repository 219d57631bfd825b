"""Vocabulary shared by every tickertag stage: settings, schemas, prompt, spans, store, queues."""
