"""Properties of the settings, over generated values: any value of any setting gives either a
SettingsError that names the setting or valid settings, never another exception; and a value
that is accepted reaches the rendered units, configuration and scripts as one shell word."""

from __future__ import annotations

import re
import shlex

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcd_step_pki.deploys.components import arguments
from etcd_step_pki.deploys.components.ca import step_ca_unit
from etcd_step_pki.deploys.components.etcd import member_unit
from etcd_step_pki.deploys.settings import DEFAULTS, Settings, SettingsError, validate_inventory
from etcd_step_pki.operations.etcd.configuration import member_config
from etcd_step_pki.operations.renewal import metrics_script, unit_files
from tests.unit.test_settings import _inventory

# Characters a shell, a unit file or YAML would read as more than text.
SPECIAL = " \t;&|$`'\"\\(){}<>*?!#~=%,:@\n"
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
# Settings checked together: an error about one may name the other.
PAIRS = {
    "etcd_client_port": "etcd_peer_port",
    "etcd_peer_port": "etcd_client_port",
    "step_ca_port": "etcd_client_port",
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES, value=VALUES)
def test_a_value_is_refused_naming_its_setting_or_accepted(name: str, value: object) -> None:
    try:
        validate_inventory(_inventory({name: value}))
    except SettingsError as error:
        named = {name, PAIRS.get(name, name)}
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
