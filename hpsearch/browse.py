"""``hpsearch browse``: optuna-dashboard on a study's storage, safe beside a running study.

The dashboard gets the storage from :func:`hpsearch.storage.open_storage`, so a
SQLite file is in WAL mode with a 60 s busy timeout on the dashboard's connections
too: its reads never hold a lock that makes the running study's writes fail with
"database is locked". It binds to 127.0.0.1 unless told otherwise (``--host``):
optuna-dashboard has no authentication and can delete studies.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from hpsearch.exceptions import HpsearchError, StudyNotFoundError

if TYPE_CHECKING:
    import optuna

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "DashboardServer", "resolve_target", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


class _ThreadedServer(ThreadingMixIn, WSGIServer):
    """One thread per request, as optuna-dashboard's own command runs it."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No line per request on stderr (the page polls every few seconds)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


def resolve_target(study: str | None, storage: str | None) -> tuple[str, str | None]:
    """The storage URL and the study name (None: all studies) to browse.

    ``study`` is a study file (its storage and name; ``storage`` overrides the
    storage) or a study name in ``storage`` (default: ``$HPSEARCH_STORAGE``, else
    ``./hpsearch.db``).
    """
    from hpsearch.results import study_target
    from hpsearch.study import default_storage

    if study is None:
        return storage or default_storage(), None
    name, url = study_target(study, storage)
    return url, name


def _study_id(backend: optuna.storages.BaseStorage, name: str, url: str) -> int:
    try:
        return backend.get_study_id_from_name(name)
    except KeyError:
        names = [s.study_name for s in backend.get_all_studies()]
        known = ", ".join(names) if names else "none"
        raise StudyNotFoundError(f"no study {name!r} in {url} (studies there: {known})") from None


class DashboardServer:
    """optuna-dashboard bound to a socket, ready to serve.

    Args:
        storage: a storage URL (SQLite, PostgreSQL, journal file, ...).
        study: a study name to open the page at (None: the list of studies).
        host: the address to bind (default 127.0.0.1: this machine only).
        port: the port (0: any free port).

    Raises:
        ConfigError: a bad storage URL, or no database there.
        StudyNotFoundError: no such study in the storage.
        HpsearchError: the address cannot be bound (port in use).

    Example (it needs a stored study and serves until stopped; not run as a test):
        >>> url = "sqlite:///hpsearch.db"  # doctest: +SKIP
        >>> server = DashboardServer(url, study="quickstart", port=0)  # doctest: +SKIP
        >>> print(server.url)  # http://127.0.0.1:43121/dashboard/studies/1  # doctest: +SKIP
        >>> server.serve_forever()  # until Ctrl-C or server.shutdown()  # doctest: +SKIP
    """

    def __init__(
        self,
        storage: str,
        *,
        study: str | None = None,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
    ) -> None:
        import optuna_dashboard

        from hpsearch.storage import open_storage

        self.storage_url = storage
        backend = open_storage(storage, create=False, heartbeat=False)
        self.study_id = _study_id(backend, study, storage) if study is not None else None
        app = optuna_dashboard.wsgi(backend)
        try:
            self._server = make_server(
                host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise HpsearchError(
                f"cannot listen on {host}:{port}: {reason}; choose another with --port "
                "(or --port 0 for any free port)"
            ) from None
        self.host = host
        self.port = int(self._server.server_port)

    @property
    def url(self) -> str:
        """The dashboard's address: the study's page, or the list of studies."""
        host = self.host
        if host in ("", "0.0.0.0", "::"):
            host = socket.gethostname()
        elif ":" in host:
            host = f"[{host}]"
        path = f"/dashboard/studies/{self.study_id}" if self.study_id is not None else "/dashboard"
        return f"http://{host}:{self.port}{path}"

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` (from another thread) or Ctrl-C."""
        try:
            self._server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()

    def shutdown(self) -> None:
        self._server.shutdown()


def serve(
    study: str | None = None,
    *,
    storage: str | None = None,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    on_ready: Callable[[DashboardServer], None] | None = None,
) -> None:
    """Run optuna-dashboard on a study's storage until Ctrl-C.

    Args:
        study: a study file, a study name, or None (every study in ``storage``).
        storage: a storage URL (overrides the study file's).
        host: the address to bind; 127.0.0.1 keeps the dashboard on this machine.
        port: the port (0: any free port).
        on_ready: called once the socket listens (prints the URL in the CLI).
    """
    from hpsearch._logs import quiet_optuna

    url, name = resolve_target(study, storage)
    with quiet_optuna():
        server = DashboardServer(url, study=name, host=host, port=port)
        if on_ready is not None:
            on_ready(server)
        sys.stdout.flush()
        server.serve_forever()
