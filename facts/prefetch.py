"""A host's facts read in one round trip: the facts the previous run of the same command line
read on a host are read again, all in one command, at this run's first read there, and the
run's memo (facts/memo.py) answers from them while nothing has changed.

Without it each operation pays one round trip per host for what it reads, about 20 in a run
of `cluster.py` that changes nothing. What a deploy reads on a host depends on the deploy,
the inventory and the settings, and stays the same from one run to the next unless they
change: the list of reads is kept on the controller, per host and command line, under
`$XDG_CACHE_HOME/etcd-step-pki/fact-reads/` (fact names and their arguments only; a read
made with other privileges than the host's own, which might carry a password, is not kept).
A read kept but no longer needed costs its command once; a read not kept is made as before.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyinfra.api import FactBase, StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS
from pyinfra.api.host import Host

from etcd_step_pki.templates import controller_cache
from etcd_step_pki.templates.scripts import script

logger = logging.getLogger(__name__)

# Only facts of these packages are read from a kept list (it names classes to import).
_PACKAGES = ("etcd_step_pki.", "pyinfra.facts.")


@dataclass(frozen=True)
class Read:
    """One fact read: the fact's import path and the arguments it was read with."""

    fact: str
    arguments: str  # JSON, keys sorted

    @classmethod
    def of(cls, fact: type[FactBase[Any]], arguments: dict[str, Any]) -> Read | None:
        """The read, or None when its arguments do not survive JSON unchanged (but for
        tuples, read again as lists: a fact's command takes either)."""
        try:
            text = json.dumps(arguments, sort_keys=True)
        except (TypeError, ValueError):
            return None
        if json.loads(text) != _listed(arguments):
            return None
        return cls(f"{fact.__module__}:{fact.__qualname__}", text)

    def fact_class(self) -> type[FactBase[Any]] | None:
        """The fact's class, when it is a fact of this package or of pyinfra's."""
        module, _, name = self.fact.partition(":")
        if not module.startswith(_PACKAGES):
            return None
        try:
            found = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            return None
        return found if isinstance(found, type) and issubclass(found, FactBase) else None


def _listed(value: Any) -> Any:
    """`value` with its tuples made lists, as JSON gives them back."""
    if isinstance(value, list | tuple):
        return [_listed(item) for item in value]
    if isinstance(value, dict):
        return {key: _listed(item) for key, item in value.items()}
    return value


def _list_path(host: str) -> Path:
    """Where the reads of this command line on this host are kept."""
    words = [word for word in sys.argv[1:] if not word.startswith("-")]
    name = hashlib.sha256(json.dumps([host, words]).encode()).hexdigest()[:32]
    return controller_cache("fact-reads") / f"{name}.json"


@dataclass(frozen=True)
class Kept:
    """What the previous run of this command line read on a host, and which machine the
    host was then (`/etc/machine-id`; None: not known yet): a host made anew under the
    same name is another machine, and reading the old host's facts there is wasted."""

    machine: str | None
    reads: list[Read]


def kept_reads(host: str) -> Kept:
    """The reads the previous run of this command line made on `host` (none if unknown)."""
    try:
        kept = json.loads(_list_path(host).read_text())
        reads = [Read(str(item["fact"]), str(item["arguments"])) for item in kept["reads"]]
        machine = kept.get("machine")
        return Kept(str(machine) if machine else None, reads)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return Kept(None, [])


def keep_reads(host: str, kept: Kept) -> None:
    """Keeps this run's reads on `host` for the next run (best effort: a controller that
    cannot write its cache reads facts one by one, as before)."""
    path = _list_path(host)
    text = json.dumps({"machine": kept.machine, "reads": [vars(read) for read in kept.reads]})
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        scratch = path.with_suffix(f".{os.getpid()}")
        scratch.write_text(text)
        scratch.replace(path)
    except OSError as error:
        logger.debug("fact reads not kept for %s: %s", host, error)


def _command(read: Read) -> tuple[FactBase[Any], dict[str, Any], Any] | None:
    """The fact, its arguments and its command, or None for a read not to batch: an unknown
    fact, one whose command's presence pyinfra checks first, or one with its own shell."""
    cls = read.fact_class()
    if cls is None:
        return None
    fact, arguments = cls(), json.loads(read.arguments)
    try:
        if fact.shell_executable or fact.requires_command(**arguments):
            return None
        command = fact.command(**arguments)
    except Exception as error:  # a stale read is only left out
        logger.debug("fact read %s left out: %s", read, error)
        return None
    return fact, arguments, command


@dataclass
class Batch:
    """What one batch gave: the machine it ran on, each read's value (for the reads whose
    command exited 0; the others are left to be read alone), and, when it took the run's
    lock, the lock's answer (`taken`, `held <holder>`, `failed`; None: not asked)."""

    machine: str | None = None
    values: dict[Read, Any] = field(default_factory=dict)
    lock: str | None = None


def read_all(
    host: Host, kept: Kept, global_arguments: dict[str, Any], holder: str | None = None
) -> Batch:
    """Reads `reads` on `host` in one command (their commands side by side: facts/batch.sh.j2),
    run as the current operation runs its facts; with `holder`, the run's lock on the host is
    taken first, in the same command, and nothing is read unless it is taken. Nothing runs
    when no read can be batched."""
    marker = uuid.uuid4().hex
    commands: list[str] = []
    batch: list[tuple[Read, FactBase[Any]]] = []
    for read in kept.reads:
        made = _command(read)
        if made is None or made[0].check_preconditions(host.state, host):
            continue
        command = made[2]
        commands.append(command.get_raw_value() if isinstance(command, StringCommand) else command)
        batch.append((read, made[0]))
    if not batch:
        return Batch()
    executor = {
        key: value for key, value in global_arguments.items() if key in CONNECTOR_ARGUMENT_KEYS
    }
    try:
        ok, output = host.run_shell_command(
            script(
                "facts/batch.sh.j2",
                mark=marker,
                commands=commands,
                machine=kept.machine or "",
                holder=holder,
            ),
            print_output=host.state.print_fact_output,
            print_input=host.state.print_fact_input,
            **executor,
        )
    except Exception as error:  # then every read is made alone
        logger.debug("fact reads on %s not batched: %s", host.name, error)
        return Batch()
    printed = list(output.stdout_lines) if ok else []
    found = Batch()
    if holder is not None:
        found.lock = printed.pop(0).removeprefix("lock ").strip() if printed else "failed"
        if found.lock != "taken":
            return found
    found.machine = printed[0].strip() if printed else None
    for index, lines in _sections(printed[1:], marker, len(batch)).items():
        read, fact = batch[index]
        try:
            found.values[read] = fact.process(lines) if lines else fact.default()
        except Exception as error:  # read again alone, reported
            logger.debug("fact read %s left out: %s", read, error)
    return found


def _sections(lines: list[str], marker: str, count: int) -> dict[int, list[str]]:
    """Each read's output lines, for the reads whose command exited 0."""
    found: dict[int, list[str]] = {}
    current: int | None = None
    taken: list[str] = []
    for line in lines:
        if current is None:
            index = line.removeprefix(f"{marker}-")
            if index != line and index.isdigit() and int(index) < count:
                current, taken = int(index), []
            continue
        if line.startswith(f"{marker}-{current}-"):
            if line == f"{marker}-{current}-0":
                # Less the line break put before the end marker, when the output ended in one.
                found[current] = taken[:-1] if taken and taken[-1] == "" else taken
            current = None
            continue
        taken.append(line)
    return found
