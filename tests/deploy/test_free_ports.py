"""Ports for local brokers and services: one broker's two listeners never share a port (CI once formatted a
KRaft node whose BROKER and CONTROLLER listeners were both given 40023, because two probes in a row got the
same ephemeral port back), and a port this process handed out is not handed out again."""

from __future__ import annotations

import socket
from pathlib import Path

from deploy.local.kafka import LocalKafkaCluster, free_port, free_ports


def test_ports_of_one_call_are_distinct_and_bindable() -> None:
    ports = free_ports(50)
    assert len(set(ports)) == 50
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))  # free when handed out


def test_a_port_is_never_handed_out_twice_in_one_process() -> None:
    seen: set[int] = set()
    for _ in range(200):
        for port in (*free_ports(2), free_port()):
            assert port not in seen
            seen.add(port)


def test_a_cluster_layout_gives_every_listener_its_own_port(tmp_path: Path) -> None:
    cluster = LocalKafkaCluster(tmp_path / "cluster", size=3)
    ports = [p for node in cluster.nodes for p in (node.port, node.controller_port)]
    assert len(ports) == 6 and len(set(ports)) == 6
    again = LocalKafkaCluster(tmp_path / "cluster", size=3)  # a restart reads the saved layout
    assert [p for node in again.nodes for p in (node.port, node.controller_port)] == ports
