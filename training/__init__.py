"""Compact-model training, inference, baselines and evaluation."""
