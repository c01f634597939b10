"""Structured logs: one line per event, `key=value` fields, for the CLI and the server alike."""

from __future__ import annotations

import logging
import sys
from typing import Literal, get_args

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
"""The levels `configure_logging` takes (in any case at the CLI and in SAE_SEARCH_LOG_LEVEL)."""
LEVELS: tuple[str, ...] = get_args(LogLevel)

_FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at emit time, so a replaced stderr (tests, daemons) never leaves the
    handler holding a closed stream."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(level: str = "INFO") -> None:
    """Route logs to stderr once; later calls only change the level."""
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(handler)
    root.setLevel(level.upper())
