"""The curation stage: an annotated run -> name clusters -> review sample -> year splits ->
training files (``pipeline``, ``sampling``, ``export``), and its queue tasks (``tasks``)."""
