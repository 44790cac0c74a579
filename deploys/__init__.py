"""Entry points: one pyinfra deploy file per job."""
