"""What MLflow's client and web UI ask a server about itself before they use it (`version`,
`server-info`, `ui-telemetry`, `gateway-proxy`): runstream answers as an MLflow server with no
workspaces, no trace archival, multipart uploads where its artifact store takes them (S3), no
presigned transfers through the MLflow API, telemetry off and no deployments server to proxy to."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from runstream.base.responses import json_response

TESTED_MLFLOW = "3.17.2"  # the MLflow whose client and web UI the tests run against runstream


@cache
def mlflow_version() -> str:
    """The MLflow version this server answers as: the mlflow installed beside it (whose web app
    --mlflow-ui serves), else the one tested."""
    try:
        return version("mlflow")
    except PackageNotFoundError:
        return TESTED_MLFLOW


SERVER_INFO = {
    "store_type": None,  # neither of MLflow's own stores (the UI warns about its FileStore only)
    "workspaces_enabled": False,
    "trace_archival_enabled": False,
    "multipart_uploads_enabled": False,  # True where the store takes them (server_info)
    "multipart_downloads_enabled": False,
    "presigned_upload_run_id_supported": False,
    "presigned_upload_model_id_supported": False,
    "features_enabled": {"gateway": False},
}
UI_TELEMETRY = {"disable_ui_telemetry": True, "disable_ui_events": [], "ui_rollout_percentage": 0}


routes = APIRouter(tags=["mlflow"])


@routes.get("/version", summary="The MLflow version this server answers as", response_class=PlainTextResponse)
async def mlflow_server_version() -> str:
    return mlflow_version()


@routes.get("/api/3.0/mlflow/server-info", summary="How this server is set up, as MLflow's client asks")
@routes.get("/ajax-api/3.0/mlflow/server-info", include_in_schema=False)
async def server_info(request: Request) -> Response:
    """Multipart uploads where mpu/create hands out part URLs (an S3 store and the event log: the app
    says so in its state)."""
    return json_response({**SERVER_INFO, "multipart_uploads_enabled": request.app.state.multipart_uploads})


@routes.get("/ajax-api/3.0/mlflow/ui-telemetry", summary="MLflow's web UI telemetry: off")
async def ui_telemetry() -> Response:
    return json_response(UI_TELEMETRY)


@routes.get("/ajax-api/2.0/mlflow/gateway-proxy", summary="MLflow's deployments proxy: no endpoints")
@routes.post("/ajax-api/2.0/mlflow/gateway-proxy", include_in_schema=False)
async def gateway_proxy() -> Response:
    return json_response({"endpoints": []})  # MLflow's answer when it has no deployments target
