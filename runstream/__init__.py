"""runstream: event-sourced experiment tracking. The SDK's entry points."""

from api.client import Client, MetricHistory, MetricPoint, NotFound
from artifacts.client import ArtifactCorrupted
from artifacts.store import ArtifactNotFound
from ingest.sdk.buffer import BufferFull
from ingest.sdk.run import Run, get_tracking_uri, set_tracking_uri, start_run

__all__ = [
    "ArtifactCorrupted",
    "ArtifactNotFound",
    "BufferFull",
    "Client",
    "MetricHistory",
    "MetricPoint",
    "NotFound",
    "Run",
    "get_tracking_uri",
    "set_tracking_uri",
    "start_run",
]
