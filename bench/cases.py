"""The steering benchmark's case files, read by the benchmarks that time query texts (bench/dense.py,
bench/embed.py)."""

from __future__ import annotations

import json
from pathlib import Path

CASE_FILES = sorted(Path(__file__).resolve().parent.glob("steering_cases*.jsonl"))


def query_texts() -> list[str]:
    """Every distinct query text of the steering case sets, sorted."""
    return sorted(
        {json.loads(line)["query"] for f in CASE_FILES for line in f.read_text().splitlines() if line.strip()}
    )
