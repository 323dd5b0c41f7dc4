"""Web security pieces: the signing key, API bearer tokens, CSRF tokens and the failed-login
limit. Passwords are checked with argon2 (``workflow.passwords``)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.models import Person, RuntimeState

SECRET_STATE = "web:secret_key"
API_TOKEN_SECONDS = 12 * 3600


def load_secret(session: Session, configured: str | None, now: datetime) -> str:
    """The configured key, or one generated once and kept in the database so every process of
    one installation signs alike."""
    if configured:
        return configured
    row = session.get(RuntimeState, SECRET_STATE)
    if row is None or not row.value:
        row = RuntimeState(name=SECRET_STATE, value=secrets.token_urlsafe(48), updated_at=now)
        session.add(row)
        session.flush()
    assert row.value is not None
    return row.value


def password_stamp(person: Person) -> str:
    """Changes when the password does: tokens and sessions made before a change stop working."""
    return hashlib.sha256((person.password_hash or "").encode()).hexdigest()[:16]


class ApiTokens:
    """Signed bearer tokens ``{person id, password stamp}`` that expire after ``max_age``."""

    def __init__(self, secret: str, max_age: int = API_TOKEN_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="rectiflow-api-token")
        self.max_age = max_age
        self._clock = clock

    def issue(self, person: Person) -> str:
        return self._serializer.dumps({"p": person.id, "s": password_stamp(person),
                                       "v": person.session_version})

    def person(self, session: Session, token: str) -> Person | None:
        """The active person a valid, unexpired token names, else None."""
        try:
            data = self._serializer.loads(token, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("p"), int):
            return None
        person = session.scalar(select(Person).where(Person.id == data["p"]))
        if (person is None or not person.active or password_stamp(person) != data.get("s")
                or person.session_version != data.get("v")):
            return None
        return person


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: object, given: object) -> bool:
    return (isinstance(expected, str) and isinstance(given, str) and bool(expected)
            and secrets.compare_digest(expected, given))


class LoginLimiter:
    """At most ``attempts`` failed logins per (email, address) within ``window`` seconds.

    Kept in the process's memory: with several web processes each counts its own, which still
    bounds guessing to a small multiple of the limit.
    """

    def __init__(self, attempts: int = 5, window: float = 15 * 60,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        now = self._clock()
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked_for(self, email: str, address: str) -> float:
        """Seconds until another try is allowed (0: allowed now)."""
        key = (email.strip().lower(), address)
        with self._lock:
            failures = self._recent(key)
            if len(failures) < self.attempts:
                return 0.0
            return max(1.0, failures[0] + self.window - self._clock())

    def failed(self, email: str, address: str) -> None:
        key = (email.strip().lower(), address)
        with self._lock:
            self._recent(key).append(self._clock())
            if len(self._failures) > 100_000:  # bound memory under a spray of addresses
                self._failures.clear()

    def succeeded(self, email: str, address: str) -> None:
        with self._lock:
            self._failures.pop((email.strip().lower(), address), None)
