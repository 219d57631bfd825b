"""The training stage: long jobs on their own queue, one holder per run (``jobs``, ``tasks``)."""
