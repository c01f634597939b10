"""indexer.train_pace: the wall-clock budget and the CPU thread tuner."""

from __future__ import annotations

import time

import torch

from indexer.train import lr_factor
from indexer.train_pace import Clock, ThreadTuner


def test_budget_schedule_decays_learning_rate_to_zero_by_the_deadline() -> None:
    clock = Clock(budget=10.0, start=time.perf_counter())
    assert clock.progress(0, 1000) < 0.05
    clock.deadline = time.perf_counter()  # the budget is spent
    assert clock.progress(0, 1000) == 1.0 and not clock.fits_step()
    assert lr_factor(1.0, 0.02) == 0.0


def test_thread_tuner_picks_the_faster_option_and_reprobes_on_slowdown() -> None:
    before = torch.get_num_threads()
    tuner = ThreadTuner(None, torch.device("cpu"))
    tuner.options = [2, 1]  # as on a 2-core machine
    cost = {2: 0.05, 1: 0.01}
    for _ in range(2 * tuner.PROBE):
        t = tuner.before_step()
        tuner.after_step(t, cost[t])
    assert tuner.choice == 1 and not tuner.queue
    for _ in range(tuner.recent.maxlen):
        tuner.after_step(tuner.before_step(), 0.05)  # one thread got slow
    tuner.before_step()
    assert tuner.queue, "a slowdown triggers a new probe"
    tuner.restore()
    assert torch.get_num_threads() == before
