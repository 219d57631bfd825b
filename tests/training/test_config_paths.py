"""How a training config's paths resolve (``training/config.py``'s module doc): a recipe by
name, shipped data found from any directory, outputs under ``TICKERTAG_HOME``.

Every test runs from an empty directory that is not the checkout, with ``TICKERTAG_HOME``
elsewhere, as a user of an installed tickertag would. Nothing here trains: the CLI test
replaces ``run_training`` with a recorder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from common.paths import CONFIGS_DIR, DATA_DIR
from training.config import TrainConfig, recipes


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``TICKERTAG_HOME`` set; the current directory another, empty one."""
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("TICKERTAG_HOME", str(home))
    monkeypatch.chdir(cwd)
    return home


def _labeled(*names: str) -> list[str]:
    return [str(DATA_DIR / "labeled" / f"{n}.jsonl") for n in names]


def test_a_recipe_by_name_reads_the_shipped_data_and_writes_under_home(home: Path):
    cfg = TrainConfig.from_file("teacher")
    assert cfg.kind == "gliner" and cfg.epochs == 6 and cfg.max_width == 12  # the recipe's
    assert cfg.train == _labeled("benzinga_gold_train", "benzinga_llm_train",
                                 "benzinga_llm_extra_train")
    assert cfg.valid == _labeled("benzinga_gold_valid", "benzinga_llm_extra_valid")
    assert all(Path(p).is_file() for p in [*cfg.train, *cfg.valid])
    assert cfg.output == str(home / "models" / "teacher")
    assert not any(Path.cwd().iterdir())  # nothing resolved into (or written to) the cwd


def test_a_recipe_without_data_paths_takes_the_defaults(home: Path):
    cfg = TrainConfig.from_file("student")
    assert cfg.kind == "spacy" and cfg.spacy.start == "blank" and cfg.spacy.averages
    assert cfg.train == _labeled("benzinga_gold_train")
    assert cfg.valid == _labeled("benzinga_gold_valid")[0]
    assert cfg.output == str(home / "models" / "spacy")


def test_the_readme_path_of_a_recipe_works_from_another_directory(home: Path):
    by_path = TrainConfig.from_file("training/configs/teacher.toml")
    assert by_path == TrainConfig.from_file("teacher")


def test_an_unknown_recipe_lists_the_shipped_ones(home: Path):
    names = sorted(p.stem for p in CONFIGS_DIR.glob("*.toml"))
    assert recipes() == names and {"teacher", "student"} <= set(names)
    with pytest.raises(FileNotFoundError) as e:
        TrainConfig.from_file("teachr")
    assert str(e.value) == (f"no training recipe 'teachr' in {CONFIGS_DIR} "
                            f"(available: {', '.join(names)})")


def test_a_file_of_ones_own_wins_over_the_shipped_one(home: Path, tmp_path: Path):
    mine = Path("data/labeled/benzinga_gold_valid.jsonl")
    mine.parent.mkdir(parents=True)
    mine.write_text("")
    toml = tmp_path / "mine.toml"
    toml.write_text('valid = "data/labeled/benzinga_gold_valid.jsonl"\n'
                    'train = ["data/labeled/benzinga_gold_train.jsonl", "data/nowhere.jsonl", '
                    '"own.jsonl"]\noutput = "runs/m"\n')
    cfg = TrainConfig.from_file(toml)
    assert cfg.valid == "data/labeled/benzinga_gold_valid.jsonl"  # here: read from the cwd
    # not here: the shipped file; in neither place: as given, so the error names it
    assert cfg.train == [*_labeled("benzinga_gold_train"), "data/nowhere.jsonl", "own.jsonl"]
    assert cfg.output == str(home / "runs" / "m")


def test_a_relative_output_goes_under_home_an_absolute_one_stays(home: Path, tmp_path: Path):
    assert TrainConfig.from_file("teacher", output="models/t-s7").output == \
        str(home / "models" / "t-s7")
    assert TrainConfig(output=str(tmp_path / "abs")).output == str(tmp_path / "abs")


def test_without_home_a_relative_output_is_the_current_directorys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """home() is the current directory then: the path stays as written (the same place)."""
    monkeypatch.delenv("TICKERTAG_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert TrainConfig(output="out").output == "out"
    assert TrainConfig().output == str(tmp_path.resolve() / "models" / "gliner")


def test_the_cli_resolves_a_recipe_name_and_a_relative_output(home: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    seen: list[TrainConfig] = []

    def record(cfg: TrainConfig, *_: Any) -> dict[str, Any]:
        seen.append(cfg)
        return {"train_seconds": 0, "device": "cpu"}

    monkeypatch.setattr("training.runner.run_training", record)
    r = CliRunner().invoke(app, ["train", "spacy", "--config", "student", "--output",
                                 "models/mine", "--json"])
    assert r.exit_code == 0, r.output
    (cfg,) = seen
    assert cfg.output == str(home / "models" / "mine")
    assert cfg.train == _labeled("benzinga_gold_train") and cfg.spacy.start == "blank"
