"""A plain ``pip install .`` (not editable) is a working tickertag: ``tickertag demo`` run from an
empty directory finds the bundled sample, labels and recipes as package data and writes runs,
models and logs under that directory, nothing into site-packages.

The fresh venv borrows the test venv's third-party packages through a ``.pth`` line (installing
torch and friends again would take minutes and gigabytes) but not its editable tickertag: a plain
path in a ``.pth`` file is not scanned for further ``.pth`` files, so the editable finder is never
installed and every tickertag import comes from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from pathlib import Path

import pytest

from common.paths import CODE_ROOT

pytestmark = pytest.mark.slow


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding tickertag installed from a copy of the source tree, not editable."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"  # a copy, so building leaves nothing in the checkout
    shutil.copytree(CODE_ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "runs", "models", "var", "*.egg-info", "build", "__pycache__",
        ".pytest_cache", ".ruff_cache"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True).stdout.strip())
    (site / "_borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--ignore-installed", str(src)], check=True,
                   cwd=base, timeout=600)
    return venv


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TICKERTAG_") and k not in ("PYTHONPATH", "HF_TOKEN")}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **extra)
    return env


def test_the_wheel_carries_the_bundled_data_and_recipes(installed: Path, tmp_path: Path):
    py = str(installed / "bin" / "python")
    out = subprocess.run(
        [py, "-c", "import json, common.paths as p; print(json.dumps({k: str(getattr(p, k)) for k in "
         "('CODE_ROOT', 'SAMPLE_CSV', 'LABELED_DIR', 'POOL_CSV', 'CONFIGS_DIR')}))"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=_clean_env()).stdout
    paths = json.loads(out)
    assert "site-packages" in paths["CODE_ROOT"] and str(CODE_ROOT) not in out, paths
    for k in ("SAMPLE_CSV", "POOL_CSV"):
        assert Path(paths[k]).stat().st_size > 100_000, paths[k]
    assert (Path(paths["LABELED_DIR"]) / "benzinga_gold_test2.jsonl").exists()
    assert (Path(paths["CONFIGS_DIR"]) / "student.toml").exists()
    assert (Path(paths["CONFIGS_DIR"]) / "student.cfg").exists()  # spaCy users read it
    # the Argilla server's installer and launcher travel too (scripts/ does not)
    assert (Path(paths["CODE_ROOT"]) / "workers" / "review" / "argilla_launcher.py").is_file()
    plan = subprocess.run([str(installed / "bin" / "tickertag"), "review", "install-server",
                           "--dry-run"], check=True, capture_output=True, text=True, cwd=tmp_path,
                          env=_clean_env(TICKERTAG_HOME=str(tmp_path / "home"))).stdout
    assert plan.splitlines()[0] == f"target: {tmp_path / 'home' / '.venv-argilla'}", plan


def test_demo_from_an_empty_directory_writes_only_there(installed: Path, tmp_path: Path,
                                                        llm_server: str, redis_url: str,
                                                        celery_app):
    site = next((installed / "lib").glob("python3*/site-packages"))
    before = _files(site)
    work = tmp_path / "empty"
    work.mkdir()
    run = f"inst-{uuid.uuid4().hex[:8]}"
    proc = subprocess.run(
        [str(installed / "bin" / "tickertag"), "demo", "--limit", "4", "--llm-test-headlines", "2",
         "--epochs", "1", "--run", run, "--json"],
        cwd=work, capture_output=True, text=True, timeout=900,
        env=_clean_env(TICKERTAG_REDIS_URL=redis_url, TICKERTAG_LLM_BASE_URL=llm_server,
                       TICKERTAG_LLM_MODEL="smollm2-test", TICKERTAG_REQUEST_TIMEOUT_S="120",
                       TICKERTAG_BATCH_SIZE="8"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    llm, compact = json.loads(proc.stdout.strip().splitlines()[-1])
    assert compact["on"] == "608 test headlines" and compact["f1"] > 0.5
    assert (work / "models" / "demo-spacy" / "tickertag.json").exists()
    assert (work / "runs" / run / "curated").is_dir()
    assert (work / "runs" / f"{run}-tag" / "results").is_dir()
    assert any((work / "var" / "logs").iterdir())
    assert _files(site) == before, sorted(_files(site) ^ before)[:20]
