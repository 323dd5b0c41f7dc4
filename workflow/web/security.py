"""Web security pieces: the signing key, API bearer tokens, CSRF tokens and the failed-login
limit. Passwords are checked with argon2 (``workflow.passwords``)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from ipaddress import IPv4Network, IPv6Network, ip_address

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow.models import Person, RuntimeState
from workflow.passwords import hash_password, verify_password

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
    """Failed logins counted twice: per account (whatever the address: a slow guess at one
    password from many machines) and per address (whatever the account: one password sprayed
    across many). Either reaching its limit within ``window`` seconds blocks the login.

    Kept in the process's memory: with several web processes each counts its own, which still
    bounds guessing to a small multiple of the limits.
    """

    def __init__(self, attempts: int = 10, window: float = 15 * 60,
                 clock: Callable[[], float] = time.monotonic, *,
                 address_attempts: int | None = None) -> None:
        self.attempts = attempts
        self.address_attempts = address_attempts or max(20, 2 * attempts)
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

    def _keys(self, email: str, address: str) -> list[tuple[tuple[str, str], int]]:
        return [(("account", email.strip().lower()), self.attempts),
                (("address", address), self.address_attempts)]

    def blocked_for(self, email: str, address: str) -> float:
        """Seconds until another try is allowed (0: allowed now)."""
        wait = 0.0
        with self._lock:
            for key, limit in self._keys(email, address):
                failures = self._recent(key)
                if len(failures) >= limit:
                    wait = max(wait, 1.0, failures[-limit] + self.window - self._clock())
        return wait

    def failed(self, email: str, address: str) -> None:
        with self._lock:
            if len(self._failures) > 100_000:  # bound memory under a spray of addresses
                self._failures.clear()
            for key, _limit in self._keys(email, address):
                self._recent(key).append(self._clock())

    def succeeded(self, email: str, address: str) -> None:
        """A right password clears the account's count; the address keeps its own, so a
        sprayer who owns one account cannot reset the count of the others."""
        with self._lock:
            self._failures.pop(("account", email.strip().lower()), None)


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted: Sequence[IPv4Network | IPv6Network]) -> str:
    """The address a login comes from. ``X-Forwarded-For`` is believed only when the peer is
    a configured proxy, and then read from the right: each trusted proxy appended the address
    it saw, so the first address from the right that is not a trusted proxy is the client
    (anything further left was written by the client itself and may be forged)."""
    if not peer:
        return "-"
    if not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop if _is_address(hop) else peer
    return hops[0] if hops else peer


def _is_address(value: str) -> bool:
    try:
        ip_address(value)
    except ValueError:
        return False
    return True


def _is_trusted(value: str, trusted: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        address = ip_address(value)
    except ValueError:
        return False
    return any(address in network for network in trusted)


@cache
def _unknown_account_hash() -> str:
    """A hash of a password nobody has, checked when the email is unknown, so that an unknown
    email takes as long to refuse as a wrong password for a known one."""
    return hash_password(secrets.token_urlsafe(24))


def password_matches(person: Person | None, password: str) -> bool:
    """Verify ``password`` for ``person``, spending the same argon2 work when there is no such
    person (or no password), so the answer's timing does not say which emails exist."""
    stored = person.password_hash if person is not None else None
    matched = verify_password(stored or _unknown_account_hash(), password)
    return matched and stored is not None
