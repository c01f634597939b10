import threading
import time

import pytest

import service.jobs as jobs
from indexer.errors import EmptyCorpus, JobConflict, UnknownJob
from service.jobs import JobRunner


def run(runner: JobRunner, fn) -> jobs.Job:
    job = runner.submit(fn)
    runner.join(10)
    return runner.get(job.job_id)


def test_a_job_reports_its_stages_and_outcome():
    runner, stages, go = JobRunner(), [], threading.Event()

    def build(on_stage):
        go.wait(10)
        for s in ("embed", "train"):
            on_stage(s)
            stages.append(runner.get(job.job_id).stage)

    job = runner.submit(build)
    go.set()
    runner.join(10)
    done = runner.get(job.job_id)
    assert stages == ["embed", "train"] and done.state == "succeeded" and done.error is None and done.finished_at

    def empty(on_stage):
        raise EmptyCorpus("no usable rows")

    def bug(on_stage):
        raise ZeroDivisionError("oops")

    assert (run(runner, empty).state, run(runner, empty).error) == ("failed", "no usable rows")
    assert run(runner, bug).error == "internal error: ZeroDivisionError: oops"
    with pytest.raises(UnknownJob, match="a restarted server knows none"):
        runner.get("nope")
    with pytest.raises(UnknownJob) as info:
        runner.get("x" * 20_000)
    assert len(str(info.value)) < 200  # the id is echoed only in part


def test_one_job_at_a_time():
    runner, release = JobRunner(), threading.Event()
    assert runner.active() is None
    first = runner.submit(lambda on_stage: release.wait(10))
    with pytest.raises(JobConflict, match=first.job_id):
        runner.submit(lambda on_stage: None)
    assert runner.active().job_id == first.job_id  # what a shutdown would abandon, and logs
    release.set()
    runner.join(10)
    assert runner.active() is None
    assert run(runner, lambda on_stage: None).state == "succeeded"


def test_a_job_seen_done_is_done(monkeypatch):
    # Finishing takes a moment (a slow clock here). A client that sees the job done must see when it finished, and
    # may submit the next job at once: the state was published before the rest and the next submit got a 409.
    real_now = jobs._now

    def slow_now():
        time.sleep(0.2)
        return real_now()

    runner = JobRunner()
    job = runner.submit(lambda on_stage: monkeypatch.setattr(jobs, "_now", slow_now))
    deadline = time.monotonic() + 10
    while (seen := runner.get(job.job_id)).state in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.005)
    assert seen.state == "succeeded" and seen.finished_at is not None
    runner.submit(lambda on_stage: None)
    runner.join(10)


def test_a_job_whose_thread_cannot_start_leaves_the_runner_free(monkeypatch):
    runner = JobRunner()

    def no_thread(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    with pytest.raises(RuntimeError):
        runner.submit(lambda on_stage: None)
    assert runner.active() is None
    monkeypatch.undo()
    assert run(runner, lambda on_stage: None).state == "succeeded"
