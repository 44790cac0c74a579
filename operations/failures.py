"""How a run-time step (a Python callback) reports a failure: in red under its host."""

from __future__ import annotations

from pyinfra import logger
from pyinfra.api.host import Host


def failed(on: Host, message: str) -> bool:
    """Log `message` as an error under `on`; False, for a callback to return."""
    on.log_styled(message, fg="red", log_func=logger.error)
    return False
