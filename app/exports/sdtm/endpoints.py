"""GET /api/v1/exports/sdtm/{domain}.{format}?study=CODE: one SDTM dataset of a study as CSV,
Dataset-JSON (JSON or NDJSON) or SAS XPORT v5, streamed; and
GET /api/v1/exports/studies/{study_code}/sdtm/define.xml: the datasets' Define-XML 2.1
(docs/exports.md)."""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from app.auth.deps import Authorize, CurrentPrincipal
from app.checked_input import CheckedRoute
from app.db import SessionDep, get_export_sessionmaker
from app.errors import NotFound
from app.exports.sdtm import service
from app.exports.sdtm.define import define_xml
from app.exports.sdtm.service import MEDIA_TYPES, FileFormat, Readers
from app.permissions import Permission

router = APIRouter(tags=["exports"], route_class=CheckedRoute)


def export_readers() -> Readers:
    """Where the rows are read: a transaction of their own (tests read their own)."""
    factory: Callable[[], Session] = get_export_sessionmaker()
    return factory


ExportReaders = Annotated[Readers, Depends(export_readers)]


@router.get(
    "/exports/sdtm/{domain}.{file_format}",
    summary="One SDTM dataset of a study (dm, sv, se, ex, vs, ae, suppae, suppvs, ts, ta, te, "
    "tv) as csv, json, ndjson or xpt",
    response_class=StreamingResponse,
    responses={200: {"content": {media: {} for media in MEDIA_TYPES.values()}}},
    dependencies=[Depends(Authorize(Permission.EXPORT_READ))],
)
def export_sdtm_dataset(
    domain: str,
    file_format: str,
    session: SessionDep,
    principal: CurrentPrincipal,
    readers: ExportReaders,
    study: Annotated[str, Query(description="the study's code, e.g. MAPP-T")],
) -> StreamingResponse:
    dataset = service.dataset_named(domain)
    try:
        chosen = FileFormat(file_format)
    except ValueError:
        formats = ", ".join(f.value for f in FileFormat)
        raise NotFound(f"Vigil exports no {file_format!r} files; it writes {formats}") from None
    found = service.study_by_code(session, study)
    unblinded = principal.unblinded
    service.audit_export(session, found, dataset, chosen.value, unblinded)
    media_type, extension = MEDIA_TYPES[chosen], chosen.value
    if chosen is FileFormat.XPT:
        as_zip = service.xpt_is_split(session, found, dataset)
        body = service.xpt_chunks(readers, found, dataset, unblinded, as_zip)
        if as_zip:
            media_type, extension = "application/zip", "zip"
    else:
        body = service.text_chunks(readers, found, dataset, chosen, unblinded)
    name = f"{found.code}-{dataset.name.lower()}.{extension}"
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/exports/studies/{study_code}/sdtm/define.xml",
    summary="define.xml (Define-XML 2.1) of the SDTM datasets of a study",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}}},
    dependencies=[Depends(Authorize(Permission.EXPORT_READ))],
)
def export_sdtm_define(
    study_code: str, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    found = service.study_by_code(session, study_code)
    service.audit_export(session, found, "define.xml", "xml", principal.unblinded)
    return Response(
        define_xml(found.code, service.meddra_versions(session, found)),
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="{found.code}-define.xml"'},
    )
