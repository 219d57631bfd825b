"""The label cascade: the LLM is asked only where the compact teachers disagree, and people only
where the LLM disagrees with every teacher (``cascade.loop`` runs a round)."""
