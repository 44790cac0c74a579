"""Failover: the proof of issuance runs at execution through the promoted host itself, and
the closing message says which name to re-point, and where."""

from __future__ import annotations

import shlex

from pyinfra.api import Inventory

from etcd_step_pki.deploys.components.ha import failover_message
from etcd_step_pki.deploys.settings import settings_for
from etcd_step_pki.operations import ca
from tests.unit.fakes import FakeHost, raw, run_op


def _promoted(data: dict) -> object:
    inventory = Inventory(
        ([("etcd-k8s-1", {"ssh_hostname": "10.0.0.1"}), ("etcd-k8s-2", {"ssh_hostname": "10.0.0.2"})],
         {"ca_active": "etcd-k8s-2", **data}),
        etcd=(["etcd-k8s-1", "etcd-k8s-2"], {}),
        etcd_cert_managers=(["etcd-k8s-1", "etcd-k8s-2"], {}),
    )  # fmt: skip
    return settings_for(inventory.get_host("etcd-k8s-2"), inventory)


def test_a_ca_name_of_its_own_is_to_be_pointed_at_the_promoted_host() -> None:
    settings = _promoted({"step_ca_url": "https://step-ca.k8s.internal:9000"})
    message = failover_message(settings, "etcd-k8s-1", 4.2)
    assert "point the name step-ca.k8s.internal at etcd-k8s-2 (10.0.0.2)" in message
    assert "make etcd-k8s-2 the first host of etcd_cert_managers" in message


def test_a_url_of_the_promoted_host_needs_no_name_change() -> None:
    message = failover_message(_promoted({}), "etcd-k8s-1", 4.2)
    assert "nodes now reach the CA at https://etcd-k8s-2:9000" in message
    assert "point the name" not in message
    assert "point etcd-k8s-2 at etcd-k8s-2" not in message


def test_the_proof_runs_as_a_command_against_this_host_with_no_secret_in_it() -> None:
    host = FakeHost({})
    (command,) = raw(run_op(ca.issuance_proven, host, "/etc/step-ca", port=9000,
                            provisioner="etcd-pki"))  # fmt: skip
    text = shlex.split(command)[2]  # bash -c <script> <template>
    assert "u=https://127.0.0.1:9000\n" in text
    assert "--provisioner-password-file /etc/step-ca/secrets/provisioner_password" in text
    assert 'STEP_TOKEN="$t"' in text and 'rm -rf "$d"\n}\ntrap cleanup EXIT' in text
    assert host.fact_calls == []  # nothing is read while planning: it all runs at execution


def test_runs_stop_at_the_first_failure_and_refuse_unordered_options(monkeypatch) -> None:
    import pytest
    from pyinfra.api import Config
    from pyinfra.api.exceptions import PyinfraError

    from etcd_step_pki.deploys.components import stop_at_first_failure
    from tests.unit.fakes import on_host

    host = FakeHost({})
    host.state.config = Config()  # type: ignore[attr-defined]
    monkeypatch.setattr("sys.argv", ["pyinfra", "inventory.py", "deploys/cluster.py"])
    with on_host(host):
        stop_at_first_failure()
    assert host.state.config.FAIL_PERCENT == 0  # type: ignore[attr-defined]
    for option in ("--serial", "--no-wait"):
        monkeypatch.setattr("sys.argv", ["pyinfra", option, "inventory.py", "deploys/cluster.py"])
        with on_host(host), pytest.raises(PyinfraError, match=option):
            stop_at_first_failure()
