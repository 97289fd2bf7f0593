"""Exceptions raised by the Docker Engine adapter.

Callers branch on what went wrong (the object is missing, the name is taken, the
Engine is not running, a pull failed), not on HTTP status codes, so each case
the controllers handle differently gets its own class. All of them carry the
Engine's own ``message`` so it can be shown to the user unchanged.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "DockerError",
    "DockerUnavailable",
    "ImagePullError",
    "ImagePushError",
    "NotFound",
]


class DockerError(Exception):
    """The Docker Engine refused or failed a request.

    Attributes:
        status: HTTP status the Engine answered with, or ``None`` when there was
            no HTTP answer at all (see `DockerUnavailable`) or the failure was
            reported inside a 200 stream.
        message: The Engine's ``{"message": ...}`` text (or ours, when the
            Engine said nothing useful).
    """

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        return f"{self.message} (HTTP {self.status})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"


class NotFound(DockerError):
    """The container, image, network, volume or exec instance does not exist (404)."""


class Conflict(DockerError):
    """The request conflicts with current state (409): a name in use, a stopped container."""


class DockerUnavailable(DockerError):
    """Nothing answers on the Engine's socket: it is missing, refuses, or is not ours to use."""


class ImagePullError(DockerError):
    """Pulling an image failed, whether the Engine said so up front or inside its 200 stream."""


class ImagePushError(DockerError):
    """The Engine could not push an image to its registry."""
