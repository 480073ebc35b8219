"""Serve the sandbox app over loopback HTTP, in a background thread (embedded) or in the foreground (CLI).

Loopback only unless `allow_remote`; the database file (hence its -wal/-shm, which SQLite creates with the same
mode) is readable by its owner only. Servers of this process are registered by address, so a client in the same
process finds the control token without being told (`control_token_for`).
"""
import io
import logging
import os
import socket
import stat
import threading
from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler, make_server

from ..exceptions import ConfigurationError
from .app import SandboxApp
from .guard import LocalGuard, is_loopback

log = logging.getLogger(__name__)
_running = {}  # (host, port) -> SandboxServer of this process
_running_lock = threading.Lock()


def private_database(path):
    """Create the database file 0600 before SQLite does (it would follow the umask, often 0644), and take group
    and other access away from an existing one and its -wal/-shm: it holds credentials and the control token."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass
    for name in (path, path + "-wal", path + "-shm"):
        try:
            info = os.stat(name)
            if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
                os.chmod(name, stat.S_IMODE(info.st_mode) & 0o700)
        except FileNotFoundError:
            pass


def control_token_for(url):
    """The control token of the sandbox this process serves at `url`, or None."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    with _running_lock:
        for (bound, bound_port), server in _running.items():
            if bound_port == port and (bound == host or (is_loopback(bound) and is_loopback(host))):
                return server.control_token
    return None


class QuietHandler(WSGIRequestHandler):
    """werkzeug's handler with real HTTP/1.1 keep-alive and no access log (no place for it in notebook output).

    werkzeug answers `Connection: close` to every request because it cannot tell where a request body ends; then
    each call of the SDK (which keeps connections alive) cost a TCP connection, a thread and a SQLite connection,
    most of the sandbox's time. Here the whole body is read first (sandbox bodies are small forms), so the stream
    always stands at the next request line, and the reply goes out in one write with its Content-Length.
    """

    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        connections = getattr(self.server, "open_connections", None)
        if connections is not None:
            connections.add(self.connection)

    def finish(self):
        getattr(self.server, "open_connections", set()).discard(self.connection)
        super().finish()

    def run_wsgi(self):
        environ = self.make_environ()
        if self.request_version != "HTTP/1.1":
            self.close_connection = True  # HTTP/1.0 clients expect the connection to close
        if self.headers.get("Expect", "").lower().strip(" \t") == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            if environ.pop("wsgi.input_terminated", False):  # chunked: werkzeug's reader stops at the last chunk
                body = environ["wsgi.input"].read()
            else:
                length = int(environ.get("CONTENT_LENGTH") or 0)
                if length < 0:
                    raise ValueError(length)
                body = self.rfile.read(length)
        except ValueError:
            self.close_connection = True
            self.send_error(400, "Bad Content-Length")
            return
        environ.pop("HTTP_TRANSFER_ENCODING", None)  # the app now sees a plain body of known length
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))

        started, chunks = [], []

        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]
            return chunks.append  # WSGI's legacy write()

        try:
            result = self.server.app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                getattr(result, "close", lambda: None)()
        except Exception:
            log.exception("sandbox error on %s %s", self.command, self.path)
            self.close_connection = True
            started[:], chunks[:] = ["500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain")]], [b"error"]
        if not started:  # the app answered nothing: it dropped the connection (commit_then_drop)
            self.close_connection = True
            return
        self.send_reply(started[0], started[1], b"".join(chunks))

    def send_reply(self, status, headers, body):
        code = int(status.split(None, 1)[0])
        lines = [f"{self.protocol_version} {status}", f"Server: {self.version_string()}",
                 f"Date: {self.date_time_string()}"]
        lines += [f"{key}: {value}" for key, value in headers]
        if code >= 200 and code not in (204, 304) and not any(k.lower() == "content-length" for k, _ in headers):
            lines.append(f"Content-Length: {len(body)}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if self.command == "HEAD" else head + body)

    def log_request(self, *args, **kwargs):
        pass

    def log_error(self, *args):
        pass


class SandboxServer:
    def __init__(self, db_path, host="127.0.0.1", port=0, allow_remote=False):
        if not is_loopback(host) and not allow_remote:
            raise ConfigurationError(f"refusing to listen on {host}: not a loopback address, so anyone who can reach "
                                     "it could use the sandbox; allow it explicitly (--allow-remote) if you mean it")
        private_database(db_path)
        self.app = SandboxApp(db_path)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.httpd = make_server(host, port, self.app, threaded=True, request_handler=QuietHandler)
        self.httpd.daemon_threads = True
        self.httpd.open_connections = set()  # kept-alive client connections, closed on stop()
        self.host, self.port = host, self.httpd.server_port
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}"  # IPv6 literals in brackets
        self.app.guard = LocalGuard(host, self.port, allow_remote)
        self._thread = None
        with _running_lock:
            _running[(host.lower(), self.port)] = self

    @property
    def store(self):
        return self.app.store

    @property
    def control_token(self):
        """The Bearer token of the `/__sandbox/` control plane (a secret: never log it)."""
        return self.app.control_plane.token

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="flexops-sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        self.httpd.serve_forever()

    def stop(self):
        with _running_lock:
            if _running.get((self.host.lower(), self.port)) is self:
                del _running[(self.host.lower(), self.port)]
        self.httpd.shutdown()
        self.httpd.server_close()
        for conn in list(self.httpd.open_connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes its thread, which then closes it
            except OSError:
                pass
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
