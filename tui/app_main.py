"""Opens the Textual app; kept apart so the headless commands never import textual."""
from __future__ import annotations


def run_app() -> int:
    from .app import InitlabApp

    app = InitlabApp()
    app.run()
    return app.return_code or 0     # 1 when the app stopped on an error, so that a script sees it
