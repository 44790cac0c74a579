"""Jinja2 templates rendered on the controller (systemd units, configuration)."""

from __future__ import annotations

import shlex
from pathlib import Path

import jinja2

DIRECTORY = Path(__file__).resolve().parent

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(DIRECTORY)),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)


# `{{ value | sh }}`: a value as one shell word, whatever it holds.
_environment.filters["sh"] = lambda value: shlex.quote(str(value))


def render(template: str, **values: object) -> str:
    """The text of `template` (e.g. `step-renew.service.j2`) with `values`."""
    return _environment.get_template(template).render(**values)


def render_text(source: str, **values: object) -> str:
    """Template text of one's own (it may import the macros) with `values`: what a test runs
    of a macro alone."""
    return _environment.from_string(source).render(**values)
