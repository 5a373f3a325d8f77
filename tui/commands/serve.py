"""`initlab serve`: the app in a browser through textual-serve, on this machine only unless told otherwise."""
from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import shlex
import sys
from typing import Any

from initlab.engine.spec import SpecError

INSTALL_HINT = 'initlab: error: serve needs textual-serve: pip install "textual-serve>=1.1"'


class MissingExtra(Exception):
    """textual-serve, the optional `serve` extra, is not installed."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the app to a browser (needs textual-serve: the serve extra)",
                       description=__doc__ + " Each browser tab runs its own app. Over SSH, forward the port: "
                       "ssh -L 8000:localhost:8000 HOST, then open http://localhost:8000 here.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; anything else is reachable by others, and the "
                   "app has no authentication)")
    p.add_argument("--port", default="8000", help="port to listen on (default 8000)")
    p.add_argument("--public-url", dest="public_url", default=None, metavar="URL",
                   help="the address browsers open, when it differs from http://HOST:PORT (a forwarded port, "
                   "a proxy)")
    p.set_defaults(func=run)


def parse_port(raw: Any) -> int:
    from initlab.engine.spec import plain_int

    try:
        port = plain_int(raw)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise SpecError("port", raw, "an integer in [1, 65535]")
    return port


def check_host(raw: Any) -> str:
    host = str(raw).strip()
    # an empty host makes aiohttp listen on every interface: say it rather than do it silently
    if not host or any(c.isspace() for c in host):
        raise SpecError("host", raw, "an address or host name to listen on, such as 127.0.0.1")
    return host


def check_public_url(raw: str | None) -> str | None:
    """The address browsers open: an http(s) URL with a host (the page loads its scripts and socket from it)."""
    if raw is None:
        return None
    from urllib.parse import urlsplit

    url = raw.strip()
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and not any(c.isspace() for c in url) \
            and not {"?", "#"} & set(url) and parts.port != 0     # .port raises past 65535
    except ValueError:
        ok = False
    if not ok:
        raise SpecError("public_url", raw, "an http:// or https:// URL with a host and no query, such as "
                                           "http://localhost:8000")
    return url.rstrip("/")


def is_local(host: str) -> bool:
    """True when only this machine can connect: localhost or a loopback address."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, port: int) -> str | None:
    """The one-line warning for an address other computers can reach, or None for a local one."""
    if is_local(host):
        return None
    return (f"initlab: warning: listening on {host}:{port}, which other computers may reach; the app has no "
            f"authentication, so anyone who can connect can run experiments on this machine (and the code of "
            f"any --model file)")


def app_command() -> str:
    """The shell command textual-serve starts for each browser: the `initlab` app of this installation."""
    script = os.path.join(os.path.dirname(sys.executable), "initlab")
    if os.path.isfile(script) and os.access(script, os.X_OK):
        return shlex.quote(script)
    return f"{shlex.quote(sys.executable)} -m initlab.tui.cli"


def make_server(host: Any = "127.0.0.1", port: Any = 8000, public_url: str | None = None):
    """A textual-serve Server for the app, not yet serving; MissingExtra when textual-serve is absent."""
    host, port, public_url = check_host(host), parse_port(port), check_public_url(public_url)
    try:
        from textual_serve.server import Server
    except ImportError:
        raise MissingExtra() from None
    if public_url is None and ":" in host:      # an IPv6 address goes in brackets in a URL
        public_url = f"http://[{host.strip('[]')}]:{port}"
    return Server(app_command(), host=host, port=port, title="initlab", public_url=public_url)


def run(args: argparse.Namespace) -> int:
    try:
        server = make_server(args.host, args.port, args.public_url)
    except MissingExtra:
        sys.stderr.write(INSTALL_HINT + "\n")
        return 2
    problem = bind_problem(server.host, server.port)
    if problem:     # said before textual-serve's banner, which would announce a server that never serves
        raise SpecError(*problem)
    warning = exposure_warning(server.host, server.port)
    if warning:
        sys.stderr.write(warning + "\n")
    server.serve()
    return 0


def bind_problem(host: str, port: int) -> tuple[str, Any, str] | None:
    """Why the server could not listen on host:port, as (field, value, what is allowed), or None: another listens
    there, the host is no address of this machine or no name it resolves, the port needs privileges."""
    import socket

    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return "host", host, "a host name this machine resolves, or an address such as 127.0.0.1"
    failed = []
    for family, _, _, _, address in dict.fromkeys((i[0], 0, 0, "", i[4]) for i in infos):     # each address once
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)     # as the server binds: a closing one is free
            try:
                sock.bind(address)
            except OSError as e:
                if e.errno == errno.EADDRINUSE:     # busy on any of them: the server would fail there
                    return "port", port, "a port free on this host (in use: try --port with another)"
                failed.append(e)
    if failed and len(failed) == len(dict.fromkeys(i[4] for i in infos)):     # none of its addresses is this host's
        e = failed[0]
        if e.errno == errno.EADDRNOTAVAIL:
            return "host", host, "an address of this machine to listen on, such as 127.0.0.1 (or 0.0.0.0: all)"
        if e.errno == errno.EACCES:
            return "port", port, "a port this user may listen on (below 1024 needs privileges)"
        return "host", host, f"an address this machine can listen on ({e.strerror or e})"
    return None
