"""``attnlab explore``: serve the explorer on a free port of the loopback interface by default."""

from __future__ import annotations

import secrets
import socket
import webbrowser
from pathlib import Path

import uvicorn

from attnlab.errors import ConfigError
from attnlab.explorer.app import create_app
from attnlab.status import say

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound socket (port 0: a free one), handed to uvicorn so no other process can take it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def url_of(sock: socket.socket, token: str | None) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/" + (f"?token={token}" if token else "")


def serve(root: Path, *, host: str, port: int, open_browser: bool, allow_remote: bool) -> None:
    """Serve ``root`` until Ctrl-C. Beyond the loopback interface only with ``allow_remote``,
    and then every request must carry a random token, printed in the URL."""
    remote = host not in LOOPBACK
    if remote and not allow_remote:
        raise ConfigError(
            f"--host {host} would let other machines read your runs; add --allow-remote to do so"
        )
    token = secrets.token_urlsafe(24) if remote else None
    app = create_app(root, token=token)
    sock = listening_socket(host, port)
    url = url_of(sock, token)
    say(f"explorer at {url}  (runs under {root.resolve()}; Ctrl-C stops it)")
    if open_browser:
        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
