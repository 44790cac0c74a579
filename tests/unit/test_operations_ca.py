"""The CA operations: initialise once, never over existing keys; ca.json and modes converge."""

from __future__ import annotations

import json
import shlex

import pytest
from pyinfra.api import OperationError

from etcd_step_pki.facts.ca import CAHealth, CAState
from etcd_step_pki.operations import ca
from etcd_step_pki.operations.ca import Durations
from tests.unit.fakes import FakeHost, FakeRemote, FakeState, raw, run_op

PATH = "/etc/step-ca"
DURATIONS = Durations("17520h", "26280h", "1h")
INIT_CONFIG = {
    "root": f"{PATH}/certs/root_ca.crt",
    "address": ":443",
    "dnsNames": ["ca.local"],
    "db": {"type": "badgerv2", "dataSource": f"{PATH}/db"},
    "authority": {"provisioners": [{"type": "JWK", "name": "etcd-pki", "encryptedKey": "e"}]},
}
CONFIG_ARGS = {"dns_names": ["etcd-k8s-1", "10.0.0.1"], "port": 9000, "db_type": "bbolt",
               "durations": DURATIONS}  # fmt: skip


def _state(config=None, files=None) -> dict:
    return {"config": config, "root": None, "intermediate": None, "files": files or {}}


def test_init_makes_passwords_on_the_host_and_runs_ca_init() -> None:
    host = FakeHost({CAState: _state()})
    commands = raw(
        run_op(
            ca.authority,
            host,
            PATH,
            ca_name="etcd-k8s CA",
            dns_names=["etcd-k8s-1", "10.0.0.1"],
            port=9000,
            provisioner="etcd-pki",
        )
    )
    assert len(commands) == 1
    init = shlex.split(commands[0])[2]  # bash -c <script> <template>
    assert "openssl rand -base64 33" in init
    assert "umask 077" in init
    assert (
        "/opt/bin/step ca init --deployment-type standalone --name 'etcd-k8s CA' "
        "--dns etcd-k8s-1 --dns 10.0.0.1 --address :9000 \\\n    --provisioner etcd-pki"
    ) in init
    assert '--password-file "$p/"secrets/password' in init


def test_an_existing_ca_is_never_initialised_again() -> None:
    host = FakeHost({CAState: _state(INIT_CONFIG)})
    assert run_op(ca.authority, host, PATH, ca_name="x", dns_names=[], port=9000,
                  provisioner="p") == []  # fmt: skip
    assert host.noops == [f"a CA exists at {PATH}"]


def test_keys_without_config_are_refused() -> None:
    files = {f"{PATH}/secrets/root_ca_key": {"mode": "400", "user": "root", "group": "root",
                                             "type": "f"}}  # fmt: skip
    host = FakeHost({CAState: _state(files=files)})
    with pytest.raises(OperationError, match="refusing to initialise a new CA"):
        run_op(ca.authority, host, PATH, ca_name="x", dns_names=[], port=9000, provisioner="p")


def test_desired_config_keeps_generated_values_and_sets_ours() -> None:
    wanted = ca.desired_config(INIT_CONFIG, path=PATH, **CONFIG_ARGS)
    assert wanted["dnsNames"] == ["etcd-k8s-1", "10.0.0.1"]
    assert wanted["address"] == ":9000"
    assert wanted["db"] == {"type": "bbolt", "dataSource": f"{PATH}/db/bbolt.db"}
    assert wanted["crl"] == {"enabled": True, "generateOnRevoke": True}
    assert wanted["authority"]["claims"] == {
        "minTLSCertDuration": "1h",
        "maxTLSCertDuration": "26280h",
        "defaultTLSCertDuration": "17520h",
    }
    assert wanted["authority"]["provisioners"] == INIT_CONFIG["authority"]["provisioners"]
    assert INIT_CONFIG["address"] == ":443"  # the input is not modified


def test_configuration_uploads_only_when_different() -> None:
    host = FakeHost({CAState: _state(INIT_CONFIG)})
    commands = run_op(ca.configuration, host, PATH, **CONFIG_ARGS)
    (command,) = raw(commands)
    assert command.startswith(f"rm -f {PATH}/config/ca.json.new && printf %s ")
    text, _, rest = command.split(" && printf %s ", 1)[1].partition(" > ")
    assert json.loads(shlex.split(text)[0])["address"] == ":9000"
    assert rest == (
        f"{PATH}/config/ca.json.new && chmod 0600 {PATH}/config/ca.json.new && mv -f "
        f"{PATH}/config/ca.json.new {PATH}/config/ca.json"
    )
    configured = ca.desired_config(INIT_CONFIG, path=PATH, **CONFIG_ARGS)
    host = FakeHost({CAState: _state(configured)})
    assert run_op(ca.configuration, host, PATH, **CONFIG_ARGS) == []


def test_configuration_before_init_is_a_change_when_planning_and_an_error_when_running() -> None:
    planning = FakeHost({CAState: _state()}, state=FakeState(is_executing=False))
    assert raw(run_op(ca.configuration, planning, PATH, **CONFIG_ARGS))
    running = FakeHost({CAState: _state()})
    with pytest.raises(OperationError, match="not initialised"):
        run_op(ca.configuration, running, PATH, **CONFIG_ARGS)


def test_file_modes_fix_only_what_drifted() -> None:
    def entry(mode: str, kind: str = "f", user: str = "root") -> dict:
        return {"mode": mode, "user": user, "group": "root", "type": kind}

    files = {
        f"{PATH}/secrets": entry("700", "d"),
        f"{PATH}/secrets/root_ca_key": entry("400"),
        f"{PATH}/secrets/password": entry("644"),
        f"{PATH}/certs/root_ca.crt": entry("644", user="nobody"),
    }
    host = FakeHost({CAState: _state(files=files)})
    fixes = [
        f"chown root:root {PATH}/certs/root_ca.crt && chmod 644 {PATH}/certs/root_ca.crt",
        f"chown root:root {PATH}/secrets/password && chmod 400 {PATH}/secrets/password",
    ]
    assert raw(run_op(ca.file_modes, host, PATH)) == fixes
    # The configuration keeps them too, from the same read of the CA's state.
    configured = ca.desired_config(INIT_CONFIG, path=PATH, **CONFIG_ARGS)
    both = FakeHost({CAState: _state(configured, files)})
    assert raw(run_op(ca.configuration, both, PATH, modes=True, **CONFIG_ARGS)) == fixes
    assert raw(run_op(ca.configuration, both, PATH, **CONFIG_ARGS)) == []


def test_health_waits_only_when_unhealthy() -> None:
    host = FakeHost({CAHealth: {"ok": True, "detail": '{"status":"ok"}'}})
    assert run_op(ca.healthy, host, "etcd-k8s-1", port=9000, root="/r.crt") == []
    host = FakeHost({CAHealth: {"ok": False, "detail": "refused"}})
    (wait,) = raw(run_op(ca.healthy, host, "etcd-k8s-1", port=9000, root="/r.crt"))
    text = shlex.split(wait)[2]  # bash -c <script> <template>
    assert "--resolve etcd-k8s-1:9000:127.0.0.1 \\\n    https://etcd-k8s-1:9000/health" in text


def test_ca_state_fact_parses_sections() -> None:
    output = [
        "### etcd-step-pki config",
        json.dumps(INIT_CONFIG),
        "### etcd-step-pki root",
        "-----BEGIN CERTIFICATE-----",
        "MIIB",
        "-----END CERTIFICATE-----",
        "### etcd-step-pki files",
        f"700 root root d {PATH}/secrets",
        f"400 root root f {PATH}/secrets/root_ca_key",
    ]
    parsed = CAState().process(output)
    assert parsed["config"] == INIT_CONFIG
    assert parsed["root"].startswith("-----BEGIN CERTIFICATE-----\nMIIB")
    assert parsed["intermediate"] is None
    assert parsed["files"][f"{PATH}/secrets/root_ca_key"]["mode"] == "400"


def _files(*lines: str) -> dict:
    return CAState().process(["### etcd-step-pki files", *lines])["files"]


def test_the_database_is_step_cas_account_and_everything_else_roots() -> None:
    """After a restore (everything root's) the database goes back to step-ca's account, with
    what is in it; a key made readable goes back to 0400 root."""
    files = _files(
        f"700 root root d {PATH}/db",
        f"600 root root f {PATH}/db/bbolt.db",
        f"440 step step f {PATH}/secrets/intermediate_ca_key",
        f"700 root root d {PATH}/secrets",
    )
    host = FakeHost({CAState: {"files": files}})
    assert raw(run_op(ca.file_modes, host, PATH, ca_user="step")) == [
        f"chown root:root {PATH}/secrets/intermediate_ca_key"
        f" && chmod 400 {PATH}/secrets/intermediate_ca_key",
        f"chown -R step:step {PATH}/db",
        f"chown step:step {PATH}/db && chmod 700 {PATH}/db",
    ]
    kept = _files(f"700 step step d {PATH}/db", f"600 step step f {PATH}/db/bbolt.db")
    assert raw(run_op(ca.file_modes, FakeHost({CAState: {"files": kept}}), PATH)) == []


def _primary(config: dict, refused: str | None) -> tuple[FakeRemote, list[str]]:
    """A cert-manager reached at run time: ca.json as given, step-ca failing to come back
    while the ca.json written last holds `refused` (None: it always comes back); with the
    ca.json texts it held, in order."""
    written = [json.dumps(config)]

    def answer(command: str, stdin: str | None) -> tuple[bool, str, str]:
        if command.startswith("cat "):
            return True, written[-1], ""
        if "ca.json" in command:
            written.append(command)
        elif "systemctl restart" in command and refused and refused in written[-1]:
            return False, "", "step-ca.service: Failed with result 'exit-code'"
        return True, "", ""

    return FakeRemote(answer), written


def _policy():
    from etcd_step_pki.operations import profiles
    from etcd_step_pki.operations.ca_policy import Policy

    kinds = [
        profiles.profile(kind, base="etcd-pki", cluster="k8s")
        for kind in ("peer", "server", "client")
    ]
    return Policy.of("etcd-pki", kinds, {"k8s": ["etcd-k8s-1", "client-1"]})


def test_a_policy_that_step_ca_does_not_come_back_on_is_put_back() -> None:
    """The CA restarted onto the inventory's policy does not come back: its previous ca.json
    goes back and step-ca is restarted on it; the run fails, naming why."""
    from etcd_step_pki.operations.ca_policy import policy_current

    config = json.loads(json.dumps(INIT_CONFIG))
    config["authority"]["provisioners"][0]["key"] = {"kty": "EC"}
    primary, written = _primary(config, refused="etcd-pki-k8s-peer")
    with pytest.raises(RuntimeError, match=r"exit-code.*previous ca.json was put back"):
        policy_current(primary, PATH, "https://ca.local:9000", _policy())  # type: ignore[arg-type]
    assert "etcd-pki-k8s-peer" in written[1]
    assert "etcd-pki-k8s-peer" not in written[-1]
    assert not primary.logged
    # When step-ca comes back, the policy stays.
    primary, written = _primary(config, refused=None)
    policy_current(primary, PATH, "https://ca.local:9000", _policy())  # type: ignore[arg-type]
    assert len(written) == 2 and primary.logged
