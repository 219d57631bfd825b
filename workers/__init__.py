"""Celery workers: one module per queue. Tasks are thin shells around plain functions."""
