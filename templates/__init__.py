"""Jinja2 templates rendered by the operations (systemd units, configuration)."""
