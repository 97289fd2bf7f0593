"""Docker Engine adapter: funade's typed, async way to run containers locally.

Everything the local target needs from Docker (containers, exec, logs, images,
networks, volumes, events) goes through `DockerClient`; callers import this
package, never its private modules. `FakeDocker` is its in-memory stand-in for
unit tests. `DockerBuilder` builds images on the same connection (`FakeBuilder` replays
scripted builds).
"""

from ._errors import Conflict, DockerError, DockerUnavailable, ImagePullError, ImagePushError, NotFound
from ._models import (
    LOOPBACK,
    ContainerInfo,
    ContainerSpec,
    ContainerState,
    ContainerStats,
    ContainerSummary,
    DockerEvent,
    ExecResult,
    ImageInfo,
    LogLine,
    Mount,
    MountType,
    NetworkAttachment,
    NetworkEndpoint,
    NetworkInfo,
    PortBinding,
    PortProtocol,
    PublishedPort,
    StreamName,
    VolumeInfo,
)
from ._protocol import Docker
from ._wire import split_image_ref
from .build import DockerBuilder, FakeBuilder
from .engine import DEFAULT_SOCKET, MAX_API_VERSION, DockerClient, negotiate_api_version
from .fake import ExecScript, FakeDocker

__all__ = [
    "DEFAULT_SOCKET",
    "LOOPBACK",
    "MAX_API_VERSION",
    "Conflict",
    "ContainerInfo",
    "ContainerSpec",
    "ContainerState",
    "ContainerStats",
    "ContainerSummary",
    "Docker",
    "DockerBuilder",
    "DockerClient",
    "DockerError",
    "DockerEvent",
    "DockerUnavailable",
    "ExecResult",
    "ExecScript",
    "FakeBuilder",
    "FakeDocker",
    "ImageInfo",
    "ImagePullError",
    "ImagePushError",
    "LogLine",
    "Mount",
    "MountType",
    "NetworkAttachment",
    "NetworkEndpoint",
    "NetworkInfo",
    "NotFound",
    "PortBinding",
    "PortProtocol",
    "PublishedPort",
    "StreamName",
    "VolumeInfo",
    "negotiate_api_version",
    "split_image_ref",
]
