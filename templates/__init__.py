"""Jinja2 templates rendered on the controller (systemd units, configuration)."""

from __future__ import annotations

import shlex
import unicodedata
from collections.abc import Callable
from pathlib import Path

import jinja2

DIRECTORY = Path(__file__).resolve().parent

# Files read line by line, where a value that ends a line would add a setting of its own: a
# unit (systemd ends a line at \r as well) or an environment file (one variable a line).
LINE_FILES = (".service.j2", ".timer.j2", ".env.j2")


def url_host(address: str) -> str:
    """An address or name as the host of a URL: an IPv6 address in brackets."""
    return f"[{address}]" if ":" in address else address


def control_character(text: str) -> str | None:
    """The first character of `text` that would end or change a line where values land
    (unit files, environment files, scripts): a control or format character, or a line or
    paragraph separator."""
    for character in text:
        if unicodedata.category(character) in ("Cc", "Cf", "Zl", "Zp"):
            return character
    return None


def one_line(value: object) -> object:
    """What a unit or an environment file gets of a value: the value, refused when it holds
    a character that would end or change the line (settings refuse them first; this holds
    for every value, settings or not)."""
    text = "" if value is None else str(value)
    found = control_character(text)
    if found is not None:
        raise ValueError(f"{text!r} holds {found!r}: not written into a unit or env file")
    return value


def _environment(finalize: Callable[[object], object] | None = None) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(DIRECTORY)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        finalize=finalize,
    )
    # `{{ value | sh }}`: a value as one shell word, whatever it holds.
    environment.filters["sh"] = lambda value: shlex.quote(str(value))
    # `https://{{ address | url_host }}:{{ port }}`
    environment.filters["url_host"] = url_host
    return environment


_scripts = _environment()
_line_files = _environment(finalize=one_line)


def render(template: str, **values: object) -> str:
    """The text of `template` (e.g. `step-renew.service.j2`) with `values`."""
    environment = _line_files if template.endswith(LINE_FILES) else _scripts
    return environment.get_template(template).render(**values)


def render_text(source: str, **values: object) -> str:
    """Template text of one's own (it may import the macros) with `values`: what a test runs
    of a macro alone."""
    return _scripts.from_string(source).render(**values)
