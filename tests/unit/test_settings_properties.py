"""Properties of the settings, over generated values: any value of any setting gives either a
SettingsError that names the setting or valid settings, never another exception; and a value
that is accepted reaches the rendered units, configuration and scripts as one shell word."""

from __future__ import annotations

import re
import shlex

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyinfra.api import Inventory

from etcd_step_pki.deploys.components import arguments
from etcd_step_pki.deploys.components.ca import step_ca_unit
from etcd_step_pki.deploys.components.etcd import member_unit
from etcd_step_pki.deploys.settings import DEFAULTS, Settings, SettingsError, validate_inventory
from etcd_step_pki.deploys.settings.model import HostSettings
from etcd_step_pki.operations.etcd.configuration import member_config
from etcd_step_pki.operations.renewal import metrics_script, unit_files
from tests.unit.test_settings import _inventory

# Characters a shell, a unit file or YAML would read as more than text.
SPECIAL = " \t;&|$`'\"\\(){}<>*?!#~=%,:@\n\r\x00\x0b\x85\u2028"
TEXT = st.text(alphabet=st.sampled_from("abcz019-_./" + SPECIAL).map(str), min_size=0, max_size=24)
HOSTILE = st.one_of(
    TEXT,
    st.sampled_from(["/x; touch /tmp/pwn", "$(id)", "`id`", "a b", "/opt/bin'", "/run/x y"]),
    TEXT.map(lambda t: "/" + t),  # path-shaped
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=70000),
    HOSTILE,
    st.lists(HOSTILE, max_size=3),
    st.dictionaries(HOSTILE, HOSTILE, max_size=2),
)
NAMES = st.sampled_from(sorted(DEFAULTS))
# Settings checked together: an error about one may name another (a port taken twice).
PORTS = {"etcd_client_port", "etcd_peer_port", "step_ca_port", "etcd_metrics_port"}
PAIRS = {name: PORTS for name in PORTS}
# Another cluster name: the members' host names (etcd-k8s-<n>) no longer give their index.
PAIRS["etcd_cluster_name"] = {"etcd_member_index"}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES, value=VALUES)
def test_a_value_is_refused_naming_its_setting_or_accepted(name: str, value: object) -> None:
    try:
        validate_inventory(_inventory({name: value}))
    except SettingsError as error:
        named = {name, *PAIRS.get(name, ())}
        assert any(f"`{n}`" in str(error) for n in named), (name, value, str(error))


def _rendered(found: Settings) -> list[str]:
    """Every text rendered from a host's settings that a shell or systemd reads."""
    node = arguments.step_node(found)
    schedule = arguments.schedule(found)
    texts = list(unit_files(found.certificates, node, found.ca_url, schedule).values())
    texts.append(metrics_script(node, schedule))
    me = arguments.member(found)
    texts.append(member_unit(found))
    texts.append(member_config(me, arguments.member_options(found), "x", "new"))
    texts.append(step_ca_unit(found))
    return texts


def _one_word(text: str, value: str, baseline: set[str]) -> bool:
    """Whether every line of `text` that holds `value` holds it inside one shell word (a
    line that is in the `baseline`, rendered without the value, holds it by chance)."""
    for line in text.splitlines():
        if value not in line or line in baseline or line.lstrip().startswith("#"):
            continue  # a comment (a unit's or a script's) is read by no one
        setting = re.match(r"([A-Z][A-Za-z]+)=(.*)", line)
        if setting and not setting.group(1).startswith("Exec"):
            continue  # a unit setting other than a command line takes the rest of its line
        body = setting.group(2) if setting else line
        lexer = shlex.shlex(body, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            words = list(lexer)
        except ValueError:  # an unbalanced quote: the value broke out of its quoting
            return False
        if not any(value in word for word in words):
            return False
    return True


_BASELINE = {
    line
    for text in _rendered(validate_inventory(_inventory({}))["etcd-k8s-1"])
    for line in text.splitlines()
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES, value=HOSTILE)
def test_an_accepted_value_reaches_shells_and_units_as_one_word(name: str, value: str) -> None:
    try:
        found = validate_inventory(_inventory({name: value}))["etcd-k8s-1"]
    except SettingsError:
        return
    if len(value) < 2 or not set(value) & set(SPECIAL):
        return  # a plain word cannot be split
    for text in _rendered(found):
        assert _one_word(text, value, _BASELINE), (name, value, text)


# What ends or changes a line where a value lands: in a unit (systemd ends a line at \r too),
# an environment file, a script; NUL, escape, NEL and the Unicode line separator.
CONTROL = ["\n", "\r", "\x00", "\x1b", "\x85", "\u2028", "\t"]


def test_no_setting_takes_a_control_character_anywhere_in_its_value() -> None:
    """Whatever a setting's kind, a control character in its value, in an item of its list
    or in a key or value of its mapping is refused, naming the setting."""
    names = sorted(HostSettings.model_fields)
    for name in names:
        for character in CONTROL:
            for value in (
                f"ok{character}",
                f"a{character}ExecStartPost=+/bin/sh",
                [f"x{character}"],
                {f"Gate{character}": True},
                {"k8s": {"etcd_compaction_retention": f"1h{character}"}},
            ):
                try:
                    validate_inventory(_inventory({name: value}))
                except SettingsError as error:
                    assert f"`{name}`" in str(error), (name, value, str(error))
                    assert "control character" in str(error), (name, value, str(error))
                else:
                    raise AssertionError(f"{name}={value!r} was accepted")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("node_addresses", ["fe80::1%eth0\nETCD_X=1"]),
        ("node_addresses", ["fe80::1%eth0 x"]),
        ("step_ca_url", "https://ca.example:9000 --root /tmp/x"),
        ("step_ca_url", "https://ca.example:9000/%t"),
        ("step_ca_url", "https://ca.example:90x0"),
        ("artifact_mirror_url", "http://mirror'.example/"),
        ("bin_dir", "/opt/bin "),
        ("etcd_version", "3.6.14 "),
        ("step_cert_default_duration", "17520h "),
        ("cfssl_cert_name", "{name} {kind}.pem"),
        ("ca_backup_prefix", "step-ca/../other"),
        ("ca_backup_prefix", "step ca"),
        ("etcd_cluster_name", "k8s "),
        ("step_ca_user", "step "),
    ],
)
def test_each_kind_is_matched_whole(name: str, value: object) -> None:
    """White space, quotes, `%` and trailing text where a kind has none are refused."""
    try:
        validate_inventory(_inventory({name: value}))
    except SettingsError as error:
        assert f"`{name}`" in str(error)
    else:
        raise AssertionError(f"{name}={value!r} was accepted")


def test_an_inventory_host_name_must_be_a_name() -> None:
    inventory = Inventory(
        ([("etcd-k8s-1", {"ssh_hostname": "10.0.0.1"}), ("bad\nname", {})], {}),
        etcd=(["etcd-k8s-1"], {}),
        etcd_clients=(["bad\nname"], {}),
        etcd_cert_managers=(["etcd-k8s-1"], {}),
    )
    with pytest.raises(SettingsError, match="inventory host name"):
        validate_inventory(inventory)


def test_ipv6_addresses_are_bracketed_in_every_url() -> None:
    inventory = Inventory(
        (
            [
                ("etcd-k8s-1", {"ssh_hostname": "fd00::11"}),
                ("etcd-k8s-2", {"ssh_hostname": "fd00::12"}),
            ],
            {},
        ),
        etcd=(["etcd-k8s-1", "etcd-k8s-2"], {}),
        etcd_cert_managers=(["etcd-k8s-1"], {}),
    )
    found = validate_inventory(inventory)["etcd-k8s-1"]
    config = member_config(arguments.member(found), arguments.member_options(found), "x", "new")
    assert "ETCD_LISTEN_PEER_URLS=https://[fd00::11]:2380\n" in config
    assert "ETCD_ADVERTISE_CLIENT_URLS=https://[fd00::11]:2379\n" in config
    assert "ETCD_INITIAL_ADVERTISE_PEER_URLS=https://[fd00::11]:2380\n" in config
    assert arguments.member(found).peer_url == "https://[fd00::11]:2380"
    assert "https://fd00" not in config


def test_a_unit_or_environment_file_never_takes_a_line_ending_value() -> None:
    """Whatever reaches a unit or an env file (settings are refused first): refused when
    rendered, not written."""
    from etcd_step_pki.templates import render

    for character in CONTROL:
        with pytest.raises(ValueError, match="not written into a unit or env file"):
            render(
                "etcd-member.service.j2",
                member="etcd-k8s-1",
                run_as="etcd",
                config="/etc/etcd/etcd-k8s-1.env",
                etcd=f"/opt/bin/etcd{character}ExecStartPost=/bin/sh",
                data_dir="/var/lib/etcd/etcd-k8s-1",
            )
