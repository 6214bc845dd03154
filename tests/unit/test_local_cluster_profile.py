"""deploy/local's profiles: no two of them (nor two services' instances) share a port, and the cluster
profiles' nodes are configured as the production cluster the docs describe."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

LOCAL = Path(__file__).resolve().parents[2] / "deploy" / "local"


def _module(name: str) -> Any:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, LOCAL / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


infra = _module("infra")
kafka_cluster = _module("kafka_cluster")


def _ports(profile: Any) -> list[int]:
    services = [port for ports in infra.service_ports(profile).values() for port in ports]
    return [*profile.kafka_ports(), profile.pg_port, profile.prometheus_port, *services]


def test_no_two_profiles_or_instances_share_a_port():
    every = [port for profile in infra.PROFILES.values() for port in _ports(profile)]
    assert [port for port, n in Counter(every).items() if n > 1] == []


def test_the_cluster_profiles_run_three_nodes_and_two_instances_of_every_service():
    for name in ("cluster", "cluster-test"):
        profile = infra.PROFILES[name]
        assert (profile.brokers, profile.instances) == (3, 2)
        assert all(len(ports) == 2 for ports in infra.service_ports(profile).values())
        assert len(kafka_cluster.bootstrap(profile).split(",")) == 3


def test_a_dev_profile_keeps_its_single_broker_and_the_documented_service_ports():
    dev = infra.PROFILES["dev"]
    assert dev.kafka_ports() == [19092, 19093]
    assert infra.service_ports(dev) == {name: [port] for name, port in infra.SERVICE_PORTS.items()}
    assert dev.env()["MILLRACE_KAFKA_BOOTSTRAP"] == "127.0.0.1:19092"


def test_cluster_nodes_are_secured_replicated_and_form_one_quorum():
    profile = infra.PROFILES["cluster-test"]
    passwords = {"keystore": "k", kafka_cluster.BROKER_USER: "b", kafka_cluster.SERVICE_USER: "s"}
    nodes = [kafka_cluster.node_properties(profile, node, passwords) for node in (1, 2, 3)]
    assert len({props["controller.quorum.voters"] for props in nodes}) == 1
    assert len(nodes[0]["controller.quorum.voters"].split(",")) == 3
    for node, props in enumerate(nodes, start=1):
        assert props["node.id"] == str(node)
        assert props["process.roles"] == "broker,controller"
        assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SSL"
        assert props["inter.broker.listener.name"] == "SASL_SSL"
        assert (
            props["sasl.enabled.mechanisms"]
            == props["sasl.mechanism.inter.broker.protocol"]
            == "SCRAM-SHA-512"
        )
        assert props["listener.name.controller.ssl.client.auth"] == "required"
        assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert props["allow.everyone.if.no.acl.found"] == "false"
        assert set(props["super.users"].split(";")) == {
            "User:millrace",
            "User:millrace-broker",
            "User:CN=millrace-broker",
        }
        assert props["default.replication.factor"] == props["offsets.topic.replication.factor"] == "3"
        assert props["min.insync.replicas"] == props["transaction.state.log.min.isr"] == "2"
        assert props["unclean.leader.election.enable"] == "false"
        assert (
            'username="millrace-broker" password="b"'
            in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
        )


def test_the_cluster_profile_tells_services_how_to_reach_it():
    profile = infra.PROFILES["cluster"]
    env = profile.env()
    assert env["MILLRACE_KAFKA_BOOTSTRAP"] == "127.0.0.1:19192,127.0.0.1:19193,127.0.0.1:19194"
    assert env["MILLRACE_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["MILLRACE_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["MILLRACE_KAFKA_SASL_USERNAME"] == "millrace"
    assert env["MILLRACE_KAFKA_SASL_PASSWORD_FILE"].endswith(".data/cluster/kafka/security/millrace.password")
    assert env["MILLRACE_KAFKA_SSL_CA_FILE"].endswith(".data/cluster/kafka/security/ca.crt")
    assert (env["MILLRACE_KAFKA_REPLICATION_FACTOR"], env["MILLRACE_KAFKA_MIN_INSYNC_REPLICAS"]) == ("3", "2")


def _max_heap_bytes(jvm: list[str]) -> int:
    (option,) = [o for o in jvm if o.startswith("-Xmx")]
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    return int(option[4:-1]) * units[option[-1].lower()]


def test_the_log_cleaner_buffer_leaves_each_broker_most_of_its_heap():
    # Kafka takes the buffer from the heap in one piece at start; at its 128 MB default a cluster
    # node (256 MB heap) starting under load died with OutOfMemoryError.
    profile = infra.PROFILES["cluster-test"]
    passwords = {"keystore": "k", kafka_cluster.BROKER_USER: "b", kafka_cluster.SERVICE_USER: "s"}
    node = kafka_cluster.node_properties(profile, 1, passwords)
    assert int(node["log.cleaner.dedupe.buffer.size"]) * 8 <= _max_heap_bytes(kafka_cluster.NODE_JVM)
    assert infra.CLEANER_DEDUPE_BYTES * 8 <= _max_heap_bytes(infra.KAFKA_JVM)


@pytest.mark.parametrize(
    ("cores", "network", "handlers"), [(1, 1, 2), (2, 1, 2), (4, 2, 4), (8, 4, 8), (16, 8, 16)]
)
def test_the_single_node_has_no_more_request_threads_than_the_machine_has_cores(cores, network, handlers):
    # On two cores Kafka's 2 network threads and 4 handlers cost the broker about a tenth more CPU per
    # run than 1 and 2, and the record path at half its burst rate twice the p99.
    assert infra.kafka_threads(cores) == {
        "num.network.threads": str(network),
        "num.io.threads": str(handlers),
    }


def test_the_single_nodes_configuration_takes_its_threads_from_the_cores_it_is_given():
    properties = infra.kafka_properties(infra.PROFILES["test"], cores=2)
    assert properties["num.network.threads"] == "1"
    assert properties["num.io.threads"] == "2"
