"""Accounts: roles and Argon2id password hashes (argon2-cffi), nothing else.

Passwords are hashed with argon2-cffi's default profile (RFC 9106, low memory) and
rehashed on login when the profile changes. An unknown account costs the same hash as a
known one, so the login answer's timing does not tell which names exist.
"""

from __future__ import annotations

import enum
import re
import secrets

import argon2
import attrs
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from veza_reference._db import User

USER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MIN_PASSWORD = 12


class Role(enum.StrEnum):
    """What an account is for. Admins may do everything; see docs/app/auth.md."""

    BUYER = "buyer"
    CREATOR = "creator"
    ADMIN = "admin"


class UserError(ValueError):
    """An account could not be created (the message says why; never the password)."""


@attrs.frozen
class Account:
    """An account as the app uses it (the hash stays in the database)."""

    id: str
    role: Role
    demo: bool


class Users:
    """Create and authenticate accounts in the app's ``app_users`` table."""

    def __init__(self, engine: sa.Engine, hasher: argon2.PasswordHasher | None = None) -> None:
        """Use ``engine``; ``hasher`` defaults to argon2-cffi's recommended profile."""
        self._engine = engine
        self._hasher = hasher or argon2.PasswordHasher()
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def __repr__(self) -> str:
        return f"Users(engine={self._engine!r})"

    def create(
        self, user_id: str, password: str, role: Role | str, *, demo: bool = False
    ) -> Account:
        """Create an account.

        Raises:
            UserError: The id is malformed or taken, the role unknown, or the password
                shorter than 12 characters.
        """
        if not USER_ID.fullmatch(user_id):
            msg = "a user id is 1-64 letters, digits, '_' or '-'"
            raise UserError(msg)
        try:
            role = Role(role)
        except ValueError:
            msg = f"unknown role {role!r} (buyer, creator or admin)"
            raise UserError(msg) from None
        if len(password) < MIN_PASSWORD:
            msg = f"a password has at least {MIN_PASSWORD} characters"
            raise UserError(msg)
        row = User(
            id=user_id, role=role.value, password_hash=self._hasher.hash(password), demo=demo
        )
        try:
            with Session(self._engine) as session, session.begin():
                session.add(row)
        except IntegrityError:
            msg = f"the user id {user_id!r} is taken"
            raise UserError(msg) from None
        return Account(user_id, role, demo)

    def get(self, user_id: str) -> Account | None:
        """The account, or ``None``."""
        with Session(self._engine) as session:
            row = session.get(User, user_id)
        return None if row is None else Account(row.id, Role(row.role), row.demo)

    def authenticate(self, user_id: str, password: str) -> Account | None:
        """The account if ``password`` is its password, else ``None`` (same cost either way)."""
        with Session(self._engine) as session:
            row = session.get(User, user_id) if USER_ID.fullmatch(user_id) else None
        try:
            self._hasher.verify(row.password_hash if row else self._dummy, password)
        except argon2.exceptions.VerificationError:
            return None
        except argon2.exceptions.InvalidHashError:
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(row.password_hash):
            with Session(self._engine) as session, session.begin():
                fresh = session.get(User, row.id)
                if fresh is not None:
                    fresh.password_hash = self._hasher.hash(password)
        return Account(row.id, Role(row.role), row.demo)

    def demo_accounts(self) -> list[str]:
        """Ids of the accounts ``veza-demo`` created (production refuses to start with any)."""
        with Session(self._engine) as session:
            return list(session.scalars(sa.select(User.id).where(User.demo.is_(True))))
