"""The step CLI of a run: installed by the first component that needs it on a host, in one
operation, which a later component of the same run reuses rather than adding its own."""

from __future__ import annotations

from pyinfra import host
from pyinfra.api.operation import OperationMeta

from deploys.settings import Settings
from operations.binaries import release_binaries

_installed: dict[tuple[int, str], OperationMeta] = {}


def step_binary(settings: Settings) -> OperationMeta:
    """step, on every host that has certificates or a CA: once a host and a run (a later
    component gets the same operation back)."""
    key = (id(host.state), settings.host)
    if key not in _installed:
        if not any(state == id(host.state) for state, _ in _installed):
            _installed.clear()
        _installed[key] = release_binaries(
            name="Install step", artifacts=[settings.step], bin_dir=settings.bin_dir
        )
    return _installed[key]
