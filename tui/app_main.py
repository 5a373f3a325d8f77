"""Opens the Textual app; kept apart so the headless commands never import textual."""
from __future__ import annotations


def run_app() -> int:
    from .app import InitlabApp

    InitlabApp().run()
    return 0
