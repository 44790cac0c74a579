"""Settings of the Docker sandbox (every host of inventories/sandbox.py is in group `sandbox`)."""
