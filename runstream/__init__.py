"""runstream: event-sourced experiment tracking. The SDK's entry points."""

from runstream.api.client import Client, MetricHistory, MetricPoint, NotFound
from runstream.artifacts.client import ArtifactCorrupted
from runstream.artifacts.store import ArtifactNotFound
from runstream.ingest.sdk.buffer import BufferFull
from runstream.ingest.sdk.monitor import Monitor, log_inference
from runstream.ingest.sdk.run import Run, get_tracking_uri, set_tracking_uri, start_run

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
    "get_tracking_uri",
    "log_inference",
    "set_tracking_uri",
    "start_run",
]
