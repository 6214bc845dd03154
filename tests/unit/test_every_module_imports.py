"""Every module of the shared code, every service and every plugin imports: a name moved or removed
elsewhere fails here, not when a service starts."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

pytestmark = pytest.mark.unit

PACKAGES = (
    "millrace_common",
    "millrace_gateway",
    "millrace_trigger",
    "millrace_orchestrator",
    "millrace_node_runner",
    "millrace_approval",
    "millrace_node_chat",
)


def modules() -> list[str]:
    found = []
    for name in PACKAGES:
        package = importlib.import_module(name)
        found.append(name)
        found.extend(
            info.name
            for info in pkgutil.walk_packages(package.__path__, f"{name}.")
            if ".migrations" not in info.name
        )
    return found


@pytest.mark.parametrize("module", modules())
def test_the_module_imports(module: str):
    importlib.import_module(module)
