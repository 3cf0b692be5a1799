"""The Jinja2 environment of the web client's pages, and how a page is rendered: every page
gets the caller (for the header), the form token and the site-local time filters."""

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.config import get_settings
from app.web import csrf

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")


def local_time(moment: datetime | None, zone: str, style: str = "datetime") -> str:
    """A stored (UTC) time in a site's clock, always with its zone: '3 Dec 2026 14:05 CET'."""
    if moment is None:
        return "-"
    here = moment.astimezone(ZoneInfo(zone))
    formats = {"datetime": "%-d %b %Y %H:%M %Z", "time": "%H:%M %Z", "date": "%-d %b %Y"}
    return here.strftime(formats[style])


def calendar_day(day: date | None) -> str:
    """A calendar date (a visit's day, already the site's): '3 Dec 2026'."""
    return "-" if day is None else day.strftime("%-d %b %Y")


def time_left(left: timedelta) -> str:
    """'5 h 12 min left' or 'overdue by 2 h 3 min'."""
    minutes = int(abs(left).total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    span = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"overdue by {span}" if left < timedelta(0) else f"{span} left"


templates.env.filters["local_time"] = local_time
templates.env.filters["time_left"] = time_left
templates.env.filters["calendar_day"] = calendar_day
templates.env.globals["idle_minutes"] = lambda: get_settings().web_idle_minutes


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("principal", getattr(request.state, "principal", None))
    context.setdefault("csrf_token", csrf.token_for(request))
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"  # trial data: never kept by the browser
    return response
