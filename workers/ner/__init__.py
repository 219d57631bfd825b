"""The tagging stage: the compact model over the ``ner`` queue (``batch``, ``tasks``) and over
HTTP (``service``)."""
