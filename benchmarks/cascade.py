"""The cascade on the full pool, measured: rounds run through the real queues, the replay
endpoint (recorded strong-LLM answers) and a real Argilla server answered by the scripted
reviewer; then every system is scored on test, test2 and both (608 headlines) with 95% CIs and
the paired bootstrap against the default ``distil`` student. Nothing here selects on a test file:
epochs are chosen on valid inside training; test is only scored.

Usage:
  python benchmarks/cascade.py --teacher models/teacher-onnx --teacher models/teacher-s7-onnx \\
      --baseline models/student [--rounds 1] [--budget N] [--max-share 0.10] [--no-run]

Writes ``benchmarks/cascade.json`` (dated, keyed by commit) and prints two tables: what each round
escalated and cost, and F1 per system.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.recorded import commit, today  # noqa: E402
from cascade.loop import CascadePlan, run_cascade  # noqa: E402
from cascade.replay import RECORDING, REVIEWED  # noqa: E402
from common.paths import LABELED_DIR  # noqa: E402
from common.settings import get_settings  # noqa: E402
from tickertag.cli_cascade import rounds_table  # noqa: E402
from training.data import read_jsonl, write_jsonl  # noqa: E402

TESTS = [LABELED_DIR / "benzinga_gold_test.jsonl", LABELED_DIR / "benzinga_gold_test2.jsonl"]
LOGS = ROOT / "var" / "bench-logs"
console = Console()


def local_argilla():
    """A local Argilla server as ``tickertag review serve`` starts one; its settings go to the
    environment so the cascade's push/pull and the scripted reviewer find it."""
    import os

    from common.services import free_port
    from workers.review.argilla_settings import ArgillaSettings
    from workers.review.server import start_server

    key = secrets.token_urlsafe(24)
    # a home of its own per start: a server keeps its owner's key in its database, so a second
    # run on an earlier run's home was refused with the new key
    home = ROOT / "var" / "bench-argilla" / secrets.token_hex(4)
    s = ArgillaSettings(api_key=key, port=free_port(), home=home)
    s.url = f"http://{s.host}:{s.port}"
    proc = start_server(s, LOGS / "argilla.log", key, secrets.token_urlsafe(12))
    os.environ["TICKERTAG_ARGILLA_URL"], os.environ["TICKERTAG_ARGILLA_API_KEY"] = s.url, key
    return proc


def predictions(model: str, out_dir: Path) -> Path:
    """``tickertag predict`` on test + test2 (cached per model directory)."""
    from training.inference import load_tagger
    from workers.ner.predict_file import predict_file

    out = out_dir / f"{Path(model).resolve().as_posix().strip('/').replace('/', '_')}.jsonl"
    if not out.exists():
        src = out_dir / "test+test2.jsonl"
        write_jsonl(src, [r for t in TESTS for r in read_jsonl(t)])
        predict_file(load_tagger(model), src, out)
    return out


def score_systems(systems: dict[str, str], baseline: str | None, out_dir: Path) -> list[dict]:
    from training.evaluate import evaluate_sets
    from training.inference import read_manifest

    against = predictions(baseline, out_dir) if baseline else None
    rows = []
    for name, model in systems.items():
        sets = evaluate_sets(TESTS, predictions(model, out_dir), 1000,
                             against if model != baseline else None)
        rows.append({"system": name, "model": model,
                     "valid_f1": read_manifest(Path(model)).get("valid_f1"),
                     **{s["gold"]: {k: v for k, v in s.items() if k != "score"} for s in sets}})
    return rows


def f1_table(rows: list[dict]) -> Table:
    t = Table(title="F1 on test, test2 and both (608 headlines), 95% CI; Δ paired vs baseline")
    for c in ("system", "valid F1", "test", "test2", "test+test2 [95% CI]", "Δ vs baseline [95% CI]"):
        t.add_column(c, justify="right")
    for r in rows:
        u = r["benzinga_gold_test+benzinga_gold_test2"]
        lo, hi = u["f1_ci95"]
        d = u.get("paired")
        t.add_row(r["system"], "" if r["valid_f1"] is None else f"{r['valid_f1']:.4f}",
                  f"{r['benzinga_gold_test.jsonl']['f1']:.4f}",
                  f"{r['benzinga_gold_test2.jsonl']['f1']:.4f}",
                  f"{u['f1']:.4f} [{lo:.3f}, {hi:.3f}]",
                  "" if not d else f"{d['delta'] * 100:+.1f} [{d['delta_ci95'][0] * 100:+.1f}, "
                  f"{d['delta_ci95'][1] * 100:+.1f}]")
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--teacher", action="append", required=True)
    ap.add_argument("--baseline", help="the default student to compare against")
    ap.add_argument("--baseline-name", default="distil student (baseline)",
                    help="its row's name (keep 'baseline' in it)")
    ap.add_argument("--work", default=str(ROOT / "var" / "cascade" / "bench"))
    ap.add_argument("--output", default=str(ROOT / "models" / "cascade-student"))
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--round", dest="first_round", type=int, default=1)
    ap.add_argument("--budget", type=int)
    ap.add_argument("--max-share", type=float, default=0.10)
    ap.add_argument("--round-teacher", action="append",
                    help="with --round > 1: that round's teachers (e.g. ONNX exports of the "
                         "retrained ones; default: the round's teachers.json)")
    ap.add_argument("--teacher-jobs", type=int, default=1,
                    help="teachers retrained at once (each in its own process)")
    ap.add_argument("--step", action="append", help="cascade steps to run (default: all)")
    ap.add_argument("--no-run", action="store_true", help="only score what the rounds left")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "cascade.json"))
    a = ap.parse_args()

    # a later first round takes --round-teacher, else the teachers the round before retrained
    # (teachers.json); --teacher still names round one's, scored as systems
    first = a.teacher if a.first_round == 1 else (a.round_teacher or [])
    plan = CascadePlan(teachers=first, output=a.output,
                       work=a.work, rounds=a.rounds,
                       first_round=a.first_round, budget=a.budget, max_share=a.max_share,
                       replay=str(RECORDING), review_from=str(REVIEWED),
                       teacher_jobs=a.teacher_jobs)
    argilla = None
    if not a.no_run:
        import os

        if not os.environ.get("TICKERTAG_ARGILLA_URL"):
            argilla = local_argilla()
        try:
            run_cascade(plan, get_settings(), tuple(a.step) if a.step else
                        ("tag", "llm", "people", "student"), say=console.print)
        finally:
            if argilla:
                argilla.stop()
    reports = []
    for r in range(1, a.first_round + a.rounds):
        p = plan.round_dir(r) / "report.json"
        if p.exists():
            reports.append(json.loads(p.read_text()))
    systems = {f"teacher {k + 1}": t for k, t in enumerate(a.teacher)}
    if a.baseline:
        systems[a.baseline_name] = a.baseline
    for rep in reports:
        for k, t in enumerate(rep["teachers"]):
            if t not in systems.values():
                systems[f"round {rep['round']} teacher {k + 1}"] = t
        student = rep.get("student", {}).get("dir")
        if student and not (a.baseline and Path(student).resolve() == Path(a.baseline).resolve()):
            systems[f"cascade student, round {rep['round']}"] = student
    rows = score_systems(systems, a.baseline, Path(a.work) / "predictions")
    console.print(rounds_table(reports))
    console.print(f1_table(rows))
    Path(a.json).write_text(json.dumps({"date": today(), "commit": commit(),
                                        "rounds": reports, "systems": rows}, indent=1,
                                       default=str))
    console.print(f"written {a.json}")


if __name__ == "__main__":
    main()
