"""Why the model gave no text. Every one is a ModelError, so one `except` catches them all;
`kind` names the reason for metrics and logs."""

from __future__ import annotations

__all__ = ("ModelError", "ModelOverloaded", "ModelTimeout", "ModelUnavailable")


class ModelError(RuntimeError):
    """Generation failed: server unreachable, model missing, deadline exceeded, ..."""

    kind = "error"

    def __init__(self, message: str, *, model: str = "", kind: str | None = None) -> None:
        super().__init__(message)
        self.model = model
        if kind is not None:
            self.kind = kind


class ModelTimeout(ModelError):
    """The request's deadline passed before the model answered."""

    kind = "deadline_exceeded"


class ModelUnavailable(ModelError):
    """The model's circuit breaker is open: refused at once, the server is not called."""

    kind = "circuit_open"


class ModelOverloaded(ModelError):
    """Shed: too many requests wait for a slot, or this one waited too long for one."""

    kind = "overloaded"
