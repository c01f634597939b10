"""Structured logs: one line per event, `key=value` fields, for the CLI and the server alike."""

from __future__ import annotations

import logging
import sys

_FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Route logs to stderr once; later calls only change the level."""
    root = logging.getLogger()
    if not any(getattr(h, "_sae_search", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._sae_search = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level.upper())
