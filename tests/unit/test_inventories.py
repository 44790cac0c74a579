"""The example inventories load and their settings validate."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.harness.hosts import REPO

# In a process of its own: pyinfra_cli monkey-patches the standard library (gevent) on import.
CHECK = """
import json, sys
from pyinfra.api import State
from pyinfra.context import ctx_state
from pyinfra_cli.inventory import make_inventory
from etcd_step_pki.deploys.settings import validate_inventory
with ctx_state.use(State()):
    inventory = make_inventory(sys.argv[1], cwd=".")
settings = validate_inventory(inventory)
print(json.dumps({name: [s.is_member, s.is_primary, s.ca_url, list(s.addresses)]
                  for name, s in settings.items()}))
"""


@pytest.mark.parametrize(("name", "members"), [("production", 3), ("staging", 1)])
def test_example_inventory_validates(name: str, members: int) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK, f"inventories/{name}.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    settings = json.loads(out.stdout)
    assert sum(1 for member, *_ in settings.values() if member) == members
    primary = [value for value in settings.values() if value[1]]
    assert len(primary) == 1 and primary[0][2].startswith("https://")
    assert all(value[3] for value in settings.values())
