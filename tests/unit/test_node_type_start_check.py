"""A registry that cannot load stops a service at start: the start check raises what the registry
raised, naming the plugin."""

from __future__ import annotations

import asyncio

import pytest
from millrace_common.language import workflow_nodes
from millrace_common.language.node_types import NodeTypeError

pytestmark = pytest.mark.unit


def test_the_start_check_raises_when_the_registry_cannot_load(monkeypatch: pytest.MonkeyPatch):
    def broken() -> object:
        raise NodeTypeError("two installed node types are named 'chat_message' (plugins a and b)")

    monkeypatch.setattr(workflow_nodes, "_installed", None)
    monkeypatch.setattr(workflow_nodes, "load_registry", broken)
    with pytest.raises(NodeTypeError, match="chat_message"):
        asyncio.run(workflow_nodes.require_node_types())


def test_the_start_check_passes_with_the_installed_registry():
    asyncio.run(workflow_nodes.require_node_types())
    assert "http_request" in workflow_nodes.node_types().names
