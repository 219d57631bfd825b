"""docker-compose.yml is the whole pipeline as a user deploys it. Docker is not available to the
tests, so the file is parsed and checked here: commands the CLI really has, every variable in
.env.example, declared volumes and networks, health-gated dependencies, no default secrets, and
optional stacks behind profiles.

Each check returns the problems it finds; ``test_each_check_catches_a_broken_file`` breaks a copy
of the file in one way per check and asserts that the check reports it."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
BASE_SERVICES = ("redis", "producer", "annotate-worker", "curate-worker", "ner-worker",
                 "train-worker", "flower", "ner-api")
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
    # annotation waits for the LLM where it runs here; elsewhere the dependency is skipped
    llm = depends(svcs["annotate-worker"])["llm-service"]
    assert llm == {"condition": "service_healthy", "required": False}
    assert "/health" in " ".join(svcs["llm-service"]["healthcheck"]["test"])
    assert depends(svcs["review-worker"])["argilla"]["condition"] == "service_healthy"
    for name in ("argilla", "argilla-elasticsearch", "argilla-redis", "llm-service", "ner-api"):
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
        if name in ARGILLA_STACK or image.startswith(("argilla/", "docker.elastic.co/")):
            gated.add(name)
            if "review" not in profiles(svc):
                problems.append(f"{name} (Argilla's stack) is not behind the review profile")
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


def test_optional_stacks_are_behind_profiles() -> None:
    compose = load()
    problems, gated = check_profiles(compose)
    assert problems == []
    assert set(ARGILLA_STACK) | {"llm-service", "train-worker-gpu"} <= gated
    svcs = compose["services"]
    assert profiles(svcs["review-worker"]) == {"review"} and profiles(svcs["train"]) == {"train"}
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
     lambda c: c["services"]["annotate-worker"]["depends_on"]["llm-service"].pop("required"),
     check_depends_on, "llm-service"),
    ("defaulted password",
     lambda c: c["services"]["flower"].__setitem__(
         "entrypoint", ["celery", "-A", "common.celery_app", "flower",
                        "--basic-auth=admin:${FLOWER_PASSWORD:-admin}"]),
     check_secrets, "FLOWER_PASSWORD"),
    ("literal password",
     lambda c: c["services"]["argilla"]["environment"].__setitem__("PASSWORD", "12345678"),
     check_secrets, "PASSWORD"),
    ("argilla without profile", lambda c: c["services"]["argilla-elasticsearch"].pop("profiles"),
     check_profiles, "argilla-elasticsearch"),
    ("gpu without profile", lambda c: c["services"]["train-worker-gpu"].pop("profiles"),
     check_profiles, "train-worker-gpu"),
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
