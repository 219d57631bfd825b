"""The tagging stage: the compact model over the ``ner`` queue (``batch``, ``tasks``) and over
HTTP (``service``), and over a file (``predict_file``: ``tickertag predict``)."""
