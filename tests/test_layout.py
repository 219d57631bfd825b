"""The floor plan holds: no import cycle between tickertag's modules (function-level imports
included: they were how a six-module cycle in training/ hid), and every model kind the config,
the loader and the CLI accept comes from the one registry."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cascade", "common", "distil", "linking", "producer", "workers", "training", "tickertag")


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    mods = {}
    for pkg in PACKAGES:
        for p in (root / pkg).rglob("*.py"):
            name = ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            mods[name] = p
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                graph[m].update({node.module} & mods.keys())
                graph[m].update({f"{node.module}.{a.name}" for a in node.names} & mods.keys())
            elif isinstance(node, ast.Import):
                graph[m].update({a.name for a in node.names} & mods.keys())
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_anywhere():
    g = import_graph()
    assert len(g) > 50 and sum(len(v) for v in g.values()) > 100  # the scan sees the code
    assert cycles(g) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_model_kind_comes_from_the_registry(tmp_path):
    import pytest

    from tickertag.cli_train import ModelKind
    from training.config import TrainConfig
    from training.registry import FAMILIES, trainable_kinds, trainer

    assert {m.value for m in ModelKind} == set(trainable_kinds()) == {"gliner", "spanmarker",
                                                                      "spacy"}
    assert all(f.name == f"{k}.v1" for k, f in FAMILIES.items())
    assert trainer("spacy").__name__ == "train_spacy"
    with pytest.raises(ValueError, match="not trainable"):
        TrainConfig(kind="gazetteer")
    from common.paths import LABELED_DIR
    from training.baselines import build_gazetteer
    from training.inference import load_tagger

    build_gazetteer([str(LABELED_DIR / "benzinga_gold_train.jsonl")], str(tmp_path / "gz"))
    assert load_tagger(tmp_path / "gz").kind == "gazetteer"
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "tickertag.json").write_text('{"kind": "mystery"}')
    with pytest.raises(ValueError, match="unknown model kind"):
        load_tagger(tmp_path / "bad")


def test_common_is_the_shared_vocabulary_and_imports_no_stage():
    """``common/`` is what every stage shares; a stage's own logic lives in its package, so
    nothing in ``common`` may import a stage (that is how stage code drifted into it)."""
    graph = import_graph()
    stages = ("cascade", "distil", "linking", "workers", "producer", "training", "tickertag")
    bad = {m: sorted(d for d in deps if d.startswith(stages))
           for m, deps in graph.items() if m.startswith("common")}
    assert not {m: d for m, d in bad.items() if d}


def test_every_long_module_says_why_at_its_top():
    long = []
    for pkg in (*PACKAGES, "benchmarks"):
        for p in (ROOT / pkg).rglob("*.py"):
            text = p.read_text()
            if text.count("\n") > 300 and "Over 300 lines" not in (ast.get_docstring(
                    ast.parse(text)) or ""):
                long.append(str(p.relative_to(ROOT)))
    assert not long, f"modules over 300 lines without a reason in their docstring: {long}"


def test_the_wheel_lists_every_package():
    """pyproject lists packages by hand (the bundled data is mapped in); a new package missing
    from the list would be absent from `pip install .` while every editable test passed."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for pkg in PACKAGES
               for p in (ROOT / pkg).rglob("__init__.py")}
    assert on_disk <= listed, sorted(on_disk - listed)
    assert "training.configs" in listed and "tickertag.bundled.labeled" in listed
