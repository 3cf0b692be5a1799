"""The web client put together: its static files, its pages (all behind the form-token guard
and the idle sign-out), and its error pages."""

from fastapi import APIRouter, Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from app.web import (
    adverse_events,
    csrf,
    errors,
    exports_page,
    history,
    idle,
    inbox,
    notes,
    notifications_page,
    overview,
    participants,
    session,
    signin,
)
from app.web.templating import HERE


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    pages = APIRouter(
        include_in_schema=False,
        dependencies=[Depends(csrf.require_token), Depends(idle.idle_guard)],
    )
    for router in (
        signin.router,
        overview.router,
        participants.router,
        history.router,
        session.router,
        inbox.router,
        adverse_events.router,
        notes.router,
        exports_page.router,
        notifications_page.router,
    ):
        pages.include_router(router)
    app.include_router(pages)
    errors.install(app)
