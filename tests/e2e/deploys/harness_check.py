"""A small deploy that proves the harness: one file and one directory on every host."""

from pyinfra import host
from pyinfra.operations import files

files.directory(name="Harness directory", path="/var/lib/pki-harness", mode="0750")
files.put(
    name="Harness marker",
    src=__import__("io").StringIO(f"host={host.name}\n"),
    dest="/var/lib/pki-harness/marker",
    mode="0640",
)
