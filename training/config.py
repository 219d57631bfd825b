"""Training configuration: a TOML / YAML / JSON file (``--config``) plus CLI overrides.

Paths, one rule wherever they come from (a config file, the CLI, the defaults), so a recipe
runs the same from any directory and from an installed wheel:

- ``--config NAME`` (no suffix, no slash) is the shipped recipe ``training/configs/NAME.toml``
  (``common.paths.CONFIGS_DIR``); any other value is a file path.
- ``train`` / ``valid`` (inputs): a relative path is read from the current directory when it is
  there; else one starting with ``data/`` or ``training/configs/`` is the shipped file of that
  name (``common.paths.local_or_shipped``): the recipes say ``data/labeled/...``.
- ``output`` (what the run writes): a relative path is under ``common.paths.home()``
  (``TICKERTAG_HOME``, else the current directory), as every other output
  (``common.paths.under_home``).

The whole config is saved in the model directory's ``tickertag.json``, so a model says how it
was made. Defaults are the recipes that worked on this project's data (``training/RESULTS.md``);
settings left unset (``None``) take the per-kind default, because GLiNER and SpanMarker want
different learning rates and epoch counts on the same encoder.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from common.paths import (
    CONFIGS_DIR,
    LABELED_DIR,
    from_shared,
    home,
    local_or_shipped,
    to_shared,
    under_home,
)

# What worked on the local MiniLM encoder on 2 CPU cores (training/RESULTS.md has the runs).
KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "gliner": {"epochs": 10, "learning_rate": 5e-5, "batch_size": 8},
    # SpanMarker learns slower on this encoder (higher lr) and costs ~2x per epoch.
    "spanmarker": {"epochs": 6, "learning_rate": 1e-4, "batch_size": 8},
    # spaCy's CNN NER: its own optimizer's learning rate; batches grow 4 -> batch_size. Valid F1
    # peaked at epochs 11-23 in three runs here (training/RESULTS.md).
    "spacy": {"epochs": 20, "batch_size": 32},
}


class SpacyOptions(BaseModel):
    """How ``kind = "spacy"`` builds and batches its NER (a ``[spacy]`` table in a config file).

    ``start = "sm"`` resumes en_core_web_sm's NER (its CNN is 96 wide, 4 deep, with 5000/1000/
    2500/2500 hash rows for NORM/PREFIX/SUFFIX/SHAPE); ``"blank"`` builds a fresh NER of the
    width, depth and hash rows given here: a distilled student sees ~10x more headlines than the
    gold set and can use more rows and width, at a speed cost the serving benchmark measures.
    """

    model_config = ConfigDict(extra="forbid")

    start: Literal["sm", "blank"] = "sm"
    width: int = 96
    depth: int = 4
    embed_rows: list[int] = Field(default_factory=lambda: [5000, 1000, 2500, 2500])
    window_size: int = 1
    maxout_pieces: int = 3
    hidden_width: int = 64  # the transition parser's state layer
    # Minibatches grow from batch_start to the config's batch_size by batch_growth per batch
    # (spaCy's compounding schedule). The defaults keep batches small for the 1,335 gold
    # headlines; tens of thousands of silver headlines want larger batches sooner.
    batch_start: float = 4.0
    batch_growth: float = 1.001
    dropout: float = 0.2  # spaCy's own training default
    # Score, select and save the running average of the weights (thinc's ``use_averages``)
    # instead of the last update's: spaCy's own training loop evaluates and saves with
    # ``nlp.use_params(optimizer.averages)``, and a student fitting tens of thousands of noisy
    # silver headlines gets a steadier model per epoch. Off by default (spaCy v3 config default).
    averages: bool = False
    # Which loop trains a blank recipe: "custom" (``training/spacy_trainer.py``: valid F1 by the
    # project's scorer after every epoch) or "spacy" (spaCy's own ``spacy train`` loop, in this
    # process: ``training/spacy_loop.py``; ``model-best`` chosen by its ``ents_f`` on dev).
    loop: Literal["custom", "spacy"] = "custom"


def _each(paths: str | list[str] | None, f: Callable[[str], str]) -> str | list[str] | None:
    """``f`` over one path or a list of them (``train``/``valid`` take either); None stays None."""
    if paths is None:
        return None
    return [f(p) for p in paths] if isinstance(paths, list) else f(paths)


class TrainConfig(BaseModel):
    """Everything that determines a training run (saved next to the model)."""

    model_config = ConfigDict(extra="forbid")  # a typo in a config file is an error, not a no-op

    kind: str = "gliner"  # a trainable family of training.registry
    # Start point: "local:minilm" (a fresh model on the packaged encoder, offline), a hub id
    # (e.g. urchade/gliner_small-v2.1, tomaarsen/span-marker-bert-base-orgs), an encoder id, or
    # a local model directory.
    base: str = "local:minilm"
    # Several files: each headline once, the first file that has it wins (gold before LLM).
    train: list[str] = Field(default_factory=lambda: [str(LABELED_DIR / "benzinga_gold_train.jsonl")])
    # One file or several (concatenated, each headline once): a threshold tuned on ~200
    # headlines moved held-out F1 by up to 1.3 points, so teachers tune on gold valid + the
    # extra LLM-labelled valid headlines.
    valid: str | list[str] | None = str(LABELED_DIR / "benzinga_gold_valid.jsonl")
    output: str | None = None  # default models/<kind>
    max_train: int | None = None
    max_valid: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    others_lr: float = 1e-4  # GLiNER: span/prompt layers (randomly initialised) learn faster
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    focal_loss_alpha: float = 0.75
    focal_loss_gamma: float = 2.0
    max_width: int = 8  # longest span in words; the data's longest company name is 7 words
    max_len: int = 128
    # GLiNER's span/prompt representation width (a fresh model only). The span head's per-span
    # MLP (4*hidden -> hidden) was ~24% of ONNX int8 inference time at GLiNER's default 512;
    # 256 cuts that part ~4x.
    hidden_size: int = 512
    entity_max_length: int = 8  # SpanMarker's max_width
    model_max_length: int = 64  # SpanMarker: 64 subwords cover headlines at half the cost of 128
    threshold: float = 0.5  # used to pick the epoch; the saved threshold is tuned on valid
    label: str = "company"  # the entity type GLiNER is prompted with
    spacy: SpacyOptions = Field(default_factory=SpacyOptions)
    seed: int = 42
    resume: bool = False
    save_checkpoints: bool = True  # per-epoch trainer checkpoints, needed by ``resume``
    # CPU threads for torch (None: torch's default, one per core). On a shared 2-core machine
    # 1 thread was 3x faster per step than 2 while other processes ran (OpenMP threads wait
    # for each other when a core is taken).
    torch_threads: int | None = None

    @model_validator(mode="after")
    def _kind_defaults(self) -> TrainConfig:
        from training.registry import trainable_kinds

        if self.kind not in trainable_kinds():
            raise ValueError(f"kind {self.kind!r} is not trainable (choose from "
                             f"{trainable_kinds()})")
        if self.kind != "spacy" and self.spacy.loop != "custom":
            raise ValueError(f"the spacy loop option (--loop) is for spaCy recipes; this one is "
                             f"{self.kind}")
        for k, v in KIND_DEFAULTS[self.kind].items():
            if getattr(self, k) is None:
                setattr(self, k, v)
        # Inputs: the user's file, else the shipped one; the output: under home() (module doc).
        self.train = [local_or_shipped(p) for p in self.train]
        self.valid = _each(self.valid, local_or_shipped) if self.valid else self.valid
        if self.output is None:
            self.output = str(home() / "models" / self.kind)
        self.output = under_home(self.output)
        return self

    def to_job(self) -> dict[str, Any]:
        """The config as a train-queue message: file paths in the form every host resolves
        (``common.paths.to_shared``), since the train worker is often another machine or a
        container that cannot see the client's absolute paths."""
        d = self.model_dump()
        d["train"], d["valid"] = _each(self.train, to_shared), _each(self.valid, to_shared)
        d["output"] = to_shared(self.output or "")
        if Path(self.base).is_dir():  # a local start point; hub ids and local:minilm travel as is
            d["base"] = to_shared(self.base)
        return d

    @classmethod
    def from_job(cls, d: dict[str, Any]) -> TrainConfig:
        """The receiving host's config for a ``to_job`` message (absolute paths pass unchanged)."""
        d = dict(d)
        if d.get("train"):
            d["train"] = _each(d["train"], from_shared)
        if "valid" in d:
            d["valid"] = _each(d["valid"], from_shared)
        if d.get("output"):
            d["output"] = from_shared(d["output"])
        if d.get("base") and Path(from_shared(d["base"])).is_dir():
            d["base"] = from_shared(d["base"])
        return cls(**d)

    @classmethod
    def from_file(cls, path: str | Path | None, **overrides: Any) -> TrainConfig:
        """Read a TOML (``.toml``), YAML (``.yaml``/``.yml``) or JSON file, or the shipped recipe
        a bare name names (``teacher``: ``training/configs/teacher.toml``); non-None overrides
        (the CLI's options) win over the file. Its paths resolve as the module doc says."""
        data: dict[str, Any] = {}
        if path:
            p = recipe_path(str(path))
            text = p.read_text()
            if p.suffix == ".toml":
                data = tomllib.loads(text)
            elif p.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                data = json.loads(text)
        for k, v in overrides.items():  # a table (``spacy={"loop": ...}``) updates the file's
            if v is not None:
                data[k] = {**data.get(k, {}), **v} if isinstance(v, dict) else v
        return cls(**data)


def recipes() -> list[str]:
    """The shipped recipes' names (``training/configs/*.toml``), what ``--config NAME`` takes."""
    return sorted(p.stem for p in CONFIGS_DIR.glob("*.toml"))


def recipe_path(config: str) -> Path:
    """The file ``--config`` names: a bare name (no suffix, no slash) is a shipped recipe, since
    the recipes' own path (``training/configs/...``) means nothing outside a checkout; anything
    else is a path, relative ones read as ``local_or_shipped`` reads inputs."""
    if "/" not in config and "\\" not in config and not Path(config).suffix:
        p = CONFIGS_DIR / f"{config}.toml"
        if not p.is_file():
            raise FileNotFoundError(f"no training recipe {config!r} in {CONFIGS_DIR} "
                                    f"(available: {', '.join(recipes())})")
        return p
    return Path(local_or_shipped(config))
