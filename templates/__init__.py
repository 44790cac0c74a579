"""Jinja2 templates rendered on the controller (systemd units, configuration)."""

from __future__ import annotations

import contextlib
import os
import shlex
import unicodedata
from collections.abc import Callable
from pathlib import Path

import jinja2
import jinja2.bccache

DIRECTORY = Path(__file__).resolve().parent

# Files read line by line, where a value that ends a line would add a setting of its own: a
# unit (systemd ends a line at \r as well) or an environment file (one variable a line).
LINE_FILES = (".service.j2", ".timer.j2", ".env.j2", ".cnf.j2")


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


def controller_cache(name: str) -> Path:
    """A directory of this tool's under the controller user's cache (`$XDG_CACHE_HOME`, else
    `~/.cache`), for what one run keeps for the next."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "etcd-step-pki" / name


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """Templates compiled by an earlier run, kept in the controller's cache (Jinja checks
    each against its source): a run then compiles none of the twenty or so it renders. One
    directory per environment: Jinja's key is the template's name, and the code compiled
    depends on the environment (`finalize`). A cache that cannot be read or written is only
    not used."""

    def __init__(self, environment: str) -> None:
        directory = controller_cache("templates") / environment
        with contextlib.suppress(OSError):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        super().__init__(str(directory))

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, ValueError, EOFError):
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def _environment(
    name: str, finalize: Callable[[object], object] | None = None
) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(DIRECTORY)),
        bytecode_cache=_CompiledTemplates(name),
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


_scripts = _environment("scripts")
_line_files = _environment("line-files", finalize=one_line)


def render(template: str, **values: object) -> str:
    """The text of `template` (e.g. `step-renew.service.j2`) with `values`."""
    environment = _line_files if template.endswith(LINE_FILES) else _scripts
    return environment.get_template(template).render(**values)


def render_text(source: str, **values: object) -> str:
    """Template text of one's own (it may import the macros) with `values`: what a test runs
    of a macro alone."""
    return _scripts.from_string(source).render(**values)
