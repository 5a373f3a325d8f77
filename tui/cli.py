"""`initlab`: no subcommand opens the app; probe, train, gain, presets and the rest run headless."""
from __future__ import annotations

import argparse
import re
import sys
from typing import Sequence

from . import commands


def one_line(text: str) -> str:
    """Text safe to print as one line: control and other unprintable characters (a newline, an escape sequence
    from a pasted argument) are written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class OneLineParser(argparse.ArgumentParser):
    """argparse that refuses bad input with one line on stderr and exit status 2, and takes a value that starts
    with a minus and a digit, a point or inf/nan (-1,2 or -1e3 or -inf) as a value, not as an unknown flag."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)

    def error(self, message: str) -> None:   # type: ignore[override]
        sys.stderr.write(f"initlab: error: {one_line(message)}\n")
        raise SystemExit(2)


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="initlab", description="A terminal lab for gradient stability in deep networks.")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser, metavar="COMMAND")
    for mod in commands.ALL:
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        from .app_main import run_app

        return run_app()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from initlab.engine.spec import SpecError

    from .commands.common import prepare

    try:
        prepare(args)
        return int(args.func(args) or 0)
    except SpecError as e:
        sys.stderr.write(f"initlab: error: {one_line(str(e))}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("initlab: interrupted\n")
        return 130
    except Exception as e:     # a failure at run time (out of memory, a user's model raising): one line, status 1
        from initlab.engine.session import describe_error

        sys.stderr.write(f"initlab: error: {one_line(describe_error(e))}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
