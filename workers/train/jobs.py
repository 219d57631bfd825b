"""The ``train`` queue: long training jobs on GPU (or CPU) hosts.

Start one job per worker: ``celery -A common.celery_app worker -Q train -c 1`` (prefetch is 1
app-wide, so an idle host does not hold a second job it cannot start).

A training job outlives the broker's visibility timeout. With the app's default late acks, the
unacked message would be redelivered while the job still runs, and again after each timeout: a
loop. So this task acknowledges on receipt (``acks_late=False``) and keeps its own state in
Redis instead:

- ``tt:train:<run_id>:lock``: one holder per run id, whichever host picks it up; a heartbeat
  thread renews it while the job runs, so a dead host frees the run within the lock TTL
  (``TICKERTAG_TRAIN_LOCK_TTL_S``, 120 s).
- ``tt:train:<run_id>``: a hash with status (started / training / done / failed), epoch,
  valid F1, host and timestamps (JSON values), for ``tickertag status`` and for resubmissions,
  which skip a run that is running or done.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from typing import Any

import redis

from common import redis_keys
from common.settings import get_settings
from training.config import TrainConfig

# Delete the lock only if we still hold it (it may have expired and been taken by another host).
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def lock_ttl_s() -> float:
    """How long a lock outlives its last heartbeat (``TICKERTAG_TRAIN_LOCK_TTL_S``)."""
    return get_settings().train_lock_ttl_s


def progress_key(run_id: str) -> str:
    return redis_keys.train_run(run_id)


RUNNING = ("started", "training")


def read_progress(client: redis.Redis, run_id: str, now: float | None = None) -> dict[str, Any]:
    """The run's progress hash, JSON-decoded (empty when the run is unknown).

    A run still marked running whose heartbeat is older than the lock TTL (its host died:
    a SIGKILL, an OOM kill, a lost machine) is reported as ``dead``, with ``heartbeat_age_s``;
    resubmitting it starts it again, resuming from its last epoch checkpoint."""
    p = {k: json.loads(v) for k, v in client.hgetall(progress_key(run_id)).items()}
    if p.get("status") in RUNNING:
        beat = p.get("heartbeat_at") or p.get("updated_at") or p.get("started_at") or 0
        age = (now or time.time()) - float(beat)
        p["heartbeat_age_s"] = round(age, 1)
        if age > lock_ttl_s() and not client.exists(f"{progress_key(run_id)}:lock"):
            p["status"] = "dead"
    return p


def list_progress(client: redis.Redis, limit: int = 10) -> list[dict[str, Any]]:
    """The most recently updated training runs (newest first), each with its ``run_id``: what
    ``tickertag status`` shows next to the annotation run."""
    runs = []
    for key in client.scan_iter(match=progress_key("*"), count=500):
        if key.endswith(":lock"):
            continue
        run_id = key[len(progress_key("")):]
        runs.append({"run_id": run_id, **read_progress(client, run_id)})
    runs.sort(key=lambda p: p.get("updated_at") or 0, reverse=True)
    return runs[:limit]


def _heartbeat(client: redis.Redis, lock_key: str, token: str, stop: threading.Event,
               key: str, heartbeat_s: float | None = None) -> None:
    """Renew the lock and stamp ``heartbeat_at`` every quarter of the lock TTL (``heartbeat_s``
    overrides it). A Redis error is waited out, not fatal: a thread that died on one blip let
    the lock lapse while training went on, and a resubmission then started a second copy."""
    ttl = lock_ttl_s()
    while not stop.wait(heartbeat_s or ttl / 4):
        try:
            if client.get(lock_key) == token:
                client.expire(lock_key, int(max(ttl, 1)))
            client.hset(key, "heartbeat_at", json.dumps(time.time()))
        except redis.RedisError:
            continue


def train_job(run_id: str, config: dict[str, Any], client: redis.Redis,
              force: bool = False) -> dict[str, Any]:
    """Run one training job under a per-run lock, recording progress in Redis.

    ``client`` must decode responses. A run already marked done is skipped unless ``force``.
    """
    key, lock_key = progress_key(run_id), f"{progress_key(run_id)}:lock"
    cfg = TrainConfig.from_job(config)  # validate (and resolve shared paths) before the lock
    before = read_progress(client, run_id)
    if not force and before.get("status") == "done":
        return {"run_id": run_id, "skipped": "already done"}
    if before.get("status") in ("dead", "failed") and cfg.kind != "spacy":
        from pathlib import Path

        from training.selection import last_checkpoint

        if last_checkpoint(Path(cfg.output or "")):  # pick up where the dead host stopped
            cfg = cfg.model_copy(update={"resume": True})
    token = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
    if not client.set(lock_key, token, nx=True, ex=int(max(lock_ttl_s(), 1))):
        return {"run_id": run_id, "skipped": f"already running on {client.get(lock_key)}"}

    def report(p: dict[str, Any]) -> None:
        """Progress is for people: a Redis blip loses an update, never the training."""
        now = time.time()
        try:
            client.hset(key, mapping={k: json.dumps(v) for k, v in
                                      {**p, "updated_at": now, "heartbeat_at": now}.items()})
        except redis.RedisError:
            pass

    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(client, lock_key, token, stop, key),
                            daemon=True)
    beat.start()
    try:
        report({"status": "started", "host": socket.gethostname(), "started_at": time.time(),
                "kind": cfg.kind, "output": cfg.output, "error": None, "resumed": cfg.resume})
        from training.runner import run_training

        manifest = run_training(cfg, report)
        result = {"run_id": run_id, "output": cfg.output, "valid_f1": manifest.get("valid_f1"),
                  "threshold": manifest.get("threshold")}
        report({"status": "done", **result})
        return result
    except Exception as e:
        report({"status": "failed", "error": f"{type(e).__name__}: {e}"[:2000]})
        raise
    finally:
        stop.set()
        client.eval(_RELEASE, 1, lock_key, token)
