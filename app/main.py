"""The ASGI application: `app.main:app`, built by `create_app()`."""

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import APIRouter, FastAPI

from app import listeners, metrics
from app.adverse_events.endpoints import router as adverse_events_router
from app.alerts.endpoints import router as alerts_router
from app.alerts.feed import AlertFeed
from app.alerts.stream import router as alert_stream_router
from app.assessments.endpoints import router as assessments_router
from app.audit_api.endpoints import router as audit_router
from app.audit_api.export_endpoints import router as audit_export_router
from app.audit_api.verify_endpoints import router as audit_verify_router
from app.auth.endpoints import router as auth_router
from app.checked_input import CheckedRoute
from app.config import get_settings
from app.db import get_reader_engine, get_sessionmaker
from app.docs import install_docs
from app.dosing.endpoints import router as dosing_router
from app.errors import install_error_handlers
from app.exports.fhir.endpoints import router as fhir_export_router
from app.exports.reports.endpoints import router as reports_router
from app.exports.sdtm.endpoints import router as sdtm_exports_router
from app.fhir_input import endpoints as fhir_input
from app.fhir_input.endpoints import router as fhir_input_router
from app.health import api_router as health_api_router
from app.health import router as health_router
from app.notes.endpoints import router as notes_router
from app.notifications.dispatcher import Dispatcher
from app.notifications.endpoints import router as notifications_router
from app.openapi import install_openapi
from app.participants.endpoints import router as participants_router
from app.replay.endpoints import router as replay_router
from app.request_ids import RequestIds
from app.request_log import RequestLog
from app.scheduler import Scheduler
from app.security import install_security
from app.signatures.endpoints import router as signatures_router
from app.studies.endpoints import router as studies_router
from app.users.endpoints import router as users_router
from app.vitals.endpoints import router as vitals_router
from app.web import router as web


@asynccontextmanager
async def lifespan(application: FastAPI) -> AsyncIterator[None]:
    """Start the scheduler (unless VIGIL_SCHEDULER_INTERVAL_SECONDS is 0) and the delivery of
    alert notifications (unless VIGIL_OUTBOX_POLL_SECONDS is 0); stop them and the live alert
    feed at shutdown."""
    settings = get_settings()
    interval = settings.scheduler_interval_seconds
    scheduler = Scheduler(get_sessionmaker(), interval) if interval > 0 else None
    if scheduler is not None:
        scheduler.start()
    dispatcher = Dispatcher(get_sessionmaker(), settings) if settings.outbox_poll_seconds else None
    if dispatcher is not None:
        dispatcher.start()
    # What is alive once the app has started (modules, routes, schemas, the protocol cache)
    # lives as long as the process: keep it out of the cyclic collector, whose full passes
    # over it would otherwise stop every request for ~90 ms every few seconds under load.
    gc.freeze()
    try:
        yield
    finally:
        if scheduler is not None:
            await to_thread.run_sync(scheduler.stop)
        if dispatcher is not None:
            await to_thread.run_sync(dispatcher.stop)
        await application.state.alert_feed.stop()


def create_app() -> FastAPI:
    listeners.install()  # the audit trail and the alert announcements, before any request
    settings = get_settings()
    application = FastAPI(
        title="Vigil",
        version="0.1.0",
        summary="Session protocol and safety monitoring for psychedelic-assisted therapy trials",
        docs_url=None,  # served by app/docs.py, without a CDN
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )
    application.state.alert_feed = AlertFeed(poll_seconds=settings.alert_feed_poll_seconds)
    install_error_handlers(application)
    fhir_input.install(application)  # OperationOutcomes, not problem+json, on /api/v1/fhir
    install_docs(application)
    # security headers (around everything, 500s included), CORS, the request body size limit
    install_security(application, settings)

    # GET /metrics, and the requests' counts and durations (inside the log line's timing)
    metrics.install(application, settings, connect=lambda: get_reader_engine().connect())
    application.add_middleware(RequestLog)  # one line per request, with its id
    application.add_middleware(RequestIds)  # outermost: every answer carries the id

    api = APIRouter(prefix="/api/v1", route_class=CheckedRoute)
    for router in (
        studies_router,
        participants_router,
        dosing_router,
        vitals_router,
        adverse_events_router,
        alert_stream_router,  # before alerts_router: /alerts/stream is not an id
        alerts_router,
        assessments_router,
        notes_router,
        signatures_router,
        audit_verify_router,  # before audit_router: /audit-records/verify is not an id
        audit_export_router,  # before audit_router: /audit-records/export is not an id
        audit_router,
        auth_router,
        users_router,
        notifications_router,
        replay_router,
        sdtm_exports_router,
        fhir_export_router,
        fhir_input_router,
        reports_router,
        health_api_router,
    ):
        api.include_router(router)

    application.include_router(api)
    application.include_router(health_router)  # /healthz and /readyz, at the root
    web.install(application)  # the web client under /, after the API's routes
    install_openapi(application, settings)
    return application


app = create_app()
