"""Representative renderings of every script template, for shellcheck (test_shell_scripts.py).

Each module here holds `SAMPLES`: a template's file name (as under templates/) to a function
that renders it through the code that renders it for a deploy, with representative settings.
"""
