"""runstream: event-sourced experiment tracking. The SDK's entry points."""

from runstream.artifacts.store import ArtifactNotFound
from runstream.sdk.artifacts import ArtifactCorrupted
from runstream.sdk.buffer import BufferFull
from runstream.sdk.client import Client, MetricHistory, MetricPoint, NotFound
from runstream.sdk.monitor import Monitor, log_inference
from runstream.sdk.run import Run, start_run
from runstream.sdk.sender import flush
from runstream.sdk.transport import get_tracking_uri, set_tracking_uri

__all__ = [
    "ArtifactCorrupted",
    "ArtifactNotFound",
    "BufferFull",
    "Client",
    "MetricHistory",
    "MetricPoint",
    "Monitor",
    "NotFound",
    "Run",
    "flush",
    "get_tracking_uri",
    "log_inference",
    "set_tracking_uri",
    "start_run",
]
