"""Domain errors. Each carries a message a person can act on; the CLI prints it on one line and the
HTTP layer maps each class to a status code in one place (`service/errors.py`)."""

from __future__ import annotations

from typing import TypeVar


class SaeSearchError(Exception):
    """Base class: an expected failure with a human-readable message."""

    where: str | None = None
    """The request field at fault ("steer.1"), when `located` named one."""
    reason: str = ""
    """The message without `where`."""


class InvalidArgument(SaeSearchError):
    """A parameter or input file is malformed (wrong shape, NaN rows, k >= latents, ...)."""


class UsageError(InvalidArgument):
    """A command-line option's value is refused before any work: the CLI exits 2, as argparse does for a
    malformed command line."""


class CorpusError(SaeSearchError):
    """The corpus file is missing, unreadable or in an unknown format."""


class EmptyCorpus(CorpusError):
    """No usable rows were left after skipping incomplete ones."""


class TrainingDiverged(InvalidArgument):
    """Training ran but its SAE is not worth keeping; `what` and `lr` let a caller name its own lr option."""

    def __init__(self, what: str, lr: float, remedy: str = "") -> None:
        super().__init__(f"SAE training {what} at learning rate {lr:g}{'; ' + remedy if remedy else ''}")
        self.what, self.lr = what, lr


class BudgetTooShort(InvalidArgument):
    """A training time budget ran out before the first step."""


class EmbeddingMismatch(InvalidArgument):
    """Precomputed embeddings do not match what the model produces for the same rows."""


class UnknownFeature(SaeSearchError):
    """A feature or family named by id or name does not exist; `suggestions` holds close names, and `unknown_name`
    the name when the reference was one that nothing has (not an id, nor a name several share)."""

    def __init__(self, message: str, suggestions: list[str] | None = None, unknown_name: str | None = None) -> None:
        super().__init__(message)
        self.suggestions = suggestions or []
        self.unknown_name = unknown_name


class UnknownFamily(UnknownFeature):
    """A family named by id or name does not exist."""


E = TypeVar("E", bound=SaeSearchError)


def located(where: str, exc: E) -> E:
    """The same error with `where` (a request path such as "steer.1") before its message, so that a request of
    several terms says which one is wrong; `where` and `reason` (the message alone) stay on it for programs."""
    message = f"{where}: {exc}"
    out = type(exc)(message, suggestions=exc.suggestions) if isinstance(exc, UnknownFeature) else type(exc)(message)
    out.where, out.reason = where, str(exc)
    return out


class IndexNotReady(SaeSearchError):
    """No loadable index exists yet, or it failed verification."""


class CorruptIndex(IndexNotReady):
    """An index directory exists but its manifest or checksums do not verify."""


class JobConflict(SaeSearchError):
    """A rebuild is already running."""


class UnknownJob(SaeSearchError):
    """No job with that id."""


def os_error_text(exc: OSError) -> str:
    """An OSError in words, "PATH: File name too long", rather than its class name and "[Errno 36]"."""
    if exc.strerror and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror}"
    return exc.strerror or str(exc) or type(exc).__name__
