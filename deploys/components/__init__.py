"""Reusable @deploy units that the entry points in deploys/ compose."""
