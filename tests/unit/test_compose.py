"""docker-compose.yml cannot run here (no Docker engine); check it against the CLI instead."""

from pathlib import Path
from urllib.parse import urlparse

import click
import yaml

from runstream.cli import main
from runstream.clickhouse import ClickHouseUrl

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ROLES = {"gateway", "projector", "api"}


def _envvars(command: click.Command) -> dict[str, click.Option]:
    return {p.envvar: p for p in command.params if isinstance(p, click.Option) and isinstance(p.envvar, str)}


def test_every_distributed_role_has_a_service_running_it():
    commands = {name: service["command"][0] for name, service in SERVICES.items() if "build" in service}
    assert set(commands.values()) == ROLES
    assert all(role in main.commands for role in commands.values())


def test_environment_names_are_ones_the_role_reads():
    for service in SERVICES.values():
        if "build" not in service:
            continue
        command = main.commands[service["command"][0]]
        known = _envvars(command)
        for name, value in service["environment"].items():
            assert name in known, f"{command.name} does not read {name}"
            known[name].type.convert(value, known[name], None)  # the value parses as the option's type


def test_addresses_point_at_services_and_published_ports():
    for service in SERVICES.values():
        env = service.get("environment", {})
        if "RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS" in env:
            host, port = env["RUNSTREAM_KAFKA_BOOTSTRAP_SERVERS"].split(":")
            assert (
                host in SERVICES
                and f"PLAINTEXT://{host}:{port}" in SERVICES[host]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
            )
        if "RUNSTREAM_CLICKHOUSE_URL" in env:
            url = env["RUNSTREAM_CLICKHOUSE_URL"]
            ClickHouseUrl.parse(url)
            assert urlparse(url).hostname in SERVICES
        if "RUNSTREAM_PORT" in env:
            assert env.get("RUNSTREAM_HOST") == "0.0.0.0"  # reachable from outside the container
            # published on the host, or (replicated roles) exposed to the compose network
            reachable = [p.split(":")[1] for p in service.get("ports", [])] + service.get("expose", [])
            assert env["RUNSTREAM_PORT"] in reachable


def test_projector_and_readers_agree_on_the_consumer_group():
    # the api, and the gateway's MLflow endpoints, wait on the group's progress for read-your-writes
    groups = {SERVICES[name]["environment"]["RUNSTREAM_CONSUMER_GROUP"] for name in ("projector", "api", "gateway")}
    assert len(groups) == 1
