"""`initlab serve`: localhost by default, a warning for any other address, the missing-extra message, a real server."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from initlab.tui.cli import build_parser, main
from initlab.tui.commands import serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_serving(monkeypatch):
    """Record the servers that would start instead of blocking on them."""
    pytest.importorskip("textual_serve")
    from textual_serve.server import Server

    started = []
    monkeypatch.setattr(Server, "serve", lambda self, debug=False: started.append(self))
    return started


def test_default_is_localhost_port_8000_and_the_app():
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.public_url) == ("127.0.0.1", "8000", None)
    pytest.importorskip("textual_serve")
    server = serve.make_server(args.host, args.port, args.public_url)
    assert (server.host, server.port) == ("127.0.0.1", 8000)
    assert server.public_url == "http://127.0.0.1:8000"
    # textual-serve runs this through a shell once per browser tab: it must open the app, i.e. bare `initlab`
    assert server.command == serve.app_command()
    assert server.command.endswith("initlab") or server.command.endswith("-m initlab.tui.cli")
    assert server.title == "initlab"


def test_default_run_prints_no_warning(no_serving, capsys):
    assert main(["serve"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out == ""
    assert [(s.host, s.port) for s in no_serving] == [("127.0.0.1", 8000)]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2", "LOCALHOST"])
def test_loopback_addresses_do_not_warn(host):
    assert serve.is_local(host)
    assert serve.exposure_warning(host, 8000) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "example.org", "my-gpu-box"])
def test_other_addresses_warn_about_authentication(host, no_serving, capsys, monkeypatch):
    # these are not all this machine's addresses: whether it can listen there is another test's
    monkeypatch.setattr(serve, "bind_problem", lambda host, port: None)
    assert not serve.is_local(host)
    assert main(["serve", "--host", host, "--port", "8123"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("initlab: warning:")
    assert "no authentication" in lines[0] and f"{host}:8123" in lines[0]
    assert [(s.host, s.port) for s in no_serving] == [(host, 8123)]


def test_ipv6_address_gets_a_bracketed_public_url(no_serving):
    pytest.importorskip("textual_serve")
    assert serve.make_server("::", 8000).public_url == "http://[::]:8000"
    assert serve.make_server("127.0.0.1", 9000, "http://localhost:9001").public_url == "http://localhost:9001"


@pytest.mark.parametrize("argv, field", [
    (["--port", "0"], "port"), (["--port", "65536"], "port"), (["--port", "eighty"], "port"),
    (["--port", "nan"], "port"), (["--port", ""], "port"), (["--port=-1"], "port"),
    (["--host", ""], "host"), (["--host", "a b"], "host"),
    (["--public-url", "notaurl"], "public_url"), (["--public-url", "ftp://x"], "public_url"),
    (["--public-url", "http://"], "public_url"), (["--public-url", "http://h:99999"], "public_url"),
    (["--public-url", ""], "public_url"), (["--public-url", "http://h:0"], "public_url"),
    (["--public-url", "http://h/?x=1"], "public_url"), (["--public-url", "http://h#x"], "public_url"),
    (["--public-url", "http://h?"], "public_url"), (["--public-url", "http://h#"], "public_url"),
    (["--port", "8_000"], "port"), (["--port", "\uff18\uff10\uff10\uff10"], "port"),
])
def test_bad_address_is_one_line_exit_2(argv, field, no_serving, capsys):
    assert main(["serve", *argv]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith(f"initlab: error: {field}:")
    assert no_serving == []


def test_missing_extra_says_how_to_install(monkeypatch, capsys):
    # None in sys.modules makes `import textual_serve.server` raise ImportError, as when it is not installed
    monkeypatch.setitem(sys.modules, "textual_serve", None)
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    assert main(["serve"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ['initlab: error: serve needs textual-serve: pip install "textual-serve>=1.1"']
    with pytest.raises(serve.MissingExtra):
        serve.make_server()


def test_a_real_server_listens_on_localhost_and_starts_the_app():
    pytest.importorskip("textual_serve")
    aiohttp = pytest.importorskip("aiohttp")
    import asyncio

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "initlab.tui.cli", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        page = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert page is not None, proc.stderr.read().decode() if proc.poll() is not None else "no answer"
        assert f'ws://127.0.0.1:{port}/ws' in page

        async def first_screen() -> bytes:
            # the browser's side: say the size, then read the app's output until its name shows
            got = b""
            async with aiohttp.ClientSession() as s:
                async with s.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                    await ws.send_str(json.dumps(["resize", {"width": 100, "height": 30}]))
                    end = time.monotonic() + 30
                    while b"initlab" not in got and time.monotonic() < end:
                        msg = await asyncio.wait_for(ws.receive(), max(0.1, end - time.monotonic()))
                        if msg.type != aiohttp.WSMsgType.BINARY:
                            break
                        got += msg.data
            return got

        assert b"initlab" in asyncio.run(first_screen())
    finally:
        # the app processes textual-serve started share the server's process group
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_a_port_in_use_is_refused_before_any_banner(no_serving, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err == f"initlab: error: port: {port} is not allowed; a port free on this host (in use: try --port with " \
                  "another)\n"
    assert no_serving == []


@pytest.mark.parametrize("host, allowed", [
    ("203.0.113.5", "an address of this machine to listen on, such as 127.0.0.1 (or 0.0.0.0: all)"),
    ("nonexistent.invalid", "a host name this machine resolves, or an address such as 127.0.0.1")])
def test_an_address_this_machine_cannot_listen_on_is_refused_before_any_banner(host, allowed, no_serving, capsys):
    assert main(["serve", "--host", host, "--port", str(free_port())]) == 2
    assert capsys.readouterr().err == f"initlab: error: host: {host!r} is not allowed; {allowed}\n"
    assert no_serving == []
