"""The live page of a dosing session (GET /sessions/{id}): page.py has its routes, view.py what
it reads, schedule.py the measurement schedule, forms.py its forms."""

from app.web.session.page import router

__all__ = ["router"]
