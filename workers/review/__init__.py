"""The review stage: curated samples to Argilla and reviewed labels back (``argilla``), and
its queue tasks (``tasks``)."""
