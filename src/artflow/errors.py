"""Errors a user can cause: one clear message naming the thing and the fix."""


class ArtflowError(Exception):
    """A user-facing error. The CLI prints it without a traceback and exits non-zero."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message


class ConfigError(ArtflowError):
    """A bad value in params.yaml, a profile or a flag."""


class DataError(ArtflowError):
    """Missing, corrupt or unusable data."""


class ModelError(ArtflowError):
    """An unknown model, alias, version or weights file."""


class GateFailed(ArtflowError):
    """The promotion gate refused a candidate (exit 1 so CI can gate on it)."""

    exit_code = 1


class RegistryUnavailable(ArtflowError):
    """The MLflow tracking server or registry could not be asked (down, refused, timed out,
    5xx, a locked database; 401/403 is its subclass NotAllowed). Never read as "not set":
    nothing was decided or moved.
    Exit 3, so schedulers can tell an outage (retry later) from a refusal (exit 1)."""

    exit_code = 3


class NotAllowed(RegistryUnavailable):
    """The MLflow server answered 401/403: "not allowed: <identity> may not <action>".
    Neither "not set" nor "could not ask": it was asked and refused. A RegistryUnavailable
    still, so that whatever keeps its state on an outage (serving) does so here too; exit 4
    tells a scheduler that retrying will not help until the credentials change."""

    exit_code = 4


class LockLost(GateFailed):
    """A fenced registry write refused: this holder no longer holds the registry lock (it
    stalled past its lease and another took it). Nothing was changed by this holder."""


class AliasChanged(GateFailed):
    """A compare-and-swap of an alias refused: it no longer points where the caller saw it."""

    def __init__(self, message: str, now: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.now = now
