"""What a Prometheus server holds of this tool: its configuration and the rules file, in one
command."""

from __future__ import annotations

import fnmatch
import posixpath
from typing import Any

import yaml
from pyinfra.api import FactBase, StringCommand

from etcd_step_pki.facts.sections import MARK, sections
from etcd_step_pki.templates.scripts import script as run_script


class PrometheusSetup(FactBase[dict[str, Any]]):
    """`{"config": text | None, "rules_sha256": str | None, "promtool": bool,
    "active": bool}`: Prometheus's configuration file, the SHA-256 of the rules file,
    whether promtool is installed and whether the service runs."""

    @staticmethod
    def default() -> dict[str, Any]:
        return {"config": None, "rules_sha256": None, "promtool": False, "active": False}

    def command(self, config: str, rules_file: str, service: str) -> StringCommand:
        return run_script(
            "facts/prometheus-setup.sh.j2",
            mark=MARK,
            service=service,
            rules=rules_file,
            config=config,
        )

    def process(self, output: list[str]) -> dict[str, Any]:
        found = sections(output)
        config = found.get("config")
        rules: list[str | None] = [*found.get("rules", []), None]
        return {
            "config": "\n".join(config) + "\n" if config else None,
            "rules_sha256": rules[0],
            "promtool": "promtool" in found.get("tools", []),
            "active": "active" in found.get("tools", []),
        }


def loads_rules(config_text: str, config_path: str, rules_file: str) -> bool:
    """Whether a prometheus.yml loads `rules_file` through its `rule_files` (paths or globs,
    relative to the configuration's directory); False for a file that is no YAML mapping."""
    try:
        config = yaml.safe_load(config_text)
    except yaml.YAMLError:
        return False
    if not isinstance(config, dict):
        return False
    base = posixpath.dirname(config_path)
    for entry in config.get("rule_files") or []:
        pattern = posixpath.normpath(posixpath.join(base, str(entry)))
        if fnmatch.fnmatchcase(posixpath.normpath(rules_file), pattern):
            return True
    return False
