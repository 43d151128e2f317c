"""The console's web app: server-rendered pages over the five services' HTTP edges.

Pages render whole on the server (Jinja2) and mark their live parts with `data-refresh`, a
fragment route that `static/console.js` fetches again every `refresh_ms`. Everything the
browser loads comes from this app (`/static`): no font, script or style from elsewhere. A bad
TCN is a 400 page, an unknown one a 404, a federation that does not answer a 503, each saying
why; never a 500.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import quote, urlsplit

import httpx
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..cli.report import review_programs, rollout_by_phase
from . import charts, sequence
from .sources import ConsoleConfig, Edges, valid_tcn

HERE: Final = Path(__file__).resolve().parent
PAGES: Final = (
    ("/", "Overview"),
    ("/bookings", "Bookings"),
    ("/dead-letters", "Dead letters"),
    ("/measures", "Measures"),
)
# The measures page lists this many of the latest referrals for prosecution.
RECENT_REFERRALS: Final = 10


def _templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["rate"] = lambda v: "-" if v is None else f"{v:.1f}/s"
    env.filters["count"] = lambda v: "-" if v is None else f"{v:g}"
    return env


def create_app(
    config: ConsoleConfig, *, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """The console over the edges in `config` (`transport`: for tests that answer in-process)."""
    env = _templates()
    state: dict[str, Edges] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=config.timeout_s, transport=transport) as client:
            state["edges"] = Edges(config, client)
            yield

    app = FastAPI(title="scfed console", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def edges() -> Edges:
        return state["edges"]

    def page(
        request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        html = env.get_template(template).render(
            pages=PAGES,
            path=request.url.path,
            refresh_ms=config.refresh_ms,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def problem(request: Request, status_code: int, title: str, detail: str) -> HTMLResponse:
        return page(request, "problem.html", status_code, title=title, detail=detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        """Every HTTP error as a page of the console (a 404 for an unknown path, ...)."""
        return problem(request, exc.status_code, f"HTTP {exc.status_code}", str(exc.detail))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness for a container's probe: the console serves. It asks no service (the
        overview says which ones answer), so a federation that is down never restarts it."""
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> HTMLResponse:
        """The five agencies: readiness, message rates, outbox depth and dead letters."""
        return page(request, "overview.html", services=await edges().overview())

    @app.get("/fragments/overview", response_class=HTMLResponse)
    async def overview_fragment(request: Request) -> HTMLResponse:
        """The overview's table, for the live refresh."""
        return page(request, "_overview.html", services=await edges().overview())

    @app.get("/bookings", response_class=HTMLResponse, response_model=None)
    async def bookings(
        request: Request, tcn: Annotated[str | None, Query(max_length=200)] = None
    ) -> Response:
        """The recent bookings; with `tcn`, the way to that booking's path."""
        if tcn is not None:
            tcn = tcn.strip()
            if not valid_tcn(tcn):
                return _bad_tcn(request, tcn)
            return RedirectResponse(f"/bookings/{quote(tcn)}", status_code=303)
        rows, trouble = await edges().recent_bookings()
        return page(request, "bookings.html", bookings=rows, trouble=trouble)

    @app.get("/fragments/bookings", response_class=HTMLResponse)
    async def bookings_fragment(request: Request) -> HTMLResponse:
        """The recent bookings' list, for the live refresh."""
        rows, trouble = await edges().recent_bookings()
        return page(request, "_bookings.html", bookings=rows, trouble=trouble)

    def _bad_tcn(request: Request, tcn: str) -> HTMLResponse:
        return problem(
            request,
            400,
            "Not a TCN",
            f"{tcn[:80]!r} is not a TCN: letters and digits (then also - and _), at most 64 "
            "characters, such as CA3F2B0C9D4E5A6B7C.",
        )

    @app.get("/bookings/{tcn}", response_class=HTMLResponse)
    async def booking(request: Request, tcn: str) -> HTMLResponse:
        """One booking's path as a sequence diagram, from every service's journal."""
        if not valid_tcn(tcn):
            return _bad_tcn(request, tcn)
        entries, left_out = await edges().journal(tcn)
        if left_out and len(left_out) == len(edges().names):
            detail = "; ".join(f"{n}: {why}" for n, why in left_out.items())
            return problem(request, 503, "No service answered", detail)
        if not entries:
            return problem(request, 404, "Unknown TCN", f"no service's journal mentions TCN {tcn}.")
        items = sequence.arrows(entries)
        diagram = Markup(sequence.svg(items, title=f"The path of booking {tcn}"))
        return page(
            request,
            "booking.html",
            tcn=tcn,
            diagram=diagram,
            arrows=items,
            lanes=sequence.LANE_TITLES,
            left_out=left_out,
        )

    @app.get("/dead-letters", response_class=HTMLResponse)
    async def dead_letters(request: Request) -> HTMLResponse:
        """Each service's dead letters, with a requeue button."""
        return page(request, "dead_letters.html", dead=await edges().dead_letters(), result=None)

    @app.post("/dead-letters/{service}/requeue", response_class=HTMLResponse)
    async def requeue(request: Request, service: str) -> HTMLResponse:
        """Requeues one service's dead letters (as the operator) and shows the result."""
        if not _same_origin(request):
            return problem(
                request, 403, "Refused", "a requeue is taken from the console's own page only."
            )
        if service not in edges().names:
            return problem(request, 404, "Unknown service", f"no service named {service[:40]!r}.")
        ok, message = await edges().requeue(service)
        return page(
            request,
            "dead_letters.html",
            200 if ok else 502,
            dead=await edges().dead_letters(),
            result={"ok": ok, "message": message, "service": service},
        )

    @app.get("/measures", response_class=HTMLResponse)
    async def measures(request: Request) -> HTMLResponse:
        """The Strategic Plan's measures with charts."""
        return page(request, "measures.html", **await _measures_context())

    @app.get("/fragments/measures", response_class=HTMLResponse)
    async def measures_fragment(request: Request) -> HTMLResponse:
        """The measures' charts and table, for the live refresh."""
        return page(request, "_measures.html", **await _measures_context())

    async def _measures_context() -> dict[str, Any]:
        rows, unreadable, sample, counts = await edges().measures()
        cases = await edges().cases()
        referrals = await edges().referrals()
        history = list(edges().history)
        levels = ("level_1", "level_2", "level_3")
        detainers_over_time = charts.line_chart(
            "Detainers (I-247) by level, over this page's samples",
            [(f"Level {lvl[-1]}", [s.detainers.get(lvl, 0.0) for s in history]) for lvl in levels],
        )
        removals_over_time = charts.line_chart(
            "ICE arrests and removals, over this page's samples",
            [
                (label, [s.ice.get(key, 0.0) for s in history])
                for label, key in (
                    ("ICE arrests", "alien_arrests"),
                    ("removals", "removals"),
                    ("criminal alien removals", "criminal_alien_removals"),
                )
            ],
        )
        ice = sample.ice
        custody = charts.bar_chart(
            "Custody: beds and Alternatives to Detention",
            [
                ("beds", ice.get("beds")),
                ("beds occupied", ice.get("beds_occupied")),
                ("... by criminal aliens", ice.get("beds_occupied_by_criminal_aliens")),
                ("ATD placements", ice.get("atd_placements")),
            ],
        )
        percents = charts.bar_chart(
            "Measures in percent",
            [(f"{r['goal']} {r['key']}", r["value"]) for r in rows if r["unit"] == "%"],
            unit="%",
            maximum=100,
        )
        by_state: list[tuple[str, float | None]] = []
        if isinstance(cases, dict):
            by_state = [(str(k), float(v)) for k, v in sorted(cases.get("by_state", {}).items())]
        cases_chart = charts.bar_chart("Removal cases by state", by_state or [("no cases", 0)])
        referral_states: dict[str, int] = {}
        for referral in referrals if isinstance(referrals, list) else []:
            status = str(referral.get("status", ""))
            referral_states[status] = referral_states.get(status, 0) + 1
        return {
            "rows": rows,
            "unreadable": unreadable,
            "programs": review_programs(counts),
            "phases": rollout_by_phase(counts),
            "referrals": referrals[-RECENT_REFERRALS:][::-1] if isinstance(referrals, list) else [],
            "referral_states": dict(sorted(referral_states.items())),
            "referrals_problem": referrals if isinstance(referrals, str) else "",
            "cases_problem": cases if isinstance(cases, str) else "",
            "charts": [
                Markup(c)
                for c in (detainers_over_time, custody, removals_over_time, cases_chart, percents)
            ],
        }

    return app


def _same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site's page (a form on
    another origin posting to the console, which acts with the operator's token)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return request.headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
    return urlsplit(origin).netloc == request.headers.get("host", "")
