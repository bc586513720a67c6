"""Staff: the people who sign in to the console, beside the API keys of systems.

A person has a username, one role of the API's own role table (domain/permissions.py says what
each role may do, for keys and people alike) and a password, stored only as an argon2id hash.
Signing in makes a session: a random token in the browser's cookie, its SHA-256 in the
database (so every worker and replica knows it), and a CSRF token for the session's forms.

Throttling: after MAX_FAILED_LOGINS wrong passwords in a row an account is locked for
LOCK_MINUTES, whoever tries; the console also slows down one address's tries (console/app.py).
A disabled account signs nobody in and its sessions end. Every change to an account, every
sign-in and every lock is in the audit log under `user/<name>`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection

from ..domain.access import Principal, Role
from ..storage import Database, audit, staff
from .errors import ErrorKind, FieldViolation, ServiceError

# Roles a person may have: the staff roles. Website and storefront are systems, not people.
STAFF_ROLES = (Role.ADMIN, Role.MANAGER, Role.OPERATIONS, Role.WAREHOUSE, Role.FINANCE)
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MIN_PASSWORD = 12
MAX_PASSWORD = 200
MAX_FAILED_LOGINS = 5
LOCK_MINUTES = 15
LONGEST_SESSION_DAYS = 7  # ORDERGATE_CONSOLE_SESSION_HOURS is at most a week

_hasher = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified against when the username is unknown, so that an unknown name takes as long to
# refuse as a wrong password (no telling which names exist by timing).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Session:
    """A signed-in person: who, and the session's CSRF token."""

    user_id: int
    username: str
    role: Role
    csrf_token: str

    @property
    def principal(self) -> Principal:
        """The person as the API's caller. `client_name` is what services write as the actor
        of what they record (audit log, order history): the person's username."""
        return Principal(
            0, self.username, self.role, key_id=f"user:{self.username}", person=self.username
        )


class SignInRefused(Exception):
    """Wrong name or password, a disabled account, or a locked one; `message` is what the
    person is told (never which of name or password was wrong)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def new_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


def create_user(db: Database, username: str, role: Role, password: str, *, actor: str) -> None:
    _check_username(username)
    if role not in STAFF_ROLES:
        raise _invalid(
            "role", f"a person's role is one of {', '.join(r.value for r in STAFF_ROLES)}"
        )
    _check_password(password, username)
    now = datetime.now(UTC)
    hashed = _hasher.hash(password)
    with db.transaction() as tx:
        if staff.find_user(tx, username) is not None:
            raise ServiceError(
                ErrorKind.ALREADY_EXISTS, "USER_EXISTS", f"A user {username!r} exists already."
            )
        if staff.client_exists(tx, username):
            # The audit log names people and API clients alike: one name, one actor.
            raise _invalid("username", f"{username!r} is the name of an API client")
        staff.insert_user(tx, username, role, hashed, now)
        _audit(tx, actor, "user.create", username, now, after={"role": role.value})


def list_users(db: Database) -> list[staff.StaffUser]:
    with db.reader() as conn:
        return staff.list_users(conn)


def disable_user(db: Database, username: str, *, actor: str, reason: str = "") -> None:
    now = datetime.now(UTC)
    with db.transaction() as tx:
        user = _existing(tx, username)
        staff.update_user(tx, user.id, disabled_at=now)
        staff.delete_sessions_of(tx, user.id)  # signed out everywhere, now
        _audit(tx, actor, "user.disable", username, now, reason=reason)


def enable_user(db: Database, username: str, *, actor: str) -> None:
    now = datetime.now(UTC)
    with db.transaction() as tx:
        user = _existing(tx, username)
        staff.update_user(tx, user.id, disabled_at=None, failed_logins=0, locked_until=None)
        _audit(tx, actor, "user.enable", username, now)


def reset_password(db: Database, username: str, password: str, *, actor: str) -> None:
    """A new password; the account's sessions end and a lock is lifted."""
    _check_password(password, username)
    hashed = _hasher.hash(password)
    now = datetime.now(UTC)
    with db.transaction() as tx:
        user = _existing(tx, username)
        staff.update_user(tx, user.id, password_hash=hashed, failed_logins=0, locked_until=None)
        staff.delete_sessions_of(tx, user.id)
        _audit(tx, actor, "user.reset_password", username, now)


def sign_in(db: Database, username: str, password: str, peer: str) -> tuple[str, Session]:
    """A new session for `username` if `password` is theirs: (the cookie's token, session).
    Slow on purpose (argon2): run it off the event loop."""
    now = datetime.now(UTC)
    with db.reader() as conn:
        user = staff.find_user(conn, username) if len(username) <= 64 else None
    if user is None:
        _verify(_DUMMY_HASH, password)
        raise SignInRefused("Wrong username or password.")
    if user.locked_until is not None and user.locked_until > now:
        raise SignInRefused(
            "Too many wrong passwords: this account is locked for a while. "
            "Try again later, or ask an administrator to reset the password."
        )
    if not _verify(user.password_hash, password):
        with db.transaction() as tx:
            failed = user.failed_logins + 1
            locked = now + timedelta(minutes=LOCK_MINUTES) if failed >= MAX_FAILED_LOGINS else None
            staff.update_user(
                tx, user.id, failed_logins=0 if locked else failed, locked_until=locked
            )
            if locked:
                _audit(
                    tx,
                    username,
                    "user.locked",
                    username,
                    now,
                    reason=f"{failed} wrong passwords in a row from {peer}",
                )
        raise SignInRefused("Wrong username or password.")
    if user.disabled_at is not None:
        raise SignInRefused("This account is disabled. Ask an administrator.")
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with db.transaction() as tx:
        staff.update_user(tx, user.id, failed_logins=0, locked_until=None)
        staff.insert_session(tx, _sha256(token), user.id, csrf, now)
        # Sessions nobody came back to: gone after the longest a session may last (a week).
        staff.delete_sessions_seen_before(tx, now - timedelta(days=LONGEST_SESSION_DAYS))
        _audit(tx, username, "user.sign_in", username, now, reason=f"from {peer}")
        if _hasher.check_needs_rehash(user.password_hash):
            staff.update_user(tx, user.id, password_hash=_hasher.hash(password))
    return token, Session(user.id, user.username, user.role, csrf)


def session_for(db: Database, token: str, *, idle: timedelta, longest: timedelta) -> Session | None:
    """The session of a cookie's token, or None: unknown, ended, idle longer than `idle`,
    older than `longest`, or its person disabled. Its last use is written at most once a
    minute (not on every page)."""
    if not token or len(token) > 100:
        return None
    digest = _sha256(token)
    now = datetime.now(UTC)
    with db.reader() as conn:
        found = staff.find_session(conn, digest)
    if found is None:
        return None
    if (
        found.user.disabled_at is not None
        or now - found.last_seen_at > idle
        or now - found.created_at > longest
    ):
        with db.transaction() as tx:
            staff.delete_session(tx, digest)
        return None
    if now - found.last_seen_at > timedelta(minutes=1):
        with db.transaction() as tx:
            staff.touch_session(tx, digest, now)
    return Session(found.user.id, found.user.username, found.user.role, found.csrf_token)


def sign_out(db: Database, token: str, username: str) -> None:
    now = datetime.now(UTC)
    with db.transaction() as tx:
        staff.delete_session(tx, _sha256(token))
        _audit(tx, username, "user.sign_out", username, now)


def record_refusal(db: Database, principal: Principal, action: str, subject: str) -> None:
    """A person tried what their role may not: refused (403), and kept in the audit log."""
    with db.transaction() as tx:
        audit.record(
            tx,
            [
                audit.AuditEntry(
                    at=datetime.now(UTC),
                    actor=principal.client_name,
                    role=principal.role.value,
                    action="console.refused",
                    subject=subject,
                    reason=f"{action} is not allowed to role {principal.role.value}",
                )
            ],
        )


def _verify(hashed: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(hashed, password))
    except (VerificationError, InvalidHashError):
        return False


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _existing(tx: Connection, username: str) -> staff.StaffUser:
    user = staff.find_user(tx, username)
    if user is None:
        raise ServiceError(ErrorKind.NOT_FOUND, "USER_NOT_FOUND", f"No user {username!r}.")
    return user


def _check_username(username: str) -> None:
    if not USERNAME.fullmatch(username):
        raise _invalid(
            "username", "2 to 64 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
        )


def _check_password(password: str, username: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise _invalid("password", f"{MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if password.lower() == username.lower():
        raise _invalid("password", "not the username")


def _invalid(field_name: str, description: str) -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID_ARGUMENT,
        "USER_INVALID",
        f"{field_name}: {description}.",
        field_violations=[FieldViolation(field_name, description)],
    )


def _audit(
    tx: Connection,
    actor: str,
    action: str,
    username: str,
    now: datetime,
    *,
    reason: str = "",
    after: object = None,
) -> None:
    audit.record(
        tx,
        [audit.AuditEntry(now, actor, "staff", action, f"user/{username}", reason, None, after)],
    )
