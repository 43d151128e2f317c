"""Server bootstrap shared by every service: gRPC with health and reflection, an HTTP edge
for health, readiness, metrics, journal, audit trail and outbox, the delivery worker, and
graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Protocol, runtime_checkable

import grpc
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from grpc_health.v1 import health, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from sqlalchemy import MetaData, make_url
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from scfed.admin.v1 import admin_pb2_grpc
from scfed.common.v1 import common_pb2, common_pb2_grpc

from ..federation import Agency
from . import audit, journal, tracing
from .admin import SNAPSHOT_PATH, admin_router
from .admin_servicer import SERVICE_NAME as ADMIN_SERVICE_NAME
from .admin_servicer import AdminServicer
from .authorization import AuthorizationInterceptor
from .clock import AcceleratedClock, Clock, clock_from_spec
from .clock_epoch import share_epoch
from .config import ServiceSettings
from .db import Database, DatabaseUnavailable, describe_cause, is_unavailable
from .delivery import Inbox, Outbox, RetryPolicy
from .docs import install_offline_docs
from .edge import DecodeRefusal, UnaryBehaviour, UnaryInterceptor
from .faults import FaultInterceptor, FaultRules
from .faults_edge import SERVICE_NAME as FAULTS_SERVICE_NAME
from .faults_edge import FaultsServicer, faults_router
from .http_edge import EdgeGuard, UtcTime, error_responses, install_error_handlers
from .logs import configure_logging
from .metrics import ServiceMetrics
from .models import RuntimeBase
from .operator_http import operator_only
from .readiness import SERVING, Readiness
from .reflection import enable_reflection
from .tls import (
    CertificateMissing,
    ChannelFactory,
    SecureChannels,
    insecure_channels,
    server_credentials,
)

log = logging.getLogger(__name__)

# Exit status of `python -m services.<name>` when a port it should listen on cannot be bound
# (2 is a bad configuration).
PORT_UNAVAILABLE_EXIT = 3
# Exit status when the database could not be reached at start, after every attempt.
DATABASE_UNREACHABLE_EXIT = 4
# Exit status of a bad configuration, such as TLS on without its certificate files.
BAD_CONFIGURATION_EXIT = 2

# The gRPC health name that stays SERVING while the process serves, database or not.
LIVENESS = "liveness"

# Routes that answer while the service is starting (or its database is out): the probes, and
# the metrics (without the series read from the database until it answers; metrics.py).
_ALWAYS_ANSWERING = frozenset({"/healthz", "/readyz", "/metrics"})
# Exceptions the HTTP edge answers with 503: the database does not answer.
_UNAVAILABLE_AT_HTTP: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    ConnectionError,
    TimeoutError,
)


@dataclass
class Runtime:
    """What the shared runtime hands to a service: settings, database, clock and delivery."""

    settings: ServiceSettings
    db: Database
    clock: Clock
    outbox: Outbox
    inbox: Inbox
    # The fault rules in force (runtime/faults.py); empty unless a client adds some.
    faults: FaultRules


class ServiceProvider(Protocol):
    """One emulated agency, as the host runs it (the shape of a LocalStack provider)."""

    name: Agency
    metadatas: Sequence[MetaData]

    def register_grpc(self, server: grpc.aio.Server, runtime: Runtime) -> Sequence[str]:
        """Adds the service's servicers; returns their full service names."""
        ...

    def http_router(self, runtime: Runtime) -> APIRouter | None:
        """Routes the service adds to its HTTP edge, if any."""
        ...

    async def on_after_init(self, runtime: Runtime) -> None:
        """Runs once the database is ready and before the service takes traffic."""
        ...

    async def on_before_stop(self, runtime: Runtime) -> None:
        """Runs when the service is stopping, after it stopped taking traffic."""
        ...

    async def on_reset(self, runtime: Runtime) -> None:
        """Empties what the service keeps in memory, once the host has emptied its tables."""
        ...

    async def on_snapshot_loaded(self, runtime: Runtime) -> None:
        """Rebuilds what the service keeps in memory from its tables, once the host has loaded
        a snapshot into them."""
        ...


@runtime_checkable
class MetricsProvider(Protocol):
    """A provider that adds metrics of its own to the host's registry (runtime/metrics.py)."""

    def register_metrics(self, metrics: ServiceMetrics, runtime: Runtime) -> None:
        """Adds the service's metrics; runs once, after `on_after_init`."""
        ...


# A service's counts for the Strategic Plan's measures, from its own records since a time.
MeasureCounts = Callable[[AsyncSession, datetime | None], Awaitable[dict[str, float]]]


class PortUnavailable(RuntimeError):
    """A port the service is configured to listen on cannot be bound (most often: taken)."""


def _bind_failure(edge: str, host: str, port: int, error: OSError | None) -> PortUnavailable:
    """The error for a port that would not bind, in words an operator acts on."""
    if error is not None and error.errno == errno.EADDRINUSE:
        return PortUnavailable(f"{edge} port {port} is already in use")
    reason = error.strerror if error is not None else "bind failed"
    return PortUnavailable(f"cannot bind {edge} to {host}:{port}: {reason}")


def bind_grpc(
    server: grpc.aio.Server,
    host: str,
    port: int,
    credentials: grpc.ServerCredentials | None = None,
) -> int:
    """Binds the gRPC server to host:port (port 0: any free port), with TLS when given
    `credentials`, plaintext otherwise; returns the bound port."""
    address = f"{host}:{port}"
    try:
        if credentials is None:
            bound = int(server.add_insecure_port(address))
        else:
            bound = int(server.add_secure_port(address, credentials))
    except RuntimeError:
        bound = 0
    if bound == 0:
        # gRPC does not say why; a plain bind of the same address does.
        try:
            with socket.create_server((host, port), family=_family(host)):
                error = None
        except OSError as exc:
            error = exc
        raise _bind_failure("gRPC", host, port, error)
    return bound


def bind_http(host: str, port: int) -> socket.socket:
    """A listening socket for the HTTP edge on host:port (port 0: any free port)."""
    try:
        return socket.create_server((host, port), family=_family(host), backlog=2048)
    except OSError as exc:
        raise _bind_failure("HTTP", host, port, exc) from exc


def transport_security(
    settings: ServiceSettings, name: str
) -> tuple[grpc.ServerCredentials | None, ChannelFactory]:
    """What `name` serves and dials with: its certificate's credentials when TLS is on (raises
    CertificateMissing, naming the file, when one is not there), plaintext when it is off."""
    if settings.tls == "off":
        return None, insecure_channels
    directory = settings.resolved_tls_dir()
    return server_credentials(directory, name), SecureChannels.of(directory, name)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class DatabaseUnreachable(RuntimeError):
    """The database did not answer at start, after every attempt the settings allow."""


class _UnavailableInterceptor(UnaryInterceptor):
    """Answers UNAVAILABLE, with the cause, for an RPC that failed because the database does
    not answer; counted by the readiness monitor instead of a traceback per call."""

    def __init__(self, readiness: Readiness) -> None:
        self._readiness = readiness

    def wrap(self, method: str, inner: UnaryBehaviour) -> UnaryBehaviour:
        """`inner`, a database outage it meets answered UNAVAILABLE."""
        readiness = self._readiness

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                return await inner(request, context)
            except Exception as error:
                if not is_unavailable(error):
                    raise
                readiness.refused()
                cause = describe_cause(error)
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"database unavailable: {cause}")

        return unary_unary


class _EmbeddedUvicorn(uvicorn.Server):
    """Uvicorn inside our event loop: the host, not uvicorn, owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leaves signal handling to the service host."""
        yield


class ServiceHost:
    """Runs one provider: database, gRPC server, HTTP edge and delivery worker."""

    def __init__(
        self,
        provider: ServiceProvider,
        settings: ServiceSettings,
        *,
        clock: Clock | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        """A host for `provider`; its spans go to `tracer_provider` when given (the host
        leaves it running at stop), else to the one its settings call for (runtime/tracing.py;
        none with tracing off), which it shuts down at stop."""
        self.provider = provider
        self.settings = settings
        self._owns_tracer_provider = tracer_provider is None
        self.tracer_provider = tracer_provider or tracing.provider_from_settings(
            provider.name, settings.tracing
        )
        clock = clock or clock_from_spec(settings.clock)
        db = Database(
            settings.resolved_database_url(),
            schema=settings.resolved_schema(),
            connect_timeout_s=settings.db_connect_timeout_s,
        )
        faults = FaultRules(provider.name, db)
        db.before_transaction = faults.before_transaction
        self._server_credentials, channels = transport_security(settings, provider.name)
        # This host's own registry: the five services may share a process (the tests do).
        self.metrics = ServiceMetrics(db, ready=lambda: self.readiness_monitor.ok)
        outbox = Outbox(
            db,
            service=provider.name,
            peers=settings.peer_addresses(),
            channels=channels,
            policy=RetryPolicy(
                max_attempts=settings.outbox_max_attempts,
                base_delay_s=settings.outbox_base_delay_s,
                max_delay_s=settings.outbox_max_delay_s,
                deadline_s=settings.outbox_deadline_s,
            ),
            batch=settings.outbox_batch,
            poll_s=settings.outbox_poll_s,
            faults=faults,
            metrics=self.metrics.delivery,
            tracer=tracing.tracer_of(self.tracer_provider),
        )
        self.runtime = Runtime(
            settings=settings,
            db=db,
            clock=clock,
            outbox=outbox,
            inbox=Inbox(db, outbox),
            faults=faults,
        )
        self._grpc: grpc.aio.Server | None = None
        self._health = health.aio.HealthServicer()
        self.readiness_monitor = Readiness(
            service=provider.name,
            db=db,
            worker_running=lambda: outbox.running,
            health_servicer=self._health,
            probe_s=settings.readiness_probe_s,
            summary_s=settings.outage_summary_s,
        )
        self._http: _EmbeddedUvicorn | None = None
        self._http_app = FastAPI()
        self._http_task: asyncio.Task[None] | None = None
        self._service_names: list[str] = []
        self.grpc_port = 0
        self.http_port = 0
        self.ready = False

    @property
    def grpc_address(self) -> str:
        """host:port of the running gRPC server."""
        return f"{self.settings.grpc_host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """Base URL of the running HTTP edge."""
        return f"http://{self.settings.http_host}:{self.http_port}"

    async def start(self) -> None:
        """Binds both ports, brings up the HTTP edge (answering /readyz 503 until ready),
        connects the database (retrying with backoff), starts gRPC and the worker, then reports
        SERVING. A port that cannot be bound fails the start before anything else; a database
        that never answers fails it with DatabaseUnreachable."""
        runtime = self.runtime
        # SO_REUSEPORT off: with gRPC's default a second server binds a taken port silently
        # and the kernel splits the traffic between the two.
        server = grpc.aio.server(
            # Undecodable bytes are refused first, then the fault rules act; a database
            # outage is UNAVAILABLE.
            # With TLS on, a caller the authorization table does not name is refused first.
            interceptors=[
                # A server span around everything, refusals included; the caller's context
                # from the call's metadata.
                *self._tracing_interceptors(),
                *([AuthorizationInterceptor()] if self._server_credentials is not None else []),
                DecodeRefusal(),
                FaultInterceptor(runtime.faults),
                _UnavailableInterceptor(self.readiness_monitor),
            ],
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", self.settings.grpc_max_message_mb * 2**20),
            ],
        )
        self.grpc_port = bind_grpc(
            server, self.settings.grpc_host, self.settings.grpc_port, self._server_credentials
        )
        self._log_transport_security()
        try:
            http_socket = bind_http(self.settings.http_host, self.settings.http_port)
        except PortUnavailable:
            await server.stop(None)
            raise
        self.http_port = int(http_socket.getsockname()[1])
        try:
            await self._serve_http(http_socket)
            await self._connect_database()
            if isinstance(runtime.clock, AcceleratedClock):
                await share_epoch(runtime.db, runtime.clock)
            await self.provider.on_after_init(runtime)
            add_service_routes(self._http_app, self)
            add_service_metrics(self)
        except BaseException:
            await server.stop(None)
            await self._stop_http()
            await runtime.db.dispose()
            raise

        names = list(self.provider.register_grpc(server, runtime))
        common_pb2_grpc.add_JournalServicer_to_server(
            journal.JournalServicer(runtime.db, self.provider.name), server
        )
        admin_pb2_grpc.add_AdminServiceServicer_to_server(
            AdminServicer(self.provider, runtime), server
        )
        common_pb2_grpc.add_FaultsServicer_to_server(FaultsServicer(runtime.faults), server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        self._service_names = [
            *names,
            common_pb2.DESCRIPTOR.services_by_name["Journal"].full_name,
            ADMIN_SERVICE_NAME,
            FAULTS_SERVICE_NAME,
        ]
        enable_reflection([*self._service_names, health.SERVICE_NAME], server)
        await server.start()
        self._grpc = server
        # Kubernetes' liveness probe asks for this name: SERVING while the process serves, so
        # a database outage (NOT_SERVING for "" and every service) does not restart the pod.
        await self._health.set(LIVENESS, SERVING)

        runtime.outbox.start()
        self.ready = True
        await self.readiness_monitor.start(self._service_names)
        log.info(
            "%s serving gRPC on %s and HTTP on %s",
            self.provider.name,
            self.grpc_address,
            self.http_url,
        )

    def _tracing_interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """The OpenTelemetry server interceptor, with tracing on (health checks untraced)."""
        if self.tracer_provider is None:
            return []
        from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

        untraced = filters.negate(filters.health_check())
        interceptor = aio_server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.tracer_provider, filter_=untraced
        )
        return [interceptor]

    def _log_transport_security(self) -> None:
        """One line at start saying whether the gRPC hops are mutual TLS or plaintext."""
        if self._server_credentials is None:
            log.warning("%s: TLS off: gRPC is plaintext (SCFED_TLS=off)", self.provider.name)
        else:
            log.info(
                "%s: mutual TLS on gRPC with the certificates in %s",
                self.provider.name,
                self.settings.resolved_tls_dir(),
            )

    async def _serve_http(self, http_socket: socket.socket) -> None:
        """Starts the HTTP edge on its bound socket and waits until it listens."""
        self._http_app = create_http_app(self)
        if self.tracer_provider is not None:
            from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

            # A server span per request (the probes and scrapes apart), whose parent is the
            # caller's traceparent header when it sent a well-formed one.
            FastAPIInstrumentor.instrument_app(
                self._http_app,
                tracer_provider=self.tracer_provider,
                excluded_urls=tracing.UNTRACED_PATHS,
                exclude_spans=["receive", "send"],
            )
        config = uvicorn.Config(
            self._http_app,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._http = _EmbeddedUvicorn(config)
        self._http_task = asyncio.create_task(self._http.serve(sockets=[http_socket]))
        while not self._http.started:
            if self._http_task.done():
                self._http_task.result()
                raise RuntimeError(f"{self.provider.name}: HTTP edge exited at start")
            await asyncio.sleep(0.01)

    async def _stop_http(self) -> None:
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            with contextlib.suppress(Exception):
                await self._http_task
            self._http = None
            self._http_task = None

    async def _connect_database(self) -> None:
        """Connects, retrying with backoff (1 s doubling to 30 s) for `db_start_attempts`
        attempts; each failure is one line naming the database and the cause."""
        db = self.runtime.db
        attempts = self.settings.db_start_attempts
        began = time.monotonic()
        delay = 1.0
        self.readiness_monitor.not_ready("connecting to the database")
        for attempt in range(1, attempts + 1):
            try:
                await db.connect([RuntimeBase.metadata, *self.provider.metadatas])
                return
            except Exception as error:
                log.debug("database connect attempt %d failed", attempt, exc_info=True)
                cause = _without_password(describe_cause(error), db.url)
                if isinstance(error, TimeoutError):
                    cause = f"no answer within {db.connect_timeout_s:g}s"
            if attempt == attempts:
                raise DatabaseUnreachable(
                    f"cannot reach its database at {db.target}: {cause} "
                    f"(gave up after {attempts} attempt(s) in {time.monotonic() - began:.0f}s; "
                    "allow more with SCFED_DB_START_ATTEMPTS)"
                )
            self.readiness_monitor.not_ready(f"database does not answer: {cause}")
            log.warning(
                "%s: cannot reach its database at %s: %s; attempt %d of %d, next in %.0fs",
                self.provider.name,
                db.target,
                cause,
                attempt,
                attempts,
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 2)

    async def stop(self) -> None:
        """Stops taking traffic, drains in-flight calls, stops the worker, closes the database."""
        self.ready = False
        await self.readiness_monitor.stop()
        await self._health.enter_graceful_shutdown()
        if self._grpc is not None:
            await self._grpc.stop(self.settings.shutdown_grace_s)
            self._grpc = None
        await self._stop_http()
        await self.runtime.outbox.stop()
        await self.provider.on_before_stop(self.runtime)
        await self.runtime.db.dispose()
        if self._owns_tracer_provider and self.tracer_provider is not None:
            # Exports what is left, in a thread: a collector that does not answer would hold
            # the loop for the exporter's timeout.
            await asyncio.to_thread(self.tracer_provider.shutdown)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        log.info(
            "%s stopped; CPU user %.2fs system %.2fs, max RSS %d MiB",
            self.provider.name,
            usage.ru_utime,
            usage.ru_stime,
            usage.ru_maxrss // 1024,
        )

    async def readiness(self) -> tuple[bool, str]:
        """Whether the service can really serve, and why not: the readiness probe's last
        answer (the same one gRPC health gives), probed afresh once the service runs."""
        monitor = self.readiness_monitor
        if self.ready:
            await monitor.probe()
        return monitor.ok, monitor.reason


def _without_password(message: str, url: str) -> str:
    """`message` with the database URL's password, should it appear, masked."""
    password = make_url(url).password
    return message.replace(password, "***") if password else message


def create_http_app(host: ServiceHost) -> FastAPI:
    """The HTTP edge: health, readiness, journal and outbox (`add_service_routes` adds the
    service's own routes)."""
    runtime = host.runtime
    # The operator's routes: with TLS on, only with the operator's token (operator_http.py).
    operator = [Depends(operator_only(runtime.settings))]
    settings = host.settings
    # /docs and /redoc are served whole from the service (docs.py), not from FastAPI's CDN.
    app = FastAPI(title=f"scfed {host.provider.name}", version="1", docs_url=None, redoc_url=None)
    install_offline_docs(app)
    install_error_handlers(app)
    app.add_middleware(
        EdgeGuard,
        paths=lambda: app.openapi()["paths"],
        max_body_bytes=settings.http_max_body_bytes,
        larger={("PUT", SNAPSHOT_PATH): settings.http_max_snapshot_bytes},
    )

    async def _database_unavailable(_request: Any, exc: Exception) -> JSONResponse:
        if not is_unavailable(exc):
            raise exc
        host.readiness_monitor.refused()
        return JSONResponse(
            status_code=503,
            content={"detail": f"database unavailable: {describe_cause(exc)}", "errors": []},
            headers={"Retry-After": "1"},
        )

    for unavailable in _UNAVAILABLE_AT_HTTP:
        app.add_exception_handler(unavailable, _database_unavailable)

    @app.middleware("http")
    async def _not_before_ready(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Until the database is connected and the service initialised, only the probes answer.
        if not host.ready and request.url.path not in _ALWAYS_ANSWERING:
            return JSONResponse(
                status_code=503,
                content={"detail": f"not ready: {host.readiness_monitor.reason}", "errors": []},
                headers={"Retry-After": "1"},
            )
        return await call_next(request)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "alive", "service": host.provider.name}

    @app.get(
        "/readyz",
        tags=["health"],
        responses={503: {"description": 'Not ready: {"status": "not-ready", "reason": ...}'}},
    )
    async def readyz() -> JSONResponse:
        """Readiness: database, gRPC server and delivery worker are all up."""
        ok, reason = await host.readiness()
        return JSONResponse(
            status_code=200 if ok else 503,
            content={"status": "ready" if ok else "not-ready", "reason": reason},
        )

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=PlainTextResponse,
        responses={200: {"description": "Prometheus' text exposition format"}},
    )
    async def metrics() -> Response:
        """Prometheus metrics: counts, latencies and queue depths, never a record's content.
        Open like /healthz (no operator token with TLS on), and answering from the start;
        the series read from the database are left out while it does not answer."""
        body = await host.metrics.exposition()
        return Response(content=body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/clock", tags=["health"])
    async def clock_now() -> dict[str, str]:
        """This service's agency time (real, accelerated or stepped), for clients that schedule
        in it, such as an LEA dating its release notice."""
        return {"service": host.provider.name, "now": runtime.clock.now().isoformat()}

    @app.get("/v1/replica", tags=["health"])
    async def replica() -> dict[str, object]:
        """This process's own share of the work, since it started: with several replicas on
        one database, the journal and outbox counts are everyone's, these are this one's."""
        return {
            "service": host.provider.name,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "received_processed": runtime.inbox.processed_here,
            "received_duplicate": runtime.inbox.duplicates_here,
            "delivered": runtime.outbox.delivered_here,
            "delivery_calls": runtime.outbox.calls_here,
            "db_commits": runtime.db.commits,
            "db_statements": runtime.db.statements,
            "db_statements_by_kind": dict(runtime.db.statement_kinds),
            "cpu_s": round(time.process_time(), 3),
            "event_loop": type(asyncio.get_running_loop()).__module__.partition(".")[0],
        }

    @app.get("/v1/journal/{tcn}", tags=["journal"], responses=error_responses(422))
    async def journal_entries(tcn: Annotated[str, Path(max_length=64)]) -> list[dict[str, str]]:
        """This service's journal entries for one booking TCN."""
        entries = await journal.entries_for(runtime.db, tcn)
        return [journal.to_json(e, host.provider.name) for e in entries]

    @app.get("/v1/journal", tags=["journal"], responses=error_responses(422))
    async def journal_page(
        after: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=journal.MAX_PAGE)] = 1000,
    ) -> list[dict[str, object]]:
        """This service's journal entries with an id after `after`, oldest first, at most
        `limit`: page through the whole journal by passing the last id seen."""
        return [
            {"id": e.id, **journal.to_json(e, host.provider.name)}
            for e in await journal.page(runtime.db, after=after, limit=limit)
        ]

    @app.get("/v1/journal-counts", tags=["journal"])
    async def journal_counts() -> dict[str, int]:
        """Counts of journal entries keyed "direction:TOT:outcome"."""
        return journal.counts_to_json(await journal.counts(runtime.db))

    @app.get("/v1/audit", tags=["audit"], responses=error_responses(422))
    async def audit_trail(
        tcn: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
        since: UtcTime | None = None,
        limit: Annotated[int, Query(ge=1, le=audit.MAX_ENTRIES)] = 100,
    ) -> list[audit.AuditView]:
        """This service's audit records (searches, record reads, refusals, resets), oldest
        first: of one TCN, at or after `since` (ISO 8601, wall-clock UTC), at most `limit`.
        Read-only: no route changes or deletes them."""
        service = host.provider.name
        return await audit.entries(runtime.db, service, tcn=tcn, since=since, limit=limit)

    @app.get("/v1/outbox", tags=["delivery"])
    async def outbox_stats() -> dict[str, int]:
        """Outbox messages by status (pending, inflight, delivered, dead)."""
        return await runtime.outbox.stats()

    @app.get("/v1/outbox/dead", tags=["delivery"], responses=error_responses(422))
    async def outbox_dead(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, object]]:
        """The dead letters: messages that could not be delivered, with the last error."""
        return [
            {
                "message_id": row.message_id,
                "peer": row.peer,
                "tot": row.tot,
                "tcn": row.tcn,
                "attempts": row.attempts,
                "last_error": row.last_error,
            }
            for row in await runtime.outbox.dead_letters(limit)
        ]

    @app.post(
        "/v1/outbox/dead/requeue",
        tags=["delivery"],
        dependencies=operator,
        responses=error_responses(401),
    )
    async def outbox_requeue() -> dict[str, int]:
        """Puts every dead letter back in the queue."""
        return {"requeued": await runtime.outbox.requeue_dead()}

    counts: MeasureCounts | None = getattr(host.provider, "measure_counts", None)
    if counts is not None:

        @app.get("/v1/measures", tags=["measures"], responses=error_responses(422))
        async def measures(since: UtcTime | None = None) -> dict[str, float]:
            """This service's counts behind the Strategic Plan's measures (`scfed report`).

            `since` (ISO 8601; UTC when it has no offset) keeps records at or after it, on
            this service's clock.
            """
            async with runtime.db.session() as session:
                return await counts(session, since)

    app.include_router(admin_router(host.provider, runtime, dependencies=operator))
    app.include_router(faults_router(runtime.faults, dependencies=operator))
    return app


def add_service_routes(app: FastAPI, host: ServiceHost) -> None:
    """Adds the service's own routes, once its database is connected and it is initialised
    (the edge's probes answer before that)."""
    router = host.provider.http_router(host.runtime)
    if router is not None:
        app.include_router(router)


def add_service_metrics(host: ServiceHost) -> None:
    """Adds the service's own metrics, once it is initialised (its domain objects exist)."""
    if isinstance(host.provider, MetricsProvider):
        host.provider.register_metrics(host.metrics, host.runtime)


async def serve(host: ServiceHost) -> None:
    """Runs a host until SIGINT or SIGTERM, then shuts it down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # A signal while the start still waits for the database ends the start, not just the wait.
    starting = asyncio.create_task(host.start())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        return
    stopping.cancel()
    starting.result()
    try:
        await stop.wait()
    finally:
        log.info("%s stopping", host.provider.name)
        await host.stop()


def run_on_loop(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """Runs `main` to its end on the event loop the settings name (uvloop, where installed;
    otherwise the standard library's)."""
    if event_loop == "uvloop":
        try:
            import uvloop
        except ImportError:
            log.warning("uvloop is not installed: running on asyncio's event loop")
        else:
            uvloop.run(main)
            return
    asyncio.run(main)


def run_service(
    make_provider: Callable[[Any], ServiceProvider], settings_cls: type[ServiceSettings]
) -> None:
    """Entry point of `python -m services.<name>`: settings from the environment, then serve."""
    try:
        settings = settings_cls()
    except ValidationError as exc:
        print(f"{settings_cls.service_name}: bad configuration:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure_logging(settings_cls.service_name, level=settings.log_level, form=settings.log_format)
    try:
        host = ServiceHost(make_provider(settings), settings)
    except (CertificateMissing, tracing.TracingMisconfigured) as exc:
        print(f"{settings_cls.service_name}: {exc}", file=sys.stderr)
        raise SystemExit(BAD_CONFIGURATION_EXIT) from exc
    try:
        run_on_loop(serve(host), settings.event_loop)
    except PortUnavailable as exc:
        print(f"{settings_cls.service_name}: {exc}", file=sys.stderr)
        raise SystemExit(PORT_UNAVAILABLE_EXIT) from exc
    except DatabaseUnreachable as exc:
        print(f"{settings_cls.service_name}: {exc}", file=sys.stderr)
        raise SystemExit(DATABASE_UNREACHABLE_EXIT) from exc
