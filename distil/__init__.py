"""Distillation (``tickertag distil``): teachers tag the headline pool through the ``ner`` queue,
their answers are combined into silver labels, and a fast student is trained on silver + the
labelled files.

Why through the queue: the silver pass is the product's own bulk path (producer, store,
exactly-once ledger, dead letters, workers on any host), so distilling 28k or 900k headlines is
the same job, just with more ``tickertag worker ner`` processes.

Steps (each runnable alone with ``steps``; each skips work already done, so a rerun resumes):
1. ``pool`` (``distil.pool``): the source's distinct titles minus every held-out title ->
   ``WORK/pool.jsonl``.
2. ``silver`` (``distil.teachers``): one ``ner`` run per teacher (run id derived from the teacher's
   fingerprint and the pool, so a rerun resumes it: the producer skips headlines already in the
   store; a teacher retrained in the same directory gets a run of its own), exported to
   ``WORK/teacher-K.jsonl``; combined into ``WORK/silver.jsonl`` + ``disagreements.jsonl``.
3. ``student`` (``distil.student``): ``training.runner.run_training`` on the labelled files
   (first) + silver.

``distil.plan`` holds the plan and its defaults; ``distil.pipeline.run_distil`` runs the steps.
"""
