"""The KME's HTTPS server: ETSI GS QKD 014 V1.1.1 REST API plus KME-to-KME routes.

HTTPS only, with mutual TLS: uvicorn requires a client certificate signed by the
network's CA, and the certificate's subject CN says who is calling (identity.py).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from qnetkit.kms import hybrid
from qnetkit.kms.atrest import load_kek
from qnetkit.kms.blocks import block_identity
from qnetkit.kms.config import KmeConfig, load_config
from qnetkit.kms.errors import KmsError, SyncConflict
from qnetkit.kms.guard import Guard, GuardMiddleware
from qnetkit.kms.identity import Caller, refusal_reason, roles_of
from qnetkit.kms.metrics import Metrics
from qnetkit.kms.models import Error, KeyContainer, KeyIds, KeyRequest, QueryInt, Status
from qnetkit.kms.peer import PeerError, b64, unb64
from qnetkit.kms.service import ApiError, KmeService, NeedsThread, bad_request
from qnetkit.kms.store import open_store
from qnetkit.kms.store.base import DeliveredKey
from qnetkit.kms.transport import GUARD_STATE, KmeUvicornConfig, TransportPolicy

log = logging.getLogger("qnetkit.kms")

API = "/api/v1/keys"
THREADS = int(os.environ.get("QNETKIT_KMS_THREADS", "8"))
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error, "description": "Bad request format"},
    401: {"model": Error, "description": "Unauthorized"},
    503: {"model": Error, "description": "Error of server side"},
}


def build_service(cfg: KmeConfig) -> KmeService:
    """Open the store and keys named in ``cfg``; raises KmsError with a one-line message."""
    kek = load_kek(file=str(cfg.kek.file) if cfg.kek.file else None, env=cfg.kek.env)
    store = open_store(cfg.store.url, kme_id=cfg.kme_id, kek=kek)
    kem = hybrid.load_kem_private_key(cfg.kem.private_key) if cfg.kem is not None else None
    return KmeService(cfg=cfg, store=store, metrics=Metrics(cfg.kme_id), kem=kem)


def _container(keys: list[DeliveredKey]) -> dict[str, Any]:
    return {"keys": [{"key_ID": k.key_id, "key": b64(k.material)} for k in keys]}


def _error(status: int, message: str, details: list[dict[str, Any]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"message": message}
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=status)


def create_app(service: KmeService, *, run_background: bool = True) -> FastAPI:
    cfg = service.cfg
    guard = Guard(cfg, service.store, service.metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        import anyio.to_thread

        # Store transactions are short and serialised per store; a few threads keep the
        # cores busy, more only fight over the GIL.
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        service.connect_peers()
        if run_background:
            service.start_background()
        guard.start()
        log.info("KME %s ready", cfg.kme_id)
        try:
            yield {GUARD_STATE: guard}  # the transport layer reports its refusals to it
        finally:
            guard.close()
            service.close()

    app = FastAPI(
        title="qnetkit KME (ETSI GS QKD 014 V1.1.1)",
        version="1.1.1",
        description="Key delivery to SAEs over mutual TLS. The SAE identity is the subject CN "
        "of the client certificate.",
        lifespan=lifespan,
        docs_url="/docs" if cfg.docs else None,
        redoc_url="/redoc" if cfg.docs else None,
    )

    # With SQLite a key transaction takes well under a millisecond and writes are serialised
    # anyway, so ETSI calls run on the event loop: handing each to a worker thread costs more
    # than the call (measured: 1.9x the enc_keys throughput). Calls that would wait on the
    # network (relay, PQC fallback, pulling an assignment) go to a thread (NeedsThread).
    inline = bool(getattr(service.store, "inline_safe", False))

    async def call(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        if inline:
            try:
                return fn(*args, inline=True, **kw)
            except NeedsThread:
                pass
        return await run_in_threadpool(functools.partial(fn, *args, **kw))

    def caller_of(request: Request) -> Caller:
        c = getattr(request.state, "caller", None)
        return c if isinstance(c, Caller) else Caller(None, None)

    def require(request: Request, kind: str) -> str:
        caller = caller_of(request)
        for role in roles_of(cfg, caller):
            if role.kind == kind:
                return role.id
        refuse(request, caller, kind)
        raise ApiError(401, "the client certificate is not authorised for this request")

    def refuse(request: Request, caller: Caller, kind: str) -> None:
        client = request.client
        guard.refusals.refuse("unauthorised", refusal_reason(cfg, caller, kind), caller=caller,
                              peer=f"{client.host}:{client.port}" if client else None,
                              path=request.url.path, status=401)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        resp = _error(exc.status, exc.message, exc.details)
        if exc.retry_after_s is not None:
            resp.headers["Retry-After"] = str(exc.retry_after_s)
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "problem": str(e.get("msg"))}
            for e in exc.errors()[:10]
        ]
        return _error(400, "bad request format", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Clause 5: server-side errors are 503. Logged by type only: messages of lower
        # layers never carry key material, but tracebacks could carry local variables.
        service.metrics.requests.labels("unexpected", "503").inc()
        log.error("unexpected %s in request handling", exc.__class__.__name__)
        return _error(503, "internal error of the KME")

    app.add_middleware(GuardMiddleware, guard=guard)
    app.add_middleware(_CountRequests, metrics=service.metrics)

    # -- ETSI GS QKD 014 ---------------------------------------------------------------------
    @app.get(f"{API}/{{slave_SAE_ID}}/status", response_model=Status, responses=_ERRORS,
             name="status")
    async def get_status(slave_SAE_ID: str, request: Request) -> Status:
        sae = require(request, "sae")
        if inline:
            return service.status(sae, slave_SAE_ID)
        result: Status = await run_in_threadpool(service.status, sae, slave_SAE_ID)
        return result

    @app.get(f"{API}/{{slave_SAE_ID}}/enc_keys", response_model=KeyContainer,
             responses=_ERRORS, name="enc_keys")
    async def get_enc_keys(slave_SAE_ID: str, request: Request,
                           number: QueryInt | None = Query(None),
                           size: QueryInt | None = Query(None)) -> JSONResponse:
        sae = require(request, "sae")
        keys = await call(service.enc_keys, sae, slave_SAE_ID, number=number, size=size,
                          additional_slaves=None, extension_mandatory=None)
        return JSONResponse(_container(keys))

    @app.post(f"{API}/{{slave_SAE_ID}}/enc_keys", response_model=KeyContainer,
              responses=_ERRORS, name="enc_keys")
    async def post_enc_keys(slave_SAE_ID: str, body: KeyRequest,
                            request: Request) -> JSONResponse:
        sae = require(request, "sae")
        keys = await call(service.enc_keys, sae, slave_SAE_ID, number=body.number,
                          size=body.size, additional_slaves=body.additional_slave_SAE_IDs,
                          extension_mandatory=body.extension_mandatory)
        return JSONResponse(_container(keys))

    @app.get(f"{API}/{{master_SAE_ID}}/dec_keys", response_model=KeyContainer,
             responses=_ERRORS, name="dec_keys")
    async def get_dec_keys(master_SAE_ID: str, request: Request,
                           key_ID: str = Query(...)) -> JSONResponse:
        sae = require(request, "sae")
        return JSONResponse(_container(await call(service.dec_keys, sae, master_SAE_ID,
                                                  [key_ID])))

    @app.post(f"{API}/{{master_SAE_ID}}/dec_keys", response_model=KeyContainer,
              responses=_ERRORS, name="dec_keys")
    async def post_dec_keys(master_SAE_ID: str, body: KeyIds,
                            request: Request) -> JSONResponse:
        sae = require(request, "sae")
        ids = [k.key_ID for k in body.key_IDs]
        return JSONResponse(_container(await call(service.dec_keys, sae, master_SAE_ID, ids)))

    # -- KME to KME (not part of ETSI 014; mTLS with a peer KME certificate) ---------------
    def _json(body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request("expected a JSON object")
        return body

    @app.post("/kme/v1/assignments", include_in_schema=False)
    async def peer_assignments(request: Request) -> JSONResponse:
        peer = require(request, "kme")
        body = _json(await _read_json(request))
        items = body.get("assignments")
        if not isinstance(items, list):
            raise bad_request("assignments must be a list")
        try:
            acked = await _threaded(service.peer_assign, peer, items)
        except (SyncConflict, PeerError) as exc:
            raise ApiError(409, str(exc)) from None
        return JSONResponse({"acknowledged": acked})

    @app.post("/kme/v1/assignments/lookup", include_in_schema=False)
    async def peer_lookup_many(request: Request) -> JSONResponse:
        peer = require(request, "kme")
        ids = _json(await _read_json(request)).get("key_IDs")
        if not isinstance(ids, list) or not all(isinstance(k, str) for k in ids):
            raise bad_request("key_IDs must be a list of strings")
        found = await _threaded(service.peer_lookup_many, peer, ids)
        return JSONResponse({"assignments": found})

    @app.post("/kme/v1/blocks/confirm", include_in_schema=False)
    async def peer_confirm(request: Request) -> JSONResponse:
        peer = require(request, "kme")
        items = _json(await _read_json(request)).get("blocks")
        if not isinstance(items, list):
            raise bad_request("blocks must be a list")
        return JSONResponse({"results": await _threaded(service.peer_confirm, peer, items)})

    @app.get("/kme/v1/assignments/{key_id}", include_in_schema=False)
    def peer_lookup(key_id: str, request: Request) -> JSONResponse:
        peer = require(request, "kme")
        found = service.peer_lookup(peer, key_id)
        if found is None:
            return _error(404, "no such key delivered toward this peer")
        return JSONResponse(found)

    async def _peer_message(request: Request, handler: Callable[[str, dict[str, Any]], None],
                            what: str) -> JSONResponse:
        """Run a peer KME's relay or PQC-key message; errors become 400/503 Error objects."""
        peer = require(request, "kme")
        body = _json(await _read_json(request))
        try:
            await _threaded(handler, peer, body)
        except (KeyError, TypeError, ValueError):
            raise bad_request(f"malformed {what} message") from None
        except (PeerError, KmsError) as exc:
            raise ApiError(503, f"{what} failed at {cfg.kme_id}: {exc}") from None
        return JSONResponse({"ok": True})

    @app.post("/kme/v1/relay", include_in_schema=False)
    async def peer_relay(request: Request) -> JSONResponse:
        return await _peer_message(request, service.peer_relay, "relay")

    @app.post("/kme/v1/pqc", include_in_schema=False)
    async def peer_pqc(request: Request) -> JSONResponse:
        return await _peer_message(request, service.peer_pqc, "PQC key")

    @app.get("/kme/v1/kem_public", include_in_schema=False)
    def kem_public(request: Request) -> JSONResponse:
        require(request, "kme")
        if service.kem is None:
            return _error(404, "this KME has no ML-KEM key")
        return JSONResponse({"public_key": b64(service.kem.public_bytes()),
                             "algorithm": "ML-KEM-768"})

    @app.post("/kme/v1/ingest", include_in_schema=False)
    async def ingest(request: Request) -> JSONResponse:
        require(request, "ingest")
        body = _json(await _read_json(request))
        try:
            peer = str(body["peer_KME_ID"])
            unit_bits = int(body.get("unit_bits", cfg.limits.key_size_bits))
            data = unb64(str(body["key"]))
            simulated = body.get("simulated", False)
            if not isinstance(simulated, bool):
                raise TypeError
            block_id = block_identity(cfg.kme_id, peer, data, block_id=body.get("block_ID"),
                                      block_seq=body.get("block_seq"))
        except (KeyError, TypeError, ValueError):
            raise bad_request("ingest needs peer_KME_ID, key (base64), optionally block_ID "
                              "(UUID) or block_seq (integer >= 0), unit_bits and simulated "
                              "(boolean)") from None
        res = await _threaded(functools.partial(service.ingest_block, peer, block_id, data,
                                                unit_bits, simulated=simulated))
        return JSONResponse({"block_ID": res.block_id, "units": res.units,
                             "units_added": res.units_added, "state": res.state})

    # -- operations --------------------------------------------------------------------------
    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        if not roles_of(cfg, caller_of(request)):
            refuse(request, caller_of(request), "sae, kme or ingest")
            raise ApiError(401, "the client certificate is not authorised for this request")
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4")

    return app


class _CountRequests:
    """Counts requests by route name and status (pure ASGI: no per-request task overhead)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def _send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, receive, _send)
        name = getattr(scope.get("route"), "name", "unknown")
        self.metrics.requests.labels(name, str(status)).inc()


async def _read_json(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise bad_request("body is not valid JSON") from None


async def _threaded(fn: Callable[..., Any], *args: Any) -> Any:
    return await run_in_threadpool(fn, *args)


def ingest_block(service: KmeService, peer: str, block_id: str, data: bytes,
                 unit_bits: int, *, simulated: bool = False) -> int:
    """Cut a block shared with ``peer`` into units, hold them until the peer confirms the
    same bytes (tried at once if the peer is connected); returns the units added."""
    return service.ingest_block(peer, block_id, data, unit_bits, simulated=simulated).units_added


# -- running under uvicorn -------------------------------------------------------------------
def uvicorn_config(cfg: KmeConfig, app: Any, **kw: Any) -> KmeUvicornConfig:
    """uvicorn settings of a KME. TLS is not uvicorn's: transport.py upgrades every
    connection with pki.server_ssl_context (TLS 1.3 / TLS 1.2 AEAD-only, strict X.509)."""
    return KmeUvicornConfig(
        app,
        policy=TransportPolicy.of(cfg),
        host=cfg.listen.host,
        port=cfg.listen.port,
        log_config=None,
        access_log=False,
        server_header=False,  # no "server: uvicorn" banner
        proxy_headers=False,  # nobody sits in front of a KME: the TCP peer is the client
        timeout_keep_alive=30,
        timeout_graceful_shutdown=5,
        **kw,
    )


def app_from_env() -> FastAPI:
    """uvicorn factory for multi-worker mode: the config path comes from the environment."""
    cfg = load_config(Path(os.environ["QNETKIT_KMS_CONFIG"]))
    return create_app(build_service(cfg))


def serve(config_path: Path) -> None:
    """Run one KME until SIGINT/SIGTERM (uvicorn handles both and drains connections)."""
    cfg = load_config(config_path)
    if cfg.workers > 1:
        from uvicorn.supervisors import Multiprocess

        os.environ["QNETKIT_KMS_CONFIG"] = str(config_path.resolve())
        build_service(cfg).close()  # fail fast (bad KEK, store) before forking workers
        config = uvicorn_config(cfg, "qnetkit.kms.server:app_from_env", factory=True,
                                workers=cfg.workers)
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    app = create_app(build_service(cfg))
    uvicorn.Server(uvicorn_config(cfg, app)).run()
