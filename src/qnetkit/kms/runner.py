"""Run a KME's uvicorn server on a background thread (dev mode, tests, embedding)."""

from __future__ import annotations

import threading
import time

import uvicorn

from qnetkit.kms.config import KmeConfig
from qnetkit.kms.errors import KmsError
from qnetkit.kms.server import build_service, create_app, uvicorn_kwargs
from qnetkit.kms.service import KmeService


class KmeThread:
    """One KME serving HTTPS on its own thread and event loop."""

    def __init__(self, cfg: KmeConfig, *, run_background: bool = True) -> None:
        self.cfg = cfg
        self.service: KmeService = build_service(cfg)
        app = create_app(self.service, run_background=run_background)
        self._server = uvicorn.Server(uvicorn.Config(app, **uvicorn_kwargs(cfg)))
        self._thread = threading.Thread(target=self._server.run, name=f"kme-{cfg.kme_id}",
                                        daemon=True)

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

    def stop(self, grace_s: float = 1.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=grace_s)
        if self._thread.is_alive():  # idle keep-alive clients would hold shutdown up
            self._server.force_exit = True
            self._thread.join(timeout=15)

    def __enter__(self) -> KmeThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
