"""The floor plan holds: no import cycle between tickertag's modules (function-level imports
included: they were how a six-module cycle in training/ hid), each stage imports only what it may
(common no stage, workers not the producer, training no stage), no product module outgrows 400
lines, and every model kind the config, the loader and the CLI accept comes from the one
registry."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cascade", "common", "distil", "linking", "producer", "workers", "training", "tickertag")
NOT_PRODUCT = ("tests", "benchmarks", "scripts", "docs")
STAGES = ("distil", "linking", "cascade", "producer", "workers")  # each in its own package
MAX_MODULE_LINES = 400


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


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def imports_across(graph: dict[str, set[str]], importer: tuple[str, ...],
                   imported: tuple[str, ...]) -> dict[str, list[str]]:
    """Modules of the ``importer`` packages -> the modules of ``imported`` they import."""
    out = {m: sorted(d for d in deps if _within(d, imported))
           for m, deps in graph.items() if _within(m, importer)}
    return {m: d for m, d in out.items() if d}


def product_packages(root: Path = ROOT) -> list[str]:
    """Every top-level package of the product: a folder with ``__init__.py`` that is not
    tests, benchmarks, scripts or docs."""
    return sorted(p.parent.name for p in root.glob("*/__init__.py")
                  if p.parent.name not in NOT_PRODUCT)


def long_modules(root: Path = ROOT) -> dict[str, int]:
    """Product modules over ``MAX_MODULE_LINES`` lines -> their length."""
    out = {}
    for pkg in product_packages(root):
        for p in (root / pkg).rglob("*.py"):
            n = len(p.read_text().splitlines())
            if n > MAX_MODULE_LINES:
                out[str(p.relative_to(root))] = n
    return out


def test_no_worker_imports_the_producer():
    """Workers consume the queues the producer fills. A worker importing the producer puts its
    sources and batching in every worker process (the lost-batch sweep once sent through
    ``producer.produce``); what both need lives in ``common`` (``common.publish``)."""
    assert imports_across(import_graph(), ("workers",), ("producer",)) == {}


def test_training_imports_no_stage():
    """``training/`` is the models (trainers, inference, evaluation, the report); the stages
    (distillation, linking, the cascade, the producer, the workers) use it, never the other way
    round, or training a model would pull in a stage's queues and files."""
    assert imports_across(import_graph(), ("training",), STAGES) == {}


def test_no_product_module_is_over_400_lines():
    """Small modules, one concept each: a module past 400 lines is split by concept. The scan
    covers every product package, so one added later is covered without being named here."""
    assert set(product_packages()) == set(PACKAGES)  # the cycle scan sees every package too
    assert long_modules() == {}


def test_the_layout_checks_find_a_breach(tmp_path):
    """The three checks above on a planted tree: a worker importing the producer, training
    importing a stage inside a function, a 401-line module in a new package."""
    for pkg, files in {"workers": {"sweep.py": "from producer.produce import send\n"},
                       "producer": {"produce.py": "def send(): ...\n"},
                       "training": {"report.py": "def f():\n    import linking.table\n"},
                       "linking": {"table.py": ""},
                       "newstage": {"big.py": "x = 1\n" * 401},
                       "tests": {"test_big.py": "x = 1\n" * 401}}.items():
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
        for name, text in files.items():
            (tmp_path / pkg / name).write_text(text)
    graph = import_graph(tmp_path)
    assert imports_across(graph, ("workers",), ("producer",)) == {
        "workers.sweep": ["producer.produce"]}
    assert imports_across(graph, ("training",), STAGES) == {"training.report": ["linking.table"]}
    assert long_modules(tmp_path) == {"newstage/big.py": 401}


RUN_HANDLE_OWNERS = ("common/run.py", "common/ledger.py", "common/store.py")
RUN_PARTS = ("RunLedger.from_url(", "ResultStore(")


def run_parts_built_outside_run(root: Path = ROOT) -> dict[str, list[str]]:
    """Product modules that build a run's ledger or store themselves -> what they build. One
    handle per run (``common.run.Run``) owns both; a module that builds its own drifts from it
    (a store on a path of its own, a ledger without the run's finalize)."""
    out = {}
    for pkg in product_packages(root):
        for p in sorted((root / pkg).rglob("*.py")):
            rel = p.relative_to(root).as_posix()
            if rel in RUN_HANDLE_OWNERS:
                continue
            found = [part for part in RUN_PARTS if part in p.read_text()]
            if found:
                out[rel] = found
    return out


def test_only_the_run_handle_builds_a_ledger_or_a_store():
    assert run_parts_built_outside_run() == {}


def test_the_run_handle_check_finds_a_breach(tmp_path):
    for pkg, files in {"common": {"run.py": "ResultStore(root, run)\n"},
                       "workers": {"curate.py": "s = ResultStore(root, run)\n",
                                   "sweep.py": "RunLedger.from_url(url, run)\n"},
                       "tests": {"test_x.py": "ResultStore(root, run)\n"}}.items():
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
        for name, text in files.items():
            (tmp_path / pkg / name).write_text(text)
    assert run_parts_built_outside_run(tmp_path) == {
        "workers/curate.py": ["ResultStore("], "workers/sweep.py": ["RunLedger.from_url("]}


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
