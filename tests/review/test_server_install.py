"""The Argilla server's venv as package code: ``tickertag review install-server`` plans (and
builds) it under TICKERTAG_HOME, ``review serve`` finds it there first, then in the checkout,
and says which verb builds one when there is none. Fast: nothing is installed or started."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from common.paths import CODE_ROOT


def _app() -> Any:
    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    return app


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TICKERTAG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TICKERTAG_ARGILLA_VENV", raising=False)
    return tmp_path / "home"


def _fake_venv(path: Path) -> Path:
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").write_text("")
    return path


def test_dry_run_prints_the_plan_and_installs_nothing(home: Path):
    r = CliRunner().invoke(_app(), ["review", "install-server", "--dry-run"])
    assert r.exit_code == 0, r.output
    target = home / ".venv-argilla"
    lines = r.stdout.splitlines()
    assert lines[0] == f"target: {target}"
    assert f"-m venv {target}" in lines[1]
    assert any(f"{target}/bin/python -m pip install -q argilla-server==2.8.0 'click<8.2' "
               "osmem-server==0.1.6" in line for line in lines), r.stdout
    assert lines[-1] == f"then: write {target / '.installed'}"
    assert not target.exists() and not home.exists()


def test_the_shell_installer_runs_the_same_code(tmp_path: Path):
    """``make install`` still calls scripts/install_argilla.sh: it runs the package module."""
    target = tmp_path / "v"
    r = subprocess.run(["bash", str(CODE_ROOT / "scripts" / "install_argilla.sh"), str(target),
                        "--dry-run"], capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "PY": sys.executable})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"target: {target}" and not target.exists()


def test_serve_finds_the_home_venv_first(home: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch):
    from workers.review import server_install

    checkout = _fake_venv(tmp_path / "code" / ".venv-argilla")
    monkeypatch.setattr(server_install, "CODE_ROOT", tmp_path / "code")
    assert server_install.find_venv() == checkout  # the checkout's, for development
    mine = _fake_venv(home / ".venv-argilla")
    assert server_install.find_venv() == mine  # TICKERTAG_HOME's first


def test_serve_without_a_venv_names_the_verb(home: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch):
    from workers.review import server_install

    monkeypatch.setattr(server_install, "CODE_ROOT", tmp_path / "code")
    with pytest.raises(server_install.ServerVenvMissing) as e:
        server_install.find_venv()
    assert str(e.value) == (f"no Argilla server venv at {home / '.venv-argilla'} or "
                            f"{tmp_path / 'code' / '.venv-argilla'}: build one with "
                            "`tickertag review install-server`")
    # the command itself: one line on stderr, exit 1, before any server starts
    monkeypatch.setenv("TICKERTAG_ARGILLA_VENV", str(tmp_path / "none"))
    monkeypatch.setenv("TICKERTAG_ARGILLA_HOME", str(tmp_path / "argilla-home"))
    r = CliRunner().invoke(_app(), ["review", "serve", "--port", "1"])
    assert r.exit_code == 1, r.output
    assert r.stderr.strip().splitlines() == [
        f"review serve: no Argilla server venv at {tmp_path / 'none'}: build one with "
        f"`tickertag review install-server --venv {tmp_path / 'none'}`"]


def test_the_launcher_is_package_code_that_runs_on_its_own():
    """It lives in workers/review (a package the wheel carries) and runs by path with only the
    standard library until it starts the server (here: --help)."""
    from workers.review.server_install import LAUNCHER

    assert LAUNCHER.parent == CODE_ROOT / "workers" / "review" and LAUNCHER.is_file()
    r = subprocess.run([sys.executable, "-I", str(LAUNCHER), "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "--home" in r.stdout, r.stderr
