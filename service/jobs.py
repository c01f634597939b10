"""Background index rebuilds: one worker thread, one job at a time, the old index served until the new one
is loaded and swapped in."""

from __future__ import annotations

import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from indexer.errors import JobConflict, SaeSearchError, UnknownJob

log = logging.getLogger(__name__)

JobFn = Callable[[Callable[[str], None]], None]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Job:
    job_id: str
    state: str = "queued"
    stage: str | None = None
    error: str | None = None
    created_at: str = ""
    finished_at: str | None = None


class JobRunner:
    """Runs one job at a time in a daemon thread; a second submit while one is active raises JobConflict."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._active: str | None = None
        self._thread: threading.Thread | None = None

    def check_idle(self) -> None:
        """JobConflict while a job is queued or running: a request checks this before any work of its own."""
        with self._lock:
            self._check_idle()

    def _check_idle(self) -> None:
        if self._active is not None:
            raise JobConflict(f"rebuild {self._active} is still {self._jobs[self._active].state}; wait for it to finish")

    def submit(self, fn: JobFn) -> Job:
        with self._lock:
            self._check_idle()
            job = Job(job_id=uuid.uuid4().hex[:12], created_at=_now())
            self._jobs[job.job_id] = job
            self._active = job.job_id
        self._thread = threading.Thread(target=self._run, args=(job, fn), name=f"job-{job.job_id}", daemon=True)
        try:
            self._thread.start()
        except BaseException as exc:  # no thread to be had: no job runs, and the next request may try again
            with self._lock:
                job.finished_at, job.error, self._active, job.state = _now(), f"not started: {exc}", None, "failed"
            raise
        return job

    def _run(self, job: Job, fn: JobFn) -> None:
        def on_stage(stage: str) -> None:
            job.stage = stage

        job.state = "running"
        log.info("job started job_id=%s", job.job_id)
        state, error = "failed", "interrupted"
        try:
            fn(on_stage)
            state, error = "succeeded", None
        except SaeSearchError as exc:
            error = str(exc)
        except Exception as exc:  # a bug must not kill the worker or leak a traceback to clients
            error = f"internal error: {type(exc).__name__}: {exc}"
            log.error("job crashed job_id=%s\n%s", job.job_id, traceback.format_exc())
        finally:
            finished = _now()
            # All at once, the state last: a client that sees the job done may submit the next one at once.
            with self._lock:
                job.finished_at, job.error, self._active, job.state = finished, error, None, state
            log.log(logging.INFO if error is None else logging.WARNING, "job finished job_id=%s state=%s error=%s",
                    job.job_id, job.state, job.error)

    def get(self, job_id: str) -> Job:
        """A copy of the job as it stands (never half updated)."""
        with self._lock:
            try:
                return replace(self._jobs[job_id])
            except KeyError:
                # Only a prefix is echoed: an id is 12 characters, and a path may be thousands.
                raise UnknownJob(
                    f"no job with id {job_id[:40]!r}{'...' if len(job_id) > 40 else ''} (jobs live in the server's "
                    "memory: a restarted server knows none of the jobs before it)"
                ) from None

    def active(self) -> Job | None:
        """A copy of the job still queued or running, if any."""
        with self._lock:
            return replace(self._jobs[self._active]) if self._active is not None else None

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running job (used at shutdown and in tests)."""
        if self._thread is not None:
            self._thread.join(timeout)
