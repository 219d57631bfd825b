"""Weak supervision vs reviewed labels: GLiNER trained on N headlines, labelled by people
(``benzinga_gold_train``) or by an LLM (``benzinga_llm_train`` by default: one strong-LLM pass
over the same headlines; or any annotation-run export), several seeds, scored on one test set.
The case study's figure: human labels stay above LLM labels at every size."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from common.metrics import score
from common.paths import LABELED_DIR
from common.progress import Tick, no_tick
from training.config import TrainConfig
from training.data import read_jsonl, spans_of, subset, write_jsonl
from training.encoders import device
from training.inference import load_tagger


def paired_sets(gold_path: str, llm_path: str) -> tuple[list[dict], list[dict]]:
    """The headlines both files have, with the two kinds of labels, in gold order.

    Matched by id where the ids agree, else by text: an annotation export ids headlines by a
    hash of the text, and may cover only part of the gold file (e.g. the first N headlines
    labelled by the local LLM)."""
    gold, llm_rows = read_jsonl(gold_path), read_jsonl(llm_path)
    by_id = {r["id"]: r for r in llm_rows if r.get("id")}
    by_text = {r["text"]: r for r in llm_rows}
    pairs = [(g, by_id.get(g.get("id")) or by_text.get(g["text"])) for g in gold]
    pairs = [(g, ll) for g, ll in pairs if ll is not None]
    return [g for g, _ in pairs], [ll for _, ll in pairs]


def run_curve(sizes: list[int], seeds: list[int], out_dir: str, epochs: int = 6,
              torch_threads: int | None = None,
              gold_path: str = str(LABELED_DIR / "benzinga_gold_train.jsonl"),
              llm_path: str = str(LABELED_DIR / "benzinga_llm_train.jsonl"),
              valid: str = str(LABELED_DIR / "benzinga_gold_valid.jsonl"),
              test: str = str(LABELED_DIR / "benzinga_gold_test.jsonl"),
              progress: Tick | None = None
              ) -> list[dict[str, Any]]:
    """``progress("runs", done, total)`` after each run (one per seed, size and label source;
    runs already in the log count as done)."""
    from training.runner import run_training

    gold, llm = paired_sets(gold_path, llm_path)
    test_rows = read_jsonl(test)
    out = Path(out_dir)
    log = out / "learning_curve.json"
    # Resumable: a run already in the log (same source, size, seed) is not trained again, so an
    # interrupted curve (hours on a CPU) picks up where it stopped.
    results: list[dict[str, Any]] = json.loads(log.read_text()) if log.exists() else []
    done = {(r["source"], r["n"], r["seed"]) for r in results}
    tick = progress or no_tick
    total, n_done = 2 * len(seeds) * len(sizes), 0
    tick("runs", 0, total)
    # Seed-major: every size gets its first seed before any size gets a second, so a curve cut
    # short still spans all sizes (the spread fills in afterwards).
    for seed in seeds:
        for n in sizes:
            # the same headlines on both sides (the same indices as sampling the gold list)
            idx = subset(list(range(len(gold))), n, seed)
            g_sub, l_sub = [gold[i] for i in idx], [llm[i] for i in idx]
            for source, rows in (("reviewed", g_sub), ("llm", l_sub)):
                if (source, len(rows), seed) in done:
                    n_done += 1
                    tick("runs", n_done, total)
                    continue
                d = out / f"{source}-n{len(rows)}-s{seed}"
                write_jsonl(d / "train.jsonl", rows)
                cfg = TrainConfig(kind="gliner", train=[str(d / "train.jsonl")], valid=valid,
                                  output=str(d / "model"), epochs=epochs, seed=seed,
                                  torch_threads=torch_threads, save_checkpoints=False)
                m = run_training(cfg)
                pred = load_tagger(d / "model").predict([r["text"] for r in test_rows])
                f1 = score([spans_of(r) for r in test_rows], pred).f1
                results.append({"source": source, "n": len(rows), "seed": seed, "test_f1": f1,
                                "valid_f1": m.get("valid_f1"), "seconds": m["train_seconds"],
                                "device": device()})
                log.write_text(json.dumps(results, indent=2))
                print(f"[tickertag] curve {source} n={len(rows)} seed={seed} test F1 {f1:.4f}",
                      file=sys.stderr, flush=True)  # stdout: --json's
                n_done += 1
                tick("runs", n_done, total)
    return results


def summarise(results: list[dict]) -> list[dict]:
    """Mean and spread per (labels, size), and where the runs trained: a curve may pool runs
    from a CPU host and a GPU host (same recipe; GPU kernels are not bit-identical)."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in results:
        groups.setdefault((r["source"], r["n"]), []).append(r)
    out = []
    for (s, n), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        f1 = [r["test_f1"] for r in runs]
        devices = sorted({r.get("device", "cpu") for r in runs})
        out.append({"source": s, "n": n, "mean": statistics.mean(f1),
                    "std": statistics.stdev(f1) if len(f1) > 1 else 0.0, "runs": len(f1),
                    "devices": ",".join(devices)})
    return out
