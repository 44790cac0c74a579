"""The Docker sandbox: test hosts started by `make sandbox` or by the tests.

The hosts, their addresses and the SSH key are read from `hosts.json` in the sandbox state
directory (`$PKI_SANDBOX_DIR`, default `.sandbox/` in the checkout), written by
`tests/harness/hosts.py` when it starts them. Settings for the sandbox are in
`group_data/sandbox.py` (pyinfra puts every host of this file in the group `sandbox`).
"""

import json
import os
from pathlib import Path

_state_dir = Path(
    os.environ.get("PKI_SANDBOX_DIR", Path(__file__).resolve().parent.parent / ".sandbox")
)
_state_file = _state_dir / "hosts.json"
if not _state_file.exists():
    raise SystemExit(f"no sandbox at {_state_dir}: start it with `make sandbox`")
_state = json.loads(_state_file.read_text())


def _members(group: str) -> list[tuple[str, dict]]:
    return [
        (
            host["name"],
            {
                "ssh_hostname": host["address"],
                "ssh_user": _state.get("ssh_user", "root"),
                "ssh_key": _state["key"],
                "ssh_strict_host_key_checking": "no",
                "ssh_known_hosts_file": "/dev/null",
                "ssh_look_for_keys": False,
                "ssh_allow_agent": False,
            },
        )
        for host in _state["hosts"]
        if group in host["groups"]
    ]


etcd = _members("etcd")
etcd_cert_managers = _members("etcd_cert_managers")
etcd_clients = _members("etcd_clients")
prometheus = _members("prometheus")
