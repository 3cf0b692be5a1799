"""Loading-or-404 of a dosing session from the path, shared by the dosing and vitals routes:
a session of a participant outside the caller's sites answers 404, like a missing one."""

from app.auth.deps import ScopedDosingSession

DosingSessionDep = ScopedDosingSession

__all__ = ["DosingSessionDep"]
