"""The example inventories load and their settings validate."""

from __future__ import annotations

import os

import pytest
from pyinfra.api import State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory

from deploys.settings import validate_inventory
from tests.harness.hosts import REPO


@pytest.mark.parametrize(("name", "members"), [("production", 3), ("staging", 1)])
def test_example_inventory_validates(name: str, members: int) -> None:
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        with ctx_state.use(State()):
            inventory = make_inventory(f"inventories/{name}.py", cwd=str(REPO))
    finally:
        os.chdir(cwd)
    settings = validate_inventory(inventory)
    assert sum(1 for s in settings.values() if s.is_member) == members
    primary = next(s for s in settings.values() if s.is_primary)
    assert primary.ca_url.startswith("https://")
    for item in settings.values():
        assert item.addresses, item.host
