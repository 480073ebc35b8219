"""Serve the sandbox app over loopback HTTP, in a background thread (embedded) or in the foreground (CLI)."""
import logging
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import SandboxApp


class QuietHandler(WSGIRequestHandler):
    """Keep-alive (HTTP/1.1) and no access log: a notebook or test output is no place for it."""

    protocol_version = "HTTP/1.1"

    def log_request(self, *args, **kwargs):
        pass

    def log_error(self, *args):
        pass


class SandboxServer:
    def __init__(self, db_path, host="127.0.0.1", port=0):
        self.app = SandboxApp(db_path)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.httpd = make_server(host, port, self.app, threaded=True, request_handler=QuietHandler)
        self.httpd.daemon_threads = True
        self.host, self.port = host, self.httpd.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = None

    @property
    def store(self):
        return self.app.store

    def start(self):
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="flexops-sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        self.httpd.serve_forever()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
