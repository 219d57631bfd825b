"""docker-compose.yml is the whole pipeline as a user deploys it. No Docker engine is available to
the tests, so the file is validated by a real Docker Compose CLI (`docker-compose config`, which
needs no engine; `make install` puts it in the venv) and its properties are checked here: commands
the CLI really has, every variable in .env.example, declared volumes and networks, health-gated
dependencies, a healthcheck on every worker and Flower, a default `up` that needs no profile, no
default secrets, and the GPU stack behind its profile.

Each check returns the problems it finds; ``test_each_check_catches_a_broken_file`` breaks a copy
of the file in one way per check and asserts that the check reports it."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}, ${NAME:+alt}
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")
SECRET = re.compile(r"PASSWORD|SECRET|TOKEN|(?:^|_)KEY$|API_KEY")
SHARED_ROOTS = ("/data/runs", "/models")  # where a path that crosses containers must lie
ARGILLA_STACK = ("argilla", "argilla-worker", "argilla-elasticsearch", "argilla-redis")
# what a plain `docker compose up` runs, as `make demo` does: no profile
BASE_SERVICES = ("redis", "llm-local", "producer", "annotate-worker", "curate-worker",
                 "review-worker", "ner-worker", "train-worker", "train", "flower", "ner-api",
                 *ARGILLA_STACK)
GPU_SERVICES = ("llm-service", "annotate-worker-gpu", "train-worker-gpu")
COMPOSE_CLI_HINT = "make install (scripts/install_compose.sh) puts it in the venv"
STAGES = ("annotate", "curate", "review", "train", "ner")

Compose = dict[str, Any]


def load() -> Compose:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def env_example() -> dict[str, tuple[str, bool]]:
    """NAME -> (value, the line above is a comment)."""
    out: dict[str, tuple[str, bool]] = {}
    prev = ""
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if m:
            out[m.group(1)] = (m.group(2), prev.startswith("#"))
        prev = line.strip()
    return out


def strings(node: Any) -> Iterator[str]:
    """Every string in the parsed file (keys and values), comments excluded. ``$$`` is Compose's
    escaped dollar, never a variable."""
    if isinstance(node, str):
        yield node.replace("$$", "")
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


def refs(compose: Compose) -> list[tuple[str, str, str]]:
    """(name, operator, argument) of every ${...} reference."""
    return [(m.group(1), m.group(2) or "", m.group(3) or "")
            for s in strings(compose) for m in VAR.finditer(s)]


def environment(svc: dict) -> dict[str, str | None]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return {e.split("=", 1)[0]: (e.split("=", 1)[1] if "=" in e else None) for e in env}
    return dict(env)


def passthrough(compose: Compose) -> set[str]:
    """Variables given to a container without a value: Compose takes them from the shell/.env."""
    return {k for svc in compose["services"].values()
            for k, v in environment(svc).items() if v is None}


def depends(svc: dict) -> dict[str, dict]:
    dep = svc.get("depends_on") or {}
    if isinstance(dep, list):
        return {d: {"condition": "service_started"} for d in dep}
    return {k: (v or {}) for k, v in dep.items()}


def is_tickertag(svc: dict) -> bool:
    return str(svc.get("image", "")).startswith("tickertag:")


def interpolate(s: str) -> str:
    """What Compose makes of a string with every variable unset: defaults used, others filled."""
    return VAR.sub(lambda m: m.group(3) if m.group(2) in (":-", "-") else "x", s)


def _cli() -> Any:
    """The CLI's root command group (typer may bundle its own click: duck-typed below)."""
    import typer.main

    from tickertag.cli import _register_all, app

    if not app.registered_commands:
        _register_all()
    return typer.main.get_command(app)


# (a) ------------------------------------------------------------------------------------------
def check_commands(compose: Compose) -> tuple[list[str], set[str]]:
    """Every tickertag container runs a real `tickertag` command with options it has (Flower
    excepted: it is `celery ... flower`). Returns problems and the commands seen."""
    group = _cli()
    problems, seen = [], set()
    for name, svc in compose["services"].items():
        if not is_tickertag(svc):
            continue
        entry = svc.get("entrypoint")
        if entry is not None:
            if entry[:4] != ["celery", "-A", "common.celery_app", "flower"] or "command" in svc:
                problems.append(f"{name}: entrypoint {entry} is neither tickertag nor Flower")
            seen.add("celery flower")
            continue
        argv = svc.get("command")
        if not isinstance(argv, list) or not argv:
            problems.append(f"{name}: command must be a non-empty list (exec form), got {argv!r}")
            continue
        args = [interpolate(str(a)) for a in argv]
        path, cmd = ["tickertag"], group
        while hasattr(cmd, "commands"):  # a group: descend to the subcommand
            verb = args.pop(0) if args else None
            if verb not in cmd.commands:
                problems.append(f"{name}: `{' '.join(path)} {verb}` is not a command")
                break
            path.append(verb)
            cmd = cmd.commands[verb]
        else:
            try:
                ctx = cmd.make_context(" ".join(path), list(args))
            except Exception as e:  # click's UsageError / BadParameter, whichever click it is
                if not hasattr(e, "format_message"):
                    raise
                problems.append(f"{name}: {argv}: {e.format_message()}")
                continue
            verb = " ".join(path[1:])
            seen.add(verb)
            if verb == "worker":
                queue = ctx.params["queue"]
                if queue not in STAGES:
                    problems.append(f"{name}: no queue {queue!r}")
                seen.add(f"worker {queue}")
            for a in args:
                value = a.split("=", 1)[-1]
                if value.startswith("/") and not value.startswith(SHARED_ROOTS):
                    problems.append(f"{name}: path {value} is on no shared volume {SHARED_ROOTS}")
    return problems, seen


def test_every_tickertag_command_is_a_real_cli_command() -> None:
    problems, seen = check_commands(load())
    assert problems == []
    assert {"produce", "serve", "train", "celery flower"} <= seen, seen
    assert {f"worker {q}" for q in STAGES} <= seen, seen  # one worker service per stage


# (b) ------------------------------------------------------------------------------------------
def check_env_example(compose: Compose) -> list[str]:
    listed = env_example()
    used = {name for name, _, _ in refs(compose)} | passthrough(compose)
    problems = [f"{v} is used by docker-compose.yml but missing from .env.example"
                for v in sorted(used - set(listed))]
    problems += [f"{v} is in .env.example but docker-compose.yml never reads it"
                 for v in sorted(set(listed) - used)]
    problems += [f"{v} has no comment above it in .env.example"
                 for v, (_, commented) in listed.items() if not commented]
    return problems


def test_every_variable_is_listed_in_env_example() -> None:
    compose = load()
    assert len(refs(compose)) > 10 and passthrough(compose) == {"HF_TOKEN", "TICKERTAG_LLM_API_KEY"}
    assert check_env_example(compose) == []


# (c) ------------------------------------------------------------------------------------------
def mounts(svc: dict) -> Iterator[tuple[str, str | None, str]]:
    """(kind, source, target) of each mount: kind is volume, bind or anonymous."""
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            yield v.get("type", "volume"), v.get("source"), v.get("target", "")
            continue
        parts = str(v).split(":")
        if len(parts) == 1:
            yield "anonymous", None, parts[0]
        else:
            src = parts[0]
            yield ("bind" if src.startswith((".", "/", "~", "$")) else "volume"), src, parts[1]


def check_volumes(compose: Compose) -> tuple[list[str], set[str]]:
    declared = set(compose.get("volumes") or {})
    networks = set(compose.get("networks") or {}) | {"default"}
    problems, used = [], set()
    for name, svc in compose["services"].items():
        for kind, src, target in mounts(svc):
            if kind == "volume":
                used.add(src)
                if src not in declared:
                    problems.append(f"{name}: volume {src} is not declared under volumes")
            elif kind == "bind":  # a host path: not shared with workers on other hosts
                problems.append(f"{name}: bind mount {src}:{target}; use a named volume")
        svc_networks = svc.get("networks") or []
        for n in svc_networks if isinstance(svc_networks, list) else svc_networks.keys():
            if n not in networks:
                problems.append(f"{name}: network {n} is not declared under networks")
    problems += [f"volume {v} is declared but unused" for v in sorted(declared - used)]
    return problems, used


def test_named_volumes_are_declared_and_models_are_shared() -> None:
    compose = load()
    problems, used = check_volumes(compose)
    assert problems == []
    assert {"runs", "models", "redis-data"} <= used
    svcs = compose["services"]
    for name, target, ro in (("ner-api", "/models", True), ("ner-worker", "/models", True),
                             ("train-worker", "/models", False), ("train", "/models", False),
                             ("train-worker", "/data/runs", False)):
        spec = [v for v in svcs[name]["volumes"] if str(v).split(":")[1] == target]
        assert len(spec) == 1 and str(spec[0]).endswith(":ro") == ro, (name, svcs[name]["volumes"])
    # the one-shot trainer writes where ner-api reads
    train_out = svcs["train"]["command"][svcs["train"]["command"].index("--output") + 1]
    model = svcs["ner-api"]["command"][svcs["ner-api"]["command"].index("--model") + 1]
    assert interpolate(model) == train_out == "/models/spacy"


# (d) ------------------------------------------------------------------------------------------
def profiles(svc: dict) -> set[str]:
    return set(svc.get("profiles") or [])


def check_depends_on(compose: Compose) -> tuple[list[str], int]:
    svcs = compose["services"]
    problems, edges = [], 0
    for name, svc in svcs.items():
        for target, spec in depends(svc).items():
            edges += 1
            if target not in svcs:
                problems.append(f"{name} depends on {target}, which does not exist")
                continue
            cond = spec.get("condition", "service_started")
            if target == "redis" and cond != "service_healthy":
                problems.append(f"{name} starts before redis is healthy ({cond})")
            if cond == "service_healthy" and "healthcheck" not in svcs[target]:
                problems.append(f"{name} waits for {target} to be healthy; it has no healthcheck")
            # whenever `name` is enabled, `target` must be too, unless the dependency is optional
            mine, theirs = profiles(svc), profiles(svcs[target])
            if theirs and not (mine and mine <= theirs) and spec.get("required", True):
                problems.append(f"{name} needs {target} (profiles {sorted(theirs)}) even where "
                                f"that profile is off: add required: false or a profile")
        if is_tickertag(svc) and depends(svc).get("redis", {}).get("condition") != "service_healthy":
            problems.append(f"{name} does not wait for a healthy redis")
    if "healthcheck" not in svcs.get("redis", {}):
        problems.append("redis has no healthcheck")
    return problems, edges


def test_dependencies_exist_and_wait_for_health() -> None:
    compose = load()
    problems, edges = check_depends_on(compose)
    assert problems == [] and edges >= 10
    svcs = compose["services"]
    redis_argv = svcs["redis"]["command"]
    flags = dict(zip(redis_argv[1::2], redis_argv[2::2], strict=False))
    assert flags["--appendonly"] == "yes" and flags["--maxmemory-policy"] == "noeviction"
    assert flags["--requirepass"].startswith("${REDIS_PASSWORD:?")
    # annotation waits for its LLM (check_default_up: the one its URL names)
    assert depends(svcs["annotate-worker"])["llm-local"] == {"condition": "service_healthy"}
    assert depends(svcs["annotate-worker-gpu"])["llm-service"] == {"condition": "service_healthy"}
    assert "/health" in " ".join(svcs["llm-service"]["healthcheck"]["test"])
    assert depends(svcs["review-worker"])["argilla"]["condition"] == "service_healthy"
    for name in ("argilla", "argilla-elasticsearch", "argilla-redis", "llm-service", "ner-api",
                 "llm-local", "flower"):
        assert svcs[name]["healthcheck"]["test"], name


# (e) ------------------------------------------------------------------------------------------
def check_secrets(compose: Compose) -> tuple[list[str], set[str]]:
    problems, required = [], set()
    for name, op, arg in refs(compose):
        if SECRET.search(name):
            if op != ":?" or not arg.strip():
                problems.append(f"${{{name}{op}{arg}}}: a secret must be required with "
                                f"${{{name}:?message}}, never defaulted")
            else:
                required.add(name)
    for sname, svc in compose["services"].items():
        for key, value in environment(svc).items():
            if SECRET.search(key) and value is not None and not VAR.fullmatch(str(value)):
                problems.append(f"{sname}: {key} has a literal value")
    blob = "\n".join(strings(compose)).lower()
    problems += [f"{w!r} appears in the file" for w in ("change-me", "changeme", "12345678")
                 if w in blob]
    problems += [f".env.example gives {k} a value" for k, (v, _) in env_example().items()
                 if SECRET.search(k) and v.strip()]
    return problems, required


def test_no_secret_has_a_default() -> None:
    problems, required = check_secrets(load())
    assert problems == []
    assert {"REDIS_PASSWORD", "FLOWER_PASSWORD", "ARGILLA_PASSWORD",
            "TICKERTAG_ARGILLA_API_KEY"} <= required
    text = COMPOSE_FILE.read_text()  # comments included
    assert not re.search(r"\$\{\w*(PASSWORD|KEY|TOKEN|SECRET)\w*:?-", text)


def test_published_ports_are_loopback_only() -> None:
    ports = [(n, str(p)) for n, s in load()["services"].items() for p in s.get("ports", [])]
    assert len(ports) >= 3
    assert all(p.startswith("127.0.0.1:") for _, p in ports), ports


# (f) ------------------------------------------------------------------------------------------
def gpu_reserved(svc: dict) -> bool:
    devices = (((svc.get("deploy") or {}).get("resources") or {}).get("reservations")
               or {}).get("devices") or []
    return any("gpu" in (d.get("capabilities") or []) for d in devices)


def check_profiles(compose: Compose) -> tuple[list[str], set[str]]:
    svcs = compose["services"]
    problems, gated = [], set()
    for name, svc in svcs.items():
        image = str(svc.get("image", ""))
        if gpu_reserved(svc) or "text-generation-inference" in image:
            gated.add(name)
            if "gpu" not in profiles(svc):
                problems.append(f"{name} needs a GPU but is not behind the gpu profile")
    for name in BASE_SERVICES:
        if name not in svcs:
            problems.append(f"{name} is missing")
        elif profiles(svcs[name]):
            problems.append(f"{name} is part of the base pipeline but behind {profiles(svcs[name])}")
    return problems, gated


def test_gpu_stack_is_behind_its_profile_and_the_rest_is_the_default_up() -> None:
    compose = load()
    problems, gated = check_profiles(compose)
    assert problems == []
    assert {"llm-service", "train-worker-gpu"} <= gated
    svcs = compose["services"]
    assert {n for n, s in svcs.items() if profiles(s)} == set(GPU_SERVICES)
    assert all(profiles(svcs[n]) == {"gpu"} for n in GPU_SERVICES)
    assert not gpu_reserved(svcs["train-worker"]) and gpu_reserved(svcs["train-worker-gpu"])
    # Argilla's own stack, from the official images
    assert svcs["argilla"]["image"].startswith("argilla/argilla-server:")
    assert svcs["argilla-worker"]["image"] == svcs["argilla"]["image"]
    es = svcs["argilla-elasticsearch"]
    assert es["image"].startswith("docker.elastic.co/elasticsearch/elasticsearch:8.")
    env = environment(es)
    assert env["discovery.type"] == "single-node" and env["xpack.security.enabled"] == "false"
    assert "-Xmx" in env["ES_JAVA_OPTS"] and es["mem_limit"]
    assert svcs["argilla-redis"]["image"].startswith("redis:")
    assert environment(svcs["argilla"])["ARGILLA_REDIS_URL"].startswith("redis://argilla-redis:")
    assert environment(svcs["review-worker"])["TICKERTAG_ARGILLA_API_KEY"].startswith(
        "${TICKERTAG_ARGILLA_API_KEY:?")


# (g) ------------------------------------------------------------------------------------------
def worker_node(queue: str, hostname: str) -> str:
    """The Celery node name `tickertag worker QUEUE` gives itself on ``hostname``: the CLI's own
    ``-n`` pattern, expanded by Celery as the worker does."""
    from celery.utils.nodenames import default_nodename, host_format

    import tickertag.cli_annotate as cli_annotate

    argv: list[str] = []

    class App:
        def worker_main(self, args: list[str]) -> None:
            argv.extend(args)

    real = cli_annotate._app
    cli_annotate._app = App  # type: ignore[assignment]  # capture the argv, start nothing
    try:
        cli_annotate.worker(queue, concurrency=1, pool="solo", loglevel="INFO")
    finally:
        cli_annotate._app = real
    return host_format(default_nodename(argv[argv.index("-n") + 1]), host=hostname)


def worker_queue(svc: dict) -> str | None:
    argv = svc.get("command")
    return argv[1] if isinstance(argv, list) and argv[:1] == ["worker"] else None


def check_health(compose: Compose) -> list[str]:
    """Every long-running tickertag container has a healthcheck; a worker's pings its own node
    (`celery inspect ping -d celery@<its node>`), so `healthy` means it consumes its queue."""
    problems = []
    for name, svc in compose["services"].items():
        if not is_tickertag(svc) or svc.get("restart") == "no":
            continue
        test = (svc.get("healthcheck") or {}).get("test")
        if not test or (svc["healthcheck"].get("disable")):
            problems.append(f"{name} has no healthcheck")
            continue
        queue = worker_queue(svc)
        if queue is None:
            continue
        # Compose turns $$ into $; the container's shell then expands $HOSTNAME
        node = worker_node(queue, "$$HOSTNAME")
        cmd = " ".join(test[1:]) if test[0] in ("CMD", "CMD-SHELL") else ""
        if not re.search(rf"celery -A common\.celery_app inspect ping .*-d {re.escape(node)}$",
                         cmd) or test[0] != "CMD-SHELL":
            problems.append(f"{name}: healthcheck {test} does not ping {node} (CMD-SHELL)")
    return problems


def test_every_worker_and_flower_has_a_healthcheck() -> None:
    compose = load()
    assert check_health(compose) == []
    svcs = compose["services"]
    assert {worker_queue(s) for s in svcs.values()} - {None} == set(STAGES)
    assert "/healthcheck" in " ".join(svcs["flower"]["healthcheck"]["test"])
    assert worker_node("ner", "abc123") == "celery@ner-abc123-0"  # the node a worker answers as


# (h) ------------------------------------------------------------------------------------------
def check_default_up(compose: Compose) -> list[str]:
    """A plain `up` (no profile) is whole: each annotate worker waits, healthy, for the LLM its
    URL names, which runs whenever the worker does; the producer reads a source that is here (not
    the hub); ner-api starts after the one-shot trainer has put its model in place, and that
    trainer trains only when the model is missing."""
    svcs = compose["services"]
    problems = []
    for name, svc in svcs.items():
        if worker_queue(svc) != "annotate":
            continue
        host = urlsplit(interpolate(str(environment(svc).get("TICKERTAG_LLM_BASE_URL")))).hostname
        if host not in svcs:
            problems.append(f"{name}: its LLM {host} is no service of this file")
            continue
        if depends(svc).get(host, {}).get("condition") != "service_healthy":
            problems.append(f"{name} does not wait for its LLM {host} to be healthy")
        mine, theirs = profiles(svc), profiles(svcs[host])
        if theirs and not (mine and mine <= theirs):
            problems.append(f"{name} runs without its LLM {host} (profiles "
                            f"{sorted(profiles(svcs[host]))})")
    source = interpolate(str(svcs["producer"]["command"][1]))
    if source.startswith("hub:"):
        problems.append(f"producer: the default up streams {source} from the hub")
    api = svcs["ner-api"]
    model = interpolate(api["command"][api["command"].index("--model") + 1])
    trainers = [n for n, s in svcs.items() if not profiles(s) and isinstance(s.get("command"), list)
                and s["command"][:1] in (["train"], ["distil"]) and "--output" in s["command"]
                and s["command"][s["command"].index("--output") + 1] == model]
    if not trainers:
        problems.append(f"nothing in the default up writes {model}, which ner-api serves")
    for t in trainers:
        if depends(api).get(t, {}).get("condition") != "service_completed_successfully":
            problems.append(f"ner-api does not wait for {t} to complete")
        if "--if-missing" not in svcs[t]["command"] or svcs[t].get("restart") != "no":
            problems.append(f"{t} retrains at every start: a one-shot with --if-missing")
    return problems


def test_the_default_up_needs_no_profile() -> None:
    compose = load()
    assert check_default_up(compose) == []
    svcs = compose["services"]
    assert depends(svcs["ner-api"])["train"] == {"condition": "service_completed_successfully"}
    assert interpolate(svcs["producer"]["command"][1]) == "data/sample/benzinga_sample.csv"
    assert (ROOT / interpolate(svcs["producer"]["command"][1])).is_file()  # the image's copy
    assert svcs["llm-local"]["command"][:2] == ["llm", "serve"]


# (i) ------------------------------------------------------------------------------------------
def compose_cli() -> Path:
    """The Docker Compose CLI next to this Python (the venv's), else on PATH; Compose 2.20+,
    which knows `depends_on: ... required:`."""
    for cand in (Path(sys.executable).parent / "docker-compose",
                 Path(p) if (p := shutil.which("docker-compose")) else None):
        if cand is None or not cand.exists():
            continue
        out = subprocess.run([str(cand), "version", "--short"], capture_output=True, text=True)
        m = re.match(r"v?(\d+)\.(\d+)", out.stdout.strip())
        if out.returncode == 0 and m and (int(m[1]), int(m[2])) >= (2, 20):
            return cand
    raise AssertionError(f"no Docker Compose 2.20+ CLI here: {COMPOSE_CLI_HINT}")


def env_file(dir_: Path, drop: str = "") -> Path:
    """.env.example as a user fills it in: every empty secret given a value (``drop`` left out)."""
    f = dir_ / "env"
    f.write_text("".join(f"{k}={v or 'x' * 24}\n" for k, (v, _) in env_example().items()
                         if k != drop))
    return f


def compose_config(compose: Compose, *profile: str, drop: str = "") -> subprocess.CompletedProcess:
    """`docker-compose config -q` on ``compose`` as the repository's file, in an environment
    without the caller's variables (only .env.example's, filled in)."""
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "docker-compose.yml"
        f.write_text(yaml.safe_dump(compose, sort_keys=False))
        argv = [str(compose_cli()), "-f", str(f), "--project-directory", str(ROOT),
                "--env-file", str(env_file(Path(d), drop))]
        for p in profile:
            argv += ["--profile", p]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": d}
        return subprocess.run([*argv, "config", "-q"], capture_output=True, text=True, env=env,
                              timeout=60)


def check_compose_cli(compose: Compose) -> list[str]:
    """What the real Compose says of the file, plainly and with each profile."""
    problems = []
    for profile in ((), ("gpu",)):
        r = compose_config(compose, *profile)
        if r.returncode != 0:
            problems.append(f"docker-compose config {' '.join(profile)}: {r.stderr.strip()}")
    return problems


def test_docker_compose_accepts_the_file() -> None:
    assert check_compose_cli(load()) == []


def test_docker_compose_refuses_a_missing_secret() -> None:
    r = compose_config(load(), drop="REDIS_PASSWORD")
    assert r.returncode != 0 and "set REDIS_PASSWORD in .env" in r.stderr, r.stderr


def test_docker_compose_enables_the_gpu_stack_only_with_its_profile() -> None:
    def services(*profile: str) -> set[str]:
        with tempfile.TemporaryDirectory() as d:
            argv = [str(compose_cli()), "-f", str(COMPOSE_FILE), "--env-file",
                    str(env_file(Path(d)))]
            for p in profile:
                argv += ["--profile", p]
            out = subprocess.run([*argv, "config", "--services"], capture_output=True, text=True,
                                 check=True, env={"PATH": os.environ.get("PATH", ""), "HOME": d})
        return set(out.stdout.split())

    plain = services()
    assert plain == set(BASE_SERVICES)
    assert services("gpu") == plain | set(GPU_SERVICES)


# Each check can fail ----------------------------------------------------------------------------
def _set_command(svc: str, argv: list[str]) -> Callable[[Compose], None]:
    return lambda c: c["services"][svc].__setitem__("command", argv)


def _first(result: Any) -> list[str]:
    return result[0] if isinstance(result, tuple) else result


BREAKS: list[tuple[str, Callable[[Compose], None], Callable[[Compose], Any], str]] = [
    ("unknown option", _set_command("ner-api", ["serve", "--model", "/models/x", "--hots", "a"]),
     check_commands, "--hots"),
    ("unknown verb", _set_command("producer", ["producee", "x"]), check_commands, "producee"),
    ("bad choice", _set_command("train", ["train", "spacey", "--output", "/models/x"]),
     check_commands, "spacey"),
    ("unknown queue", _set_command("curate-worker", ["worker", "curat"]), check_commands, "curat"),
    ("client path", _set_command("train", ["train", "spacy", "--output", "/home/me/models/x"]),
     check_commands, "/home/me"),
    ("unlisted variable",
     lambda c: c["services"]["producer"].__setitem__("environment", {"X_NEW": "${X_NEW:-1}"}),
     check_env_example, "X_NEW"),
    ("undeclared volume", lambda c: c["volumes"].pop("models"), check_volumes, "models"),
    ("bind mount", lambda c: c["services"]["train"]["volumes"].append("./data:/app/data:ro"),
     check_volumes, "bind mount"),
    ("missing dependency",
     lambda c: c["services"]["flower"].__setitem__("depends_on", {"redis": {}, "nope": {}}),
     check_depends_on, "nope"),
    ("no redis healthcheck", lambda c: c["services"]["redis"].pop("healthcheck"),
     check_depends_on, "redis has no healthcheck"),
    ("optional dependency made required",
     lambda c: c["services"]["producer"]["depends_on"]["annotate-worker-gpu"].pop("required"),
     check_depends_on, "annotate-worker-gpu"),
    ("defaulted password",
     lambda c: c["services"]["flower"].__setitem__(
         "entrypoint", ["celery", "-A", "common.celery_app", "flower",
                        "--basic-auth=admin:${FLOWER_PASSWORD:-admin}"]),
     check_secrets, "FLOWER_PASSWORD"),
    ("literal password",
     lambda c: c["services"]["argilla"]["environment"].__setitem__("PASSWORD", "12345678"),
     check_secrets, "PASSWORD"),
    ("argilla behind a profile",
     lambda c: c["services"]["argilla-elasticsearch"].__setitem__("profiles", ["review"]),
     check_profiles, "argilla-elasticsearch"),
    ("gpu without profile", lambda c: c["services"]["train-worker-gpu"].pop("profiles"),
     check_profiles, "train-worker-gpu"),
    ("worker without healthcheck", lambda c: c["services"]["curate-worker"].pop("healthcheck"),
     check_health, "curate-worker has no healthcheck"),
    ("flower without healthcheck", lambda c: c["services"]["flower"].pop("healthcheck"),
     check_health, "flower has no healthcheck"),
    ("worker pings another node",
     lambda c: c["services"]["ner-worker"]["healthcheck"].__setitem__(
         "test", ["CMD-SHELL", "celery -A common.celery_app inspect ping -d celery@$$HOSTNAME"]),
     check_health, "ner-worker"),
    ("annotate worker does not wait for its LLM",
     lambda c: c["services"]["annotate-worker"]["depends_on"].pop("llm-local"),
     check_default_up, "llm-local"),
    ("default LLM only under a profile",
     lambda c: c["services"]["llm-local"].__setitem__("profiles", ["cpu"]),
     check_default_up, "runs without its LLM llm-local"),
    ("hub source by default", _set_command("producer", ["produce", "hub:Zihan1004/FNSPID"]),
     check_default_up, "hub:Zihan1004/FNSPID"),
    ("ner-api does not wait for its model",
     lambda c: c["services"]["ner-api"]["depends_on"].pop("train"),
     check_default_up, "ner-api does not wait for train"),
    ("trainer behind a profile", lambda c: c["services"]["train"].__setitem__("profiles", ["x"]),
     check_default_up, "nothing in the default up writes /models/spacy"),
    ("trainer retrains", lambda c: c["services"]["train"]["command"].remove("--if-missing"),
     check_default_up, "retrains"),
    ("compose: bad condition",
     lambda c: c["services"]["ner-api"]["depends_on"]["train"].__setitem__(
         "condition", "service_completed"),
     check_compose_cli, "condition"),
    ("compose: unknown healthcheck key",
     lambda c: c["services"]["flower"]["healthcheck"].__setitem__("intervall", "5s"),
     check_compose_cli, "intervall"),
    ("compose: depends on a service of a disabled profile",
     lambda c: c["services"]["producer"]["depends_on"]["annotate-worker-gpu"].pop("required"),
     check_compose_cli, "annotate-worker-gpu"),
]


@pytest.mark.parametrize(("what", "breaks", "check", "expect"), BREAKS,
                         ids=[b[0] for b in BREAKS])
def test_each_check_catches_a_broken_file(what, breaks, check, expect) -> None:
    compose = load()
    assert _first(check(compose)) == []  # the real file passes ...
    broken = copy.deepcopy(compose)
    breaks(broken)
    found = _first(check(broken))
    assert any(expect in p for p in found), (what, found)  # ... and this breakage does not
