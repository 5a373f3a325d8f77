"""`initlab`: no subcommand opens the app; probe, train, gain, presets and the rest run headless."""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Sequence


def one_line(text: str) -> str:
    """Text safe to print as one line: control and other unprintable characters (a newline, an escape sequence
    from a pasted argument) are written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class OneLineParser(argparse.ArgumentParser):
    """argparse that refuses bad input with one line on stderr and exit status 2, and takes a value that starts
    with a minus and a digit, a point or inf/nan (-1,2 or -1e3 or -inf) as a value, not as an unknown flag."""

    def __init__(self, *args, **kwargs) -> None:
        # no abbreviations: `probe --out x.json` was taken as --out-features (probe has no --out)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)
        self.argv: list[str] = []       # the arguments being parsed, so that a refusal can say which flag a value follows

    def error(self, message: str) -> None:   # type: ignore[override]
        say_error(self._with_flag(message))
        raise SystemExit(2)

    def _with_flag(self, message: str) -> str:
        """"unrecognized arguments: yes" after a switch (--bias yes) becomes what the switch takes."""
        prefix = "unrecognized arguments: "
        if not message.startswith(prefix) or not self.argv:
            return message
        extra = message[len(prefix):].split(" ")[0]
        if extra.startswith("-"):           # a flag of its own (mistyped, say), not a value given to a switch
            return message
        switches = self._switches()
        action, flag = None, ""
        for at in (i for i, tok in enumerate(self.argv) if tok == extra and i > 0):
            flag = self.argv[at - 1]
            action = next((a for a in switches if flag in a.option_strings), None)
            if action is not None:
                break
        if action is None:
            return message
        how = (" or ".join(action.option_strings) if isinstance(action, argparse.BooleanOptionalAction)
               else f"{flag} alone")
        return f"{action.dest}: {extra!r} is not allowed; {flag} takes no value (a switch: {how})"

    def _switches(self) -> list[argparse.Action]:
        """Every flag that takes no value, in this parser and its subcommands."""
        out = []
        for a in self._actions:
            if isinstance(a, argparse._SubParsersAction):
                for p in a.choices.values():
                    out += [b for b in p._actions if b.nargs == 0 and b.option_strings]
            elif a.nargs == 0 and a.option_strings:
                out.append(a)
        return out


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("initlab")
    except PackageNotFoundError:     # run from a checkout that was not installed
        return "unknown (not installed)"


def build_parser() -> OneLineParser:
    from . import commands

    parser = OneLineParser(prog="initlab", description="A terminal lab for gradient stability in deep networks.")
    parser.add_argument("-V", "--version", action="version", version=f"initlab {version()}")
    parser.add_argument("--config", dest="app_config", metavar="FILE.toml",
                        help="open the app with this experiment's settings (w in the app writes one)")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser, metavar="COMMAND")
    for mod in commands.ALL:
        mod.register(sub)
    return parser


def say_error(text: str) -> None:
    """One line on stderr, when there is a stderr (a closed one leaves only the exit status to say it)."""
    if sys.stderr is not None:
        try:
            sys.stderr.write(f"initlab: error: {one_line(text)}\n")
        except (OSError, ValueError):
            pass


def setting_problem(app: bool) -> str | None:
    """What in the process's surroundings stops a run before anything loads, in a line; None when nothing does."""
    try:
        os.getcwd()
    except FileNotFoundError:       # torch's libraries fail to load from a deleted folder, and files go nowhere
        return "the current folder no longer exists (deleted?): cd to another and run it again"
    if app and not os.environ.get("TEXTUAL_DRIVER"):     # a driver of its own (initlab serve's) needs no terminal
        # the app reads keys from stdin, draws on stderr and takes its size from stdout: else it hangs, draws into
        # a file, or draws at 80 x 24 whatever the window
        bad = [name for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout), ("stderr", sys.stderr))
               if stream is None or not stream.isatty()]
        if bad:
            names = " and ".join(bad) if len(bad) < 3 else f"{bad[0]}, {bad[1]} and {bad[2]}"
            return (f"the app needs a terminal, and {names} {'is' if len(bad) == 1 else 'are'} not one "
                    "(ssh -t, no redirection of them); the commands (initlab probe, train, ...) run without one")
        if os.environ.get("TERM") == "dumb":        # it would send full-screen control codes and colours all the same
            return ("the app draws on the terminal, and TERM=dumb says this one cannot; the commands (initlab probe, "
                    "train, ...) run on any")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:       # ctrl-c while the modules load, before a command could catch it
        if sys.stderr is not None:
            sys.stderr.write("\ninitlab: interrupted\n")
        return 130


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    problem = setting_problem(app=not argv)
    if problem:
        say_error(problem)
        return 2
    parser = build_parser()
    if not argv:
        from .app_main import run_app

        return run_app()
    parser.argv = argv
    args = parser.parse_args(argv)
    args.argv = argv            # which of a command's own flags were given: those win over its config file
    if args.command is not None and args.app_config is not None:
        # before a command it would be the app's, and the command would run without it
        say_error(f"config: {args.app_config!r} is not allowed before the command; after it: initlab "
                  f"{args.command} --config {args.app_config} (before any command, --config opens the app)")
        return 2
    if args.command is None and args.app_config is not None:
        from initlab.engine.spec import SpecError

        from .app_main import app_config, run_app

        try:        # the file first: a script that checks it needs no terminal to be told what is wrong with it
            cfg, extras, opened, preset = app_config(args.app_config)
        except SpecError as e:
            say_error(str(e))
            return 2
        problem = setting_problem(app=True)
        if problem:
            say_error(problem)
            return 2
        return run_app(cfg, extras, opened, preset)
    if args.command is None:
        parser.print_help()
        return 0
    from initlab.engine.spec import SpecError

    from .commands.common import as_typed, prepare

    try:
        prepare(args)
        return int(args.func(args) or 0)
    except SpecError as e:
        say_error(str(as_typed(e, args)))
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("initlab: interrupted\n")
        return 130
    except Exception as e:     # a failure at run time (out of memory, a user's model raising): one line, status 1
        from initlab.engine.session import describe_error

        say_error(describe_error(e))
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
