"""The compose files cannot run here (no Docker engine): each is checked against the roles' CLI and
against itself (every address names a service that listens there; the cluster's nodes, quorum and
macros agree)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
import pytest
import yaml

from runstream.artifacts.s3 import PUBLIC_ENDPOINT_VARIABLE
from runstream.base.clickhouse import ClickHouseUrl
from runstream.server.cli import main

REPO = Path(__file__).resolve().parents[2]
FILES = ["docker-compose.yml", "docker-compose.cluster.yml"]
ROLES = {"gateway", "projector", "webhooks", "api"}
ARTIFACT_ROLES = {"gateway", "api"}


def load(name: str) -> dict[str, Any]:
    """The file as compose reads it: included files' services and configs merged in, each service's
    env_file values under its own environment."""
    path = REPO / name
    compose: dict[str, Any] = yaml.safe_load(path.read_text())
    for included in compose.pop("include", []):
        part = load(str((path.parent / included).relative_to(REPO)))
        for section in ("services", "configs", "volumes"):
            compose.setdefault(section, {}).update(part.get(section) or {})
    for service in compose["services"].values():
        for env_file in service.pop("env_file", []):
            lines = (path.parent / env_file).read_text().splitlines()
            values = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
            service["environment"] = {**values, **service.get("environment", {})}
    return compose


@pytest.fixture(params=FILES)
def compose(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def _roles(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {service["command"][0]: service for service in compose["services"].values() if "build" in service}


def _envvars(command: click.Command) -> dict[str, click.Option]:
    return {p.envvar: p for p in command.params if isinstance(p, click.Option) and isinstance(p.envvar, str)}


def _address(value: str) -> tuple[str, int]:
    host, port = value.rsplit(":", 1)
    return host, int(port)


def test_every_distributed_role_has_a_service_running_it(compose):
    assert set(_roles(compose)) == ROLES
    assert all(role in main.commands for role in _roles(compose))


def test_environment_names_are_ones_the_role_reads(compose):
    for role, service in _roles(compose).items():
        known = _envvars(main.commands[role])
        for name, value in service["environment"].items():
            if name.startswith("AWS_") or name == PUBLIC_ENDPOINT_VARIABLE:
                continue  # boto3's own variables, and the S3 store's
            assert name in known, f"{role} does not read {name}"
            known[name].type.convert(value, known[name], None)  # the value parses as the option's type


def test_addresses_point_at_services_and_published_ports(compose):
    services = compose["services"]
    for service in services.values():
        env = service.get("environment", {})
        for broker in filter(None, env.get("RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS", "").split(",")):
            host, port = _address(broker)
            assert f"PLAINTEXT://{host}:{port}" in services[host]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        if "RUNSTREAM_CLICKHOUSE_URL" in env:
            url = env["RUNSTREAM_CLICKHOUSE_URL"]
            ClickHouseUrl.parse(url)
            assert urlparse(url).hostname in services
        if "RUNSTREAM_PORT" in env:
            assert env.get("RUNSTREAM_HOST") == "0.0.0.0"  # reachable from outside the container
            # published on the host, or (replicated roles) exposed to the compose network
            reachable = [p.split(":")[1] for p in service.get("ports", [])] + service.get("expose", [])
            assert env["RUNSTREAM_PORT"] in reachable


def test_projector_and_readers_agree_on_the_consumer_group(compose):
    # the api, and the gateway's MLflow endpoints, wait on the group's progress for read-your-writes
    groups = {service["environment"]["RUNSTREAM_CONSUMER_GROUP"] for service in _roles(compose).values()}
    assert len(groups) == 1


def test_artifacts_go_to_the_s3_service_into_a_bucket_made_before_the_roles_start(compose):
    services = compose["services"]
    s3_port = re.search(r"-s3\.port=(\d+)", services["seaweedfs"]["command"])
    assert s3_port is not None
    assert f"{s3_port[1]}:{s3_port[1]}" in services["seaweedfs"]["ports"]
    for role in ARTIFACT_ROLES:
        service = _roles(compose)[role]
        env = service["environment"]
        endpoint, public = urlparse(env["AWS_ENDPOINT_URL_S3"]), urlparse(env[PUBLIC_ENDPOINT_VARIABLE])
        assert endpoint.hostname == "seaweedfs" and endpoint.port == int(s3_port[1])
        assert public.hostname == "localhost" and public.port == int(s3_port[1])  # the published port
        bucket = urlparse(env["RUNSTREAM_ARTIFACT_ROOT"]).netloc
        assert f"create-bucket --bucket {bucket}" in services["create-bucket"]["command"][0]
        assert service["depends_on"]["create-bucket"] == {"condition": "service_completed_successfully"}
    # the bucket is made with the roles' own credentials, which SeaweedFS knows
    identities = yaml.safe_load(compose["configs"]["s3-identities"]["content"])["identities"]
    keys = {(c["accessKey"], c["secretKey"]) for i in identities for c in i["credentials"]}
    env = services["create-bucket"]["environment"]
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) in keys


CLUSTER = load("docker-compose.cluster.yml")


def _services_with(variable: str) -> dict[str, dict[str, str]]:
    return {name: s["environment"] for name, s in CLUSTER["services"].items() if variable in s.get("environment", {})}


def test_the_kafka_cluster_is_one_quorum_of_three_with_the_topic_replicated():
    brokers = _services_with("KAFKA_NODE_ID")
    assert len(brokers) == 3
    assert len({env["CLUSTER_ID"] for env in brokers.values()}) == 1  # formatted as one cluster
    for env in brokers.values():
        voters = dict(voter.split("@") for voter in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
        assert {node: _address(address)[0] for node, address in voters.items()} == {
            other["KAFKA_NODE_ID"]: broker for broker, other in brokers.items()
        }
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
    published = [port for name in brokers for port in CLUSTER["services"][name]["ports"]]
    assert len(set(published)) == 3
    for role in ("gateway", "projector"):
        env = _roles(CLUSTER)[role]["environment"]
        assert {_address(b)[0] for b in env["RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS"].split(",")} == set(brokers)
        assert int(env["RUNSTREAM_KAFKA_REPLICATION_FACTOR"]) == 3
        assert int(env["RUNSTREAM_KAFKA_MIN_INSYNC_REPLICAS"]) == 2  # one broker may be down


def test_the_clickhouse_cluster_is_two_shards_of_two_replicas_with_keeper():
    config = ET.fromstring(CLUSTER["configs"]["clickhouse-cluster"]["content"])
    name = _roles(CLUSTER)["api"]["environment"]["RUNSTREAM_CLICKHOUSE_CLUSTER"]
    shards = config.findall(f"remote_servers/{name}/shard")
    assert len(shards) == 2
    nodes = _services_with("CLICKHOUSE_SHARD")
    listed = []
    for number, shard in enumerate(shards, start=1):
        assert shard.findtext("internal_replication") == "true"  # replication copies, not the Distributed table
        hosts = [replica.findtext("host", "") for replica in shard.findall("replica")]
        assert len(hosts) == 2
        for host in hosts:
            assert nodes[host]["CLICKHOUSE_SHARD"] == str(number)  # the {shard} macro
            assert nodes[host]["CLICKHOUSE_REPLICA"] == host == CLUSTER["services"][host]["hostname"]
        listed += hosts
    assert sorted(listed) == sorted(nodes)
    for role in _roles(CLUSTER).values():
        assert urlparse(role["environment"]["RUNSTREAM_CLICKHOUSE_URL"]).hostname in nodes
    # Keeper: three servers in one raft group, each node of ClickHouse told of all three.
    keepers = _services_with("KEEPER_SERVER_ID")
    raft = ET.fromstring(CLUSTER["configs"]["keeper"]["content"]).findall("keeper_server/raft_configuration/server")
    assert {s.findtext("hostname"): s.findtext("id") for s in raft} == {
        name: env["KEEPER_SERVER_ID"] for name, env in keepers.items()
    }
    assert {node.findtext("host") for node in config.findall("zookeeper/node")} == set(keepers)
