"""Opens the Textual app; kept apart so the headless commands never import textual."""
from __future__ import annotations

from typing import Any


def app_config(path: str) -> Any:
    """The Config a TOML experiment gives the app (`initlab --config FILE`): its settings over its preset's, or over
    the app's own defaults; raises SpecError naming the field."""
    from initlab.engine import presets, spec

    from .app import APP_DEFAULTS

    flat = spec.read_toml(path)
    name = flat.pop("preset", None)
    if name is not None and name not in presets.PRESETS:
        raise spec.SpecError("preset", name, "a network preset for the app: " + ", ".join(presets.PRESETS)
                             + f" ({name} runs from the command line)")
    return spec.from_mapping(flat, presets.PRESETS[name].config if name else APP_DEFAULTS)


def run_app(config: Any = None) -> int:
    from .app import InitlabApp

    app = InitlabApp(config)
    app.run()
    return app.return_code or 0     # 1 when the app stopped on an error, so that a script sees it
