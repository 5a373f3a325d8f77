"""The engine never loads the terminal libraries, and the app-facing modules leave torch for later."""
from __future__ import annotations

import json
import subprocess
import sys

ENGINE_MODULES = ("spec", "activations", "inits", "models", "device", "stats", "verdict", "probe", "presets",
                  "events", "session", "jobs", "export")


def loaded_after(imports: list[str], watch: list[str]) -> list[str]:
    """Import the modules in a fresh interpreter and return which of `watch` ended up in sys.modules."""
    code = "\n".join([f"import {m}" for m in imports] + [
        "import json, sys",
        f"print(json.dumps([m for m in {watch!r} if m in sys.modules]))",
    ])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_engine_does_not_import_textual_or_rich():
    mods = ["initlab.engine"] + [f"initlab.engine.{m}" for m in ENGINE_MODULES]
    # torch shows that the engine really was imported; the terminal libraries must not be
    assert loaded_after(mods, ["torch", "textual", "rich"]) == ["torch"]


def test_session_events_jobs_leave_torch_unloaded():
    mods = ["initlab.engine.session", "initlab.engine.events", "initlab.engine.jobs"]
    assert loaded_after(mods, ["torch", "textual", "rich"]) == []


def test_every_package_folder_is_packaged():
    """A regular (non-editable) install ships only the packages pyproject.toml lists: every source folder with an
    __init__.py must be among them, mapped to its folder, or the installed command line cannot import it."""
    import os

    import pytest

    tomllib = pytest.importorskip("tomllib")      # Python 3.11 and later
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        tool = tomllib.load(f)["tool"]["setuptools"]
    folders = {os.path.relpath(d, root) for top in ("engine", "tui") for d, _dirs, files in os.walk(os.path.join(root, top))
               if "__init__.py" in files}
    mapped = {tool["package-dir"][p] for p in tool["packages"]}
    assert folders == mapped
