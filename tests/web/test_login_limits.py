"""The login limit holds against a forged X-Forwarded-For, a password sprayed across accounts,
and one account guessed from many addresses; unknown and known emails take the same time."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from ipaddress import ip_network
from typing import Any

import pytest
from fastapi.testclient import TestClient
from web_support import PASSWORD

from workflow import db
from workflow.runtime import Runtime
from workflow.web.app import create_app
from workflow.web.auth import BadCredentials, authenticate
from workflow.web.security import LoginLimiter, client_address

PROXY = "10.0.0.2"


def token(client: TestClient, email: str, password: str,
          forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post("/api/token", json={"email": email, "password": password},
                       headers=headers).status_code


@pytest.fixture
def behind_proxy(database: Any, web_settings: Any, clock: Any, with_passwords: Any) -> Any:
    """The app configured to trust the reverse proxy at 10.0.0.2; clients as that proxy."""
    settings = replace(web_settings, trusted_proxies=(ip_network(PROXY),))
    app = create_app(Runtime(settings, engine=database.engine, clock=clock),
                     limiter=LoginLimiter(attempts=5, window=900, address_attempts=8))
    return app


def test_a_forged_forwarded_for_from_an_untrusted_client_changes_nothing(app, with_passwords):
    client = TestClient(app, client=("198.51.100.7", 40000))
    for n in range(5):
        assert token(client, "owner@example.edu.cn", "guess-guess",
                     forwarded=f"203.0.113.{n}") == 401
    # a fresh forged address does not reset the count: the peer's address is what counts
    assert token(client, "owner@example.edu.cn", PASSWORD, forwarded="203.0.113.99") == 429


def test_behind_a_trusted_proxy_the_real_client_counts_not_the_forged_hops(behind_proxy):
    client = TestClient(behind_proxy, client=(PROXY, 40000))
    # The sprayer forges a new leftmost hop every time; the proxy appends the real address
    for n in range(8):
        assert token(client, f"user{n}@example.edu.cn", "Spring2026!",
                     forwarded=f"1.2.3.{n}, 198.51.100.7") == 401
    assert token(client, "leader@example.edu.cn", "Spring2026!",
                 forwarded="1.2.3.200, 198.51.100.7") == 429
    # Another real client behind the same proxy is not blocked by the sprayer
    assert token(client, "leader@example.edu.cn", PASSWORD, forwarded="198.51.100.8") == 200


def test_one_password_sprayed_across_accounts_is_limited_per_address(app, with_passwords):
    client = TestClient(app)
    limiter_limit = 20  # LoginLimiter(attempts=5): per address max(20, 2 * 5)
    for n in range(limiter_limit):
        assert token(client, f"user{n}@example.edu.cn", "Spring2026!") == 401
    # even a real account with its right password waits now, from this address
    assert token(client, "owner@example.edu.cn", PASSWORD) == 429


def test_one_account_guessed_from_many_addresses_is_limited_per_account(behind_proxy):
    client = TestClient(behind_proxy, client=(PROXY, 40000))
    for n in range(5):
        assert token(client, "owner@example.edu.cn", "guess-guess",
                     forwarded=f"198.51.100.{n}") == 401
    assert token(client, "owner@example.edu.cn", PASSWORD, forwarded="198.51.100.77") == 429
    # other accounts from those addresses are fine
    assert token(client, "leader@example.edu.cn", PASSWORD, forwarded="198.51.100.1") == 200


@pytest.mark.parametrize("peer,header,expected", [
    ("198.51.100.7", "203.0.113.1", "198.51.100.7"),            # not a proxy: header ignored
    (PROXY, "203.0.113.1", "203.0.113.1"),                      # one proxy
    (PROXY, "6.6.6.6, 203.0.113.1", "203.0.113.1"),             # forged hop on the left
    (PROXY, "203.0.113.1, 10.0.0.3", "203.0.113.1"),            # two proxies in a row
    (PROXY, "not-an-ip", PROXY),                                # garbage: the proxy itself
    (PROXY, None, PROXY),
])
def test_client_address_reads_forwarded_for_from_the_right(peer, header, expected):
    trusted = (ip_network("10.0.0.0/29"),)
    assert client_address(peer, header, trusted) == expected


def test_unknown_and_known_emails_take_the_same_time(sessions, with_passwords, runtime):
    """Median time of refusing an unknown email vs a known email with a wrong password."""
    app = create_app(runtime, limiter=LoginLimiter(attempts=10_000, window=1))
    web = app.state.web

    def timed(email: str) -> float:
        started = time.perf_counter()
        with db.transaction(sessions) as session, pytest.raises(BadCredentials):
            authenticate(web, session, email, "wrong-password-here", "192.0.2.1")
        return time.perf_counter() - started

    timed("nobody@example.edu.cn")  # warm the stand-in hash
    unknown, known = [], []
    for _ in range(9):
        unknown.append(timed("nobody@example.edu.cn"))
        known.append(timed("owner@example.edu.cn"))
    unknown_median, known_median = statistics.median(unknown), statistics.median(known)
    # argon2 runs on both paths: within a factor that noise allows, never 10x apart
    assert 0.6 < unknown_median / known_median < 1.6, (unknown_median, known_median)
    assert unknown_median > 0.005  # the unknown path did hash work, not a dictionary miss
