"""runstream: event-sourced experiment tracking. The SDK's entry points."""

from api.client import Client, MetricHistory, MetricPoint, NotFound
from ingest.sdk.buffer import BufferFull
from ingest.sdk.run import Run, get_tracking_uri, set_tracking_uri, start_run

__all__ = [
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
