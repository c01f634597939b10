"""Pacing a training run on a shared machine: how many CPU threads each step uses (`ThreadTuner`), whether
one more step fits the wall-clock budget (`Clock`) and whether bfloat16 matmuls are fast here (`bf16_is_fast`).
Used by indexer/train.py."""

from __future__ import annotations

import math
import time
from collections import deque

import numpy as np
import torch

from indexer.query_encoder import native_bf16


class ThreadTuner:
    """Chooses torch's CPU thread count from step timings. When another process holds a core, every
    OpenMP region waits for the descheduled thread: on a busy 2-core VM an epoch took 2.4-6x longer with
    2 threads than with 1 (the smaller the batch, the worse); on an idle one 2 threads win. Re-checked
    every 30 s and whenever steps slow down by half; results are bit-identical either way."""

    PROBE = 4  # timed steps per option; the first after a switch is dropped (thread-pool wake-up)
    REPROBE_S = 30.0

    def __init__(self, threads: int | None, device: torch.device) -> None:
        self.original = torch.get_num_threads()
        fixed = threads is not None or device.type != "cpu" or self.original == 1
        self.options = [threads or self.original] if fixed else [self.original, 1]
        self.choice = self.options[0]
        self.queue: list[int] = []
        self.times: dict[int, list[float]] = {}
        self.recent: deque[float] = deque(maxlen=16)
        self.baseline, self.next_probe = math.inf, 0.0

    def before_step(self) -> int:
        slowed = len(self.recent) == self.recent.maxlen and np.median(self.recent) > 1.5 * self.baseline
        if len(self.options) > 1 and not self.queue and (time.perf_counter() > self.next_probe or slowed):
            self.queue = [t for t in self.options for _ in range(self.PROBE)]
            self.times = {}
        threads = self.queue[0] if self.queue else self.choice
        torch.set_num_threads(threads)
        return threads

    def after_step(self, threads: int, seconds: float) -> None:
        if not self.queue:
            self.recent.append(seconds)
            return
        self.queue.pop(0)
        self.times.setdefault(threads, []).append(seconds)
        if not self.queue:
            medians = {t: float(np.median(v[1:])) for t, v in self.times.items()}
            self.choice = min(medians, key=medians.__getitem__)
            self.baseline, self.next_probe = medians[self.choice], time.perf_counter() + self.REPROBE_S
            self.recent.clear()

    def restore(self) -> None:
        torch.set_num_threads(self.original)


class Clock:
    """Wall-clock budget: predicts whether one more step fits and how far the schedule has run."""

    def __init__(self, budget: float | None, start: float) -> None:
        self.deadline = None if budget is None else start + budget
        # Kept for the final evaluation and export; raised once an evaluation has been timed.
        self.reserve = 0.0 if budget is None else min(1.0, 0.05 * budget)
        self.train_start = time.perf_counter()
        self.step_s = 0.0

    def fits_step(self) -> bool:
        return self.deadline is None or time.perf_counter() + 1.5 * self.step_s + self.reserve < self.deadline

    def progress(self, step: int, total: int) -> float:
        """Share of training done: by steps, or by the clock when a budget is set and runs out first."""
        p = step / total
        if self.deadline is not None:
            span = max(self.deadline - self.reserve - self.train_start, 1e-9)
            p = max(p, (time.perf_counter() - self.train_start) / span)
        return min(p, 1.0)

    def record_step(self, seconds: float) -> None:
        self.step_s = seconds if self.step_s == 0.0 else 0.9 * self.step_s + 0.1 * seconds

    def record_eval(self, seconds: float) -> None:
        if self.deadline is not None:
            self.reserve = max(self.reserve, 1.5 * seconds + 0.1)


def bf16_is_fast(device: torch.device) -> bool:
    """bfloat16 matmuls pay off on CUDA and on CPUs with native bf16 dot products; elsewhere they are emulated."""
    return device.type == "cuda" or native_bf16()
