"""The dashboard's HTTP edge: sign-in, session check, group check, then render a page.

Everything an operator does here is a GET that changes nothing, so a forged cross-site
request gains nothing (the only POST signs an admin in). Each response carries a
Content-Security-Policy that allows no script at all and no framing; charts are inline
SVG drawn on the server. URLs carry group ids and the period, never a name.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from aiohttp import web
from sqlalchemy import Engine

from analytics.periods import Period, PeriodError, explicit_period, resolve_period
from bot.dashboard import pages
from bot.dashboard.words import w
from bot.telemetry import Telemetry
from config.settings import Settings
from handlers import signin
from handlers.export import SHEET_KEYS, build_sheets, gather_export, write_csv, write_xlsx
from handlers.stats import StatsOptions
from storage.dashboard import use_link
from storage.queries import GroupRecord, list_groups

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
COOKIE = "qunpulse_session"
PREFIX = "/dashboard"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The sign-in URL carries a token: never send it on as a referrer.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

#: The periods of the picker (the same words as ``qunpulse stats --period``).
PICKER = ("day", "yesterday", "week", "last-week", "month", "last-month", "7d", "30d", "90d")


@dataclass
class Dashboard:
    """What the dashboard's handlers share."""

    settings: Settings
    engine: Engine
    telemetry: Telemetry
    clock: Clock
    templates: jinja2.Environment
    _key: str | None = None

    async def key(self) -> str:
        """The signing key (configured, or generated once and kept in the database)."""
        if self._key is None:
            self._key = await asyncio.to_thread(
                signin.signing_key, self.settings, self.engine, self.clock()
            )
        return self._key

    @property
    def locale(self) -> Any:
        return self.settings.locale

    @property
    def secure_cookie(self) -> bool:
        return (self.settings.server.public_url or "").lower().startswith("https://")

    def today(self) -> date:
        return self.clock().astimezone(self.settings.zone).date()


DASHBOARD_KEY = web.AppKey("dashboard", Dashboard)


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bot.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env


def add_dashboard(
    app: web.Application,
    *,
    settings: Settings,
    engine: Engine,
    telemetry: Telemetry,
    clock: Clock,
) -> None:
    """Serve the dashboard under ``/dashboard`` on ``app``."""
    app[DASHBOARD_KEY] = Dashboard(settings, engine, telemetry, clock, _templates())
    app.middlewares.append(security_headers)
    add = app.router.add_get
    add(PREFIX, my_groups)
    add(f"{PREFIX}/", my_groups)
    add(f"{PREFIX}/signin", sign_in_with_link)
    add(f"{PREFIX}/login", login_form)
    app.router.add_post(f"{PREFIX}/login", login_with_admin_token)
    add(f"{PREFIX}/signout", sign_out)
    add(f"{PREFIX}/static/style.css", stylesheet)
    add(PREFIX + "/groups/{group_id:\\d+}", group_view)
    add(PREFIX + "/groups/{group_id:\\d+}/members", members_view)
    add(PREFIX + "/groups/{group_id:\\d+}/alerts", alerts_view)
    add(PREFIX + "/groups/{group_id:\\d+}/export.xlsx", export_xlsx)
    add(PREFIX + "/groups/{group_id:\\d+}/export/{sheet}.csv", export_csv)


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if not request.path.startswith(PREFIX):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as error:
        for name, value in SECURITY_HEADERS.items():
            error.headers.setdefault(name, value)
        raise
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


# ------------------------------------------------------------------ rendering


def _dashboard(request: web.Request) -> Dashboard:
    return request.app[DASHBOARD_KEY]


def _render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    dash = _dashboard(request)
    locale = dash.locale

    def say(key: str, **more: object) -> str:
        return w(key, locale, **more)

    html = dash.templates.get_template(template).render(
        w=say, locale=locale, lang="zh-CN" if locale == "zh_CN" else "en", **values
    )
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def _message(request: web.Request, status: int, key: str, **more: object) -> web.Response:
    text = w(key, _dashboard(request).locale, **more)
    return _render(request, "message.html", status=status, message=text, viewer=None)


_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
}


def _refusal(request: web.Request, status: int, key: str, **more: object) -> web.HTTPException:
    """A page saying ``key``, as an exception that ends the request with ``status``."""
    page = _message(request, status, key, **more)
    return _ERRORS[status](text=page.text, content_type="text/html")


# ------------------------------------------------------------------ sign-in


async def _viewer(request: web.Request) -> signin.Viewer | None:
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    dash = _dashboard(request)
    try:
        return signin.read_session(await dash.key(), value, dash.clock())
    except signin.BadToken:
        return None


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _start_session(dash: Dashboard, key: str, viewer: signin.Viewer) -> web.Response:
    lifetime = timedelta(hours=dash.settings.dashboard.session_hours)
    response = _see_other(f"{PREFIX}/")
    response.set_cookie(
        COOKIE,
        signin.make_session(key, viewer, dash.clock(), lifetime),
        max_age=int(lifetime.total_seconds()),
        path=PREFIX,
        httponly=True,
        samesite="Lax",
        secure=dash.secure_cookie,
    )
    return response


async def sign_in_with_link(request: web.Request) -> web.StreamResponse:
    """``/dashboard/signin?token=…``: a link from ``/dashboard`` in chat, usable once."""
    dash = _dashboard(request)
    key = await dash.key()
    now = dash.clock()
    try:
        link = signin.read_link_token(key, request.query.get("token", ""), now)
    except signin.BadToken as error:
        dash.telemetry.dashboard_signin_failures.labels(error.reason).inc()
        log.info("dashboard: refused a sign-in link (%s)", error.reason)
        return _message(request, 403, "signin_failed")
    first_use = await asyncio.to_thread(use_link, dash.engine, link.nonce, now, link.expires_at)
    if not first_use:
        dash.telemetry.dashboard_signin_failures.labels("used").inc()
        log.info("dashboard: refused a sign-in link that was used before")
        return _message(request, 403, "signin_failed")
    dash.telemetry.dashboard_signins.labels("link").inc()
    return _start_session(dash, key, link.viewer)


async def login_form(request: web.Request) -> web.Response:
    admin = bool(_dashboard(request).settings.dashboard.admin_token)
    return _render(request, "login.html", viewer=None, admin=admin, failed=False)


def _cross_site(request: web.Request, dash: Dashboard) -> bool:
    """Whether a POST comes from a page of another site.

    Browsers say so in ``Sec-Fetch-Site``; where that is missing, ``Origin`` is compared
    with this host and ``server.public_url``. (Under ``Referrer-Policy: no-referrer``
    Chromium sends ``Origin: null`` even for our own form, so ``null`` alone proves
    nothing.)
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return False
    ours = {request.host, urlsplit(dash.settings.server.public_url or "").netloc}
    return urlsplit(origin).netloc not in ours


async def login_with_admin_token(request: web.Request) -> web.StreamResponse:
    """``POST /dashboard/login``: an admin signs in with ``[dashboard] admin_token``."""
    dash = _dashboard(request)
    if _cross_site(request, dash):
        # A form posted from another site (login CSRF).
        dash.telemetry.dashboard_signin_failures.labels("origin").inc()
        return _message(request, 403, "signin_failed")
    form = await request.post()
    offered = form.get("admin_token")
    if not isinstance(offered, str) or not signin.admin_token_matches(dash.settings, offered):
        dash.telemetry.dashboard_signin_failures.labels("admin_token").inc()
        log.info("dashboard: refused an admin sign-in")
        admin = bool(dash.settings.dashboard.admin_token)
        return _render(request, "login.html", status=403, viewer=None, admin=admin, failed=True)
    dash.telemetry.dashboard_signins.labels("admin_token").inc()
    return _start_session(dash, await dash.key(), signin.Viewer(None, None, admin=True))


async def sign_out(request: web.Request) -> web.StreamResponse:
    response = _see_other(f"{PREFIX}/login")
    response.del_cookie(COOKIE, path=PREFIX)
    return response


async def stylesheet(_request: web.Request) -> web.Response:
    css = resources.files("bot.dashboard").joinpath("static/style.css").read_text("utf-8")
    return web.Response(
        text=css, content_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


# ------------------------------------------------------------------ guards


async def _signed_in(request: web.Request) -> signin.Viewer:
    viewer = await _viewer(request)
    if viewer is None:
        raise web.HTTPSeeOther(f"{PREFIX}/login")
    return viewer


async def _group_for(request: web.Request, viewer: signin.Viewer) -> GroupRecord:
    """The group of the URL, if the viewer runs it (403 otherwise, 404 if none)."""
    dash = _dashboard(request)
    group_id = int(request.match_info["group_id"])
    groups = await asyncio.to_thread(list_groups, dash.engine)
    group = next((g for g in groups if g.id == group_id), None)
    if group is None:
        raise _refusal(request, 404, "not_found")
    if not signin.runs_group(dash.settings, viewer, group):
        log.info("dashboard: refused group %d to a viewer who does not run it", group_id)
        raise _refusal(request, 403, "forbidden")
    return group


def _period(request: web.Request) -> tuple[Period, dict[str, str]]:
    """The period of the query (``period=7d`` or ``from=…&to=…``) and its query params.

    Raises:
        web.HTTPException: a 400 page naming what is wrong.
    """
    dash = _dashboard(request)
    zone = dash.settings.zone
    query = request.query
    try:
        if query.get("from") or query.get("to"):
            first = date.fromisoformat(query.get("from", ""))
            last = date.fromisoformat(query.get("to", ""))
            if last < first or (last - first).days > 366:
                raise PeriodError("from … to must be in order and at most a year apart")
            return explicit_period(first, last, zone), {
                "from": first.isoformat(),
                "to": last.isoformat(),
            }
        spec = query.get("period") or dash.settings.dashboard.default_period
        anchor = date.fromisoformat(query["date"]) if query.get("date") else dash.today()
        period = resolve_period(spec, anchor, zone)
        if period.days > 366:
            raise PeriodError("at most 366 days")
        params = {"period": spec} | ({"date": anchor.isoformat()} if query.get("date") else {})
        return period, params
    except (PeriodError, ValueError) as error:
        raise _refusal(request, 400, "bad_period", error=str(error)) from None


def _common(
    request: web.Request, viewer: signin.Viewer, period: Period, params: dict[str, str]
) -> dict[str, Any]:
    return {
        "viewer": viewer,
        "period": period,
        "params": params,
        "query": urlencode(params),
        "picker": PICKER,
        "current": params.get("period", ""),
        "path": request.path,
    }


# ------------------------------------------------------------------ pages


async def my_groups(request: web.Request) -> web.Response:
    dash = _dashboard(request)
    viewer = await _signed_in(request)
    period, params = _period(request)
    sort = request.query.get("sort", "messages")
    descending = request.query.get("order", "desc") != "asc"
    groups = await asyncio.to_thread(list_groups, dash.engine)
    mine = signin.groups_run_by(dash.settings, viewer, groups)
    rows = await asyncio.to_thread(
        pages.overview, dash.engine, dash.settings, mine, period, sort, descending
    )
    return _render(
        request,
        "groups.html",
        rows=rows,
        columns=pages.OVERVIEW_COLUMNS,
        sort=sort,
        descending=descending,
        **_common(request, viewer, period, params),
    )


async def group_view(request: web.Request) -> web.Response:
    dash = _dashboard(request)
    viewer = await _signed_in(request)
    group = await _group_for(request, viewer)
    period, params = _period(request)
    page = await asyncio.to_thread(pages.group_page, dash.engine, dash.settings, group, period)
    return _render(
        request,
        "group.html",
        page=page,
        sheets=SHEET_KEYS,
        **_common(request, viewer, period, params),
    )


async def members_view(request: web.Request) -> web.Response:
    dash = _dashboard(request)
    viewer = await _signed_in(request)
    group = await _group_for(request, viewer)
    period, params = _period(request)
    sort = request.query.get("sort", "messages")
    descending = request.query.get("order", "desc") != "asc"
    search = request.query.get("q", "")[:100]
    try:
        number = int(request.query.get("page", "1"))
    except ValueError:
        number = 1
    page = await asyncio.to_thread(
        pages.members_page,
        dash.engine,
        dash.settings,
        group,
        period,
        query=search,
        sort=sort,
        descending=descending,
        page=number,
        today=dash.today(),
    )
    return _render(
        request,
        "members.html",
        page=page,
        search=search,
        sort=sort,
        descending=descending,
        sorts=pages.MEMBER_SORTS,
        zone=dash.settings.zone,
        **_common(request, viewer, period, params),
    )


async def alerts_view(request: web.Request) -> web.Response:
    viewer = await _signed_in(request)
    group = await _group_for(request, viewer)
    period, params = _period(request)
    dash = _dashboard(request)
    label = pages.group_label(dash.settings, group)
    alerts = await asyncio.to_thread(pages.alert_rows, dash.engine, dash.settings, group, period)
    return _render(
        request,
        "alerts.html",
        group=group,
        label=label,
        alerts=alerts,
        **_common(request, viewer, period, params),
    )


# ------------------------------------------------------------------ downloads


def _export_file(
    dash: Dashboard, group: GroupRecord, period: Period, kind: str, sheet: str | None
) -> bytes:
    options = StatsOptions.from_settings(dash.settings)
    data = gather_export(dash.engine, group, period, options, dash.clock())
    sheets = build_sheets(data, dash.settings.locale)
    with tempfile.TemporaryDirectory(prefix="qunpulse-export-") as folder:
        if kind == "xlsx":
            return write_xlsx(sheets, Path(folder) / "export.xlsx").read_bytes()
        [written] = write_csv([s for s in sheets if s.key == sheet], Path(folder) / "export.csv")
        return written.read_bytes()


async def _download(request: web.Request, kind: str, sheet: str | None) -> web.Response:
    dash = _dashboard(request)
    viewer = await _signed_in(request)
    group = await _group_for(request, viewer)
    period, _params = _period(request)
    body = await asyncio.to_thread(_export_file, dash, group, period, kind, sheet)
    # Ids and dates only in the file name: group names are chosen by people.
    name = f"qunpulse-{group.id}-{period.first}_{period.last}" + (
        ".xlsx" if kind == "xlsx" else f"-{sheet}.csv"
    )
    content_type = (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if kind == "xlsx"
        else "text/csv"
    )
    return web.Response(
        body=body,
        content_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def export_xlsx(request: web.Request) -> web.Response:
    return await _download(request, "xlsx", None)


async def export_csv(request: web.Request) -> web.Response:
    sheet = request.match_info["sheet"]
    if sheet not in SHEET_KEYS:
        return _message(request, 404, "not_found")
    return await _download(request, "csv", sheet)
