"""Run a KME's uvicorn server on a background thread (dev mode, tests, embedding)."""

from __future__ import annotations

import ssl
import threading
import time

import uvicorn

from qnetkit.kms.config import KmeConfig
from qnetkit.kms.errors import KmsError
from qnetkit.kms.server import build_service, create_app, uvicorn_config
from qnetkit.kms.service import KmeService


class KmeThread:
    """One KME serving HTTPS on its own thread and event loop."""

    def __init__(self, cfg: KmeConfig, *, run_background: bool = True) -> None:
        self.cfg = cfg
        self.service: KmeService = build_service(cfg)
        app = create_app(self.service, run_background=run_background)
        self._server = uvicorn.Server(uvicorn_config(cfg, app))
        self._thread = threading.Thread(target=self._server.run, name=f"kme-{cfg.kme_id}",
                                        daemon=True)

    @property
    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context the running server hands to every connection."""
        ctx: ssl.SSLContext | None = getattr(self._server.config, "kme_ssl", None)
        return ctx

    @property
    def url(self) -> str:
        return f"https://{self.cfg.listen.host}:{self.cfg.listen.port}"

    def start(self, timeout_s: float = 20.0) -> KmeThread:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise KmsError(f"KME {self.cfg.kme_id} failed to start (port "
                               f"{self.cfg.listen.port} in use?)")
            if time.monotonic() > deadline:
                raise KmsError(f"KME {self.cfg.kme_id} did not start within {timeout_s} s")
            time.sleep(0.02)
        return self

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop like SIGTERM does: finish requests in flight (uvicorn cancels them after
        timeout_graceful_shutdown), run the app's shutdown, return when the thread is done."""
        self._server.should_exit = True
        self._thread.join(timeout=grace_s)
        if self._thread.is_alive():  # pragma: no cover - only if shutdown itself hangs
            self._server.force_exit = True
            self._thread.join(timeout=15)

    def __enter__(self) -> KmeThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
