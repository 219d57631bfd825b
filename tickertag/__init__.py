"""tickertag: LLM-assisted company tagging for financial headlines."""

__version__ = "0.1.0"
