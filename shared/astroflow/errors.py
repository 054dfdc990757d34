"""Exceptions shared by the library and the steps.

A step raises :class:`ItemError` (or any exception) for one bad item; the executor records it in
the step's error table and goes on with the next item.  :class:`Skip` records an item as skipped
with a reason (not an error).  :class:`StepFailed` stops a whole step (missing inputs, too many
failed items); its dependants are not run.
"""

from __future__ import annotations

from pathlib import Path


class AstroflowError(Exception):
    """Base class of astroflow's own errors (configuration, declaration, run directory)."""


class ConfigError(AstroflowError):
    """The run configuration is invalid; the message says which key and why."""


class ItemError(AstroflowError):
    """One item could not be processed; ``path`` names the file at fault when there is one."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)
        self.reason = message


class Skip(Exception):
    """Raised by a step for an item that is deliberately not processed (recorded as skipped)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class StepFailed(AstroflowError):
    """A whole step failed: its inputs are missing or its failures passed the allowed fraction."""


class ItemTimeout(ItemError):
    """An item ran past its step's ``timeout_s``."""


class RunLocked(AstroflowError):
    """Another process is writing this run directory; the message names it."""


class WorkerDied(AstroflowError):
    """The process running a unit was killed (out of memory, a signal, a crash in native code)."""


class ArgoUnreachable(AstroflowError):
    """No answer from the Argo Server (connection refused, unknown host, time-out, TLS failure)."""


class ArgoRequestFailed(AstroflowError):
    """The Argo Server answered with an error (unauthorized, forbidden, template not installed...)."""
