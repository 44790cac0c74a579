"""A key and its certificate are one pair on the disk (templates/macros/key_pair.sh.j2): the
scripts run here on a scratch directory, and the layout the deploy trusts is judged from
what the fact reports."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from etcd_step_pki.facts.certificates import NodeCertificates
from etcd_step_pki.facts.sections import MARK
from etcd_step_pki.operations.certificates import Certificate
from etcd_step_pki.operations.key_pairs import pair_layout, script_paths
from etcd_step_pki.templates import render_text
from etcd_step_pki.templates.scripts import script

# The shell functions alone, for a scratch directory (the issuance script also needs step).
FUNCTIONS = '{% from "macros/key_pair.sh.j2" import key_pair_functions %}{{ key_pair_functions() }}'


def _item(ssl: Path) -> Certificate:
    return Certificate("peer", "n", f"{ssl}/n-peer.crt", f"{ssl}/n-peer.key")


def _bash(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=True)


def _adopt(ssl: Path) -> None:
    rendered = script("certificates-adopt.sh.j2", certificates=script_paths([_item(ssl)]))
    _bash(rendered.get_raw_value())


def _functions() -> str:
    return render_text(FUNCTIONS)


def test_plain_files_are_adopted_as_the_first_generation(tmp_path: Path) -> None:
    (tmp_path / "n-peer.crt").write_text("C0\n")
    (tmp_path / "n-peer.key").write_text("K0\n")
    _adopt(tmp_path)
    generation = os.readlink(tmp_path / "n-peer.pair")
    assert generation.startswith(".n-peer.") and len(generation) == len(".n-peer.") + 6
    assert os.readlink(tmp_path / "n-peer.crt") == "n-peer.pair/crt"
    assert os.readlink(tmp_path / "n-peer.key") == "n-peer.pair/key"
    assert (tmp_path / "n-peer.crt").read_text() == "C0\n"
    assert (tmp_path / "n-peer.key").read_text() == "K0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        generation, "n-peer.crt", "n-peer.key", "n-peer.pair"
    ]  # fmt: skip
    _adopt(tmp_path)  # a second run changes nothing
    assert os.readlink(tmp_path / "n-peer.pair") == generation


def test_a_swap_replaces_key_and_certificate_together_and_drops_the_old(tmp_path: Path) -> None:
    (tmp_path / "n-peer.crt").write_text("C0\n")
    (tmp_path / "n-peer.key").write_text("K0\n")
    _adopt(tmp_path)
    old = os.readlink(tmp_path / "n-peer.pair")
    # A link a foreign hand left among the generations goes; what it leads to stays.
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "file").write_text("kept\n")
    (tmp_path / ".n-peer.planted").symlink_to(kept)
    pair = tmp_path / "n-peer.pair"
    _bash(
        _functions()
        + f'\ngen=$(mktemp -d "$(pair_generations {pair})XXXXXX")\n'
        + 'echo C1 > "$gen/crt"; echo K1 > "$gen/key"\n'
        + f'pair_swapped "$gen" {pair}\n'
    )
    assert (tmp_path / "n-peer.crt").read_text() == "C1\n"
    assert (tmp_path / "n-peer.key").read_text() == "K1\n"
    assert not (tmp_path / old).exists() and not (tmp_path / ".n-peer.planted").is_symlink()
    assert (kept / "file").read_text() == "kept\n"
    _bash(_functions() + f"\npair_removed {pair}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "n-peer.crt", "n-peer.key"]


def _entry(crt: str, key: str, generation: str, kind: str) -> dict[str, object]:
    return {"links": [crt, key, generation, kind]}


@pytest.mark.parametrize(
    ("links", "layout"),
    [
        (("n-peer.pair/crt", "n-peer.pair/key", ".n-peer.Ab3xYz", "directory root"), "paired"),
        (("", "", "", ""), "plain"),
        # The generation a directory of the account's, or a link, or named otherwise.
        (("n-peer.pair/crt", "n-peer.pair/key", ".n-peer.Ab3xYz", "directory etcd"), "foreign"),
        (("n-peer.pair/crt", "n-peer.pair/key", ".n-peer.Ab3xYz", "symbolic link root"), "foreign"),
        (("n-peer.pair/crt", "n-peer.pair/key", "/etc", "directory root"), "foreign"),
        (("n-peer.pair/crt", "n-peer.pair/key", ".n-peer.planted", "directory root"), "foreign"),
        # A name that leads elsewhere, or one plain file beside a link.
        (("/etc/shadow", "n-peer.pair/key", ".n-peer.Ab3xYz", "directory root"), "foreign"),
        (("", "n-peer.pair/key", ".n-peer.Ab3xYz", "directory root"), "foreign"),
    ],
)
def test_only_the_deploys_own_layout_is_trusted(
    links: tuple[str, str, str, str], layout: str
) -> None:
    assert pair_layout(_entry(*links), _item(Path("/etc/etcd/ssl"))) == layout


def test_the_fact_reports_where_the_names_lead() -> None:
    output = [
        "n1",
        "n1.example",
        "@@@cert /ssl/n-peer.crt",
        "@@@names /ssl/n-peer.crt",
        "n-peer.pair/crt",
        "n-peer.pair/key",
        ".n-peer.Ab3xYz",
        "directory root",
    ]
    found = NodeCertificates().process([line.replace("@@@", MARK) for line in output])
    assert found["files"]["/ssl/n-peer.crt"]["links"] == [
        "n-peer.pair/crt", "n-peer.pair/key", ".n-peer.Ab3xYz", "directory root"
    ]  # fmt: skip
