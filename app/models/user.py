"""People and devices that act in Vigil; roles as in DESIGN.md section 2."""

from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Audited, Base, HasId, Timestamped

user_sites = Table(
    "user_sites",
    Base.metadata,
    Column("user_id", ForeignKey("users.id"), primary_key=True),
    Column("site_id", ForeignKey("sites.id"), primary_key=True),
)


class User(HasId, Timestamped, Audited, Base):
    __tablename__ = "users"
    __audit_exclude__ = frozenset({"updated_at", "password_hash"})

    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(300))
    active: Mapped[bool] = mapped_column(default=True)
