"""Sessions end on the server: after logout, a password change or a deactivation, the old
cookie (kept by an attacker, copied before) and the old API token open nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from web_support import PASSWORD


def stolen_copy(app: Any, browser_client: TestClient) -> TestClient:
    """A second client holding a copy of the session cookie, as a thief would."""
    thief = TestClient(app, base_url="http://testserver")
    thief.cookies.set("rectiflow_session", browser_client.cookies["rectiflow_session"])
    return thief


def opens_my_page(client: TestClient) -> bool:
    response = client.get("/my", follow_redirects=False)
    if response.status_code == 303:
        assert response.headers["location"].startswith("/login")
        return False
    assert response.status_code == 200
    return True


def test_logout_ends_the_session_for_every_copy_of_the_cookie(app, browser, with_passwords):
    owner = browser("owner")
    thief = stolen_copy(app, owner.client)
    assert opens_my_page(thief)
    # When the owner logs out
    assert owner.post("/logout").status_code == 303
    # Then the copied cookie no longer opens /my, nor does the owner's own client
    assert not opens_my_page(thief)
    assert not opens_my_page(owner.client)
    # And logging in again works, with a fresh session that the old cookie still cannot use
    assert owner.login(with_passwords.owner.email).status_code == 303
    assert opens_my_page(owner.client)
    assert not opens_my_page(thief)
    thief.close()


def test_logout_needs_the_csrf_token(app, browser):
    owner = browser("owner")
    assert owner.post("/logout", csrf=False).status_code in (400, 403)
    assert opens_my_page(owner.client)


def test_a_password_change_ends_sessions_and_tokens(app, browser, api, rectiflow, with_passwords):
    owner = browser("owner")
    client = api("owner")
    assert client.get("/api/measures").status_code == 200
    result = rectiflow("user", "set", with_passwords.owner.email, "--password-stdin",
                       stdin="a-brand-new-password\n")
    assert result.code == 0, result.err
    assert not opens_my_page(owner.client)
    assert client.get("/api/measures").status_code == 401
    assert owner.login(with_passwords.owner.email, "a-brand-new-password").status_code == 303
    assert opens_my_page(owner.client)


@pytest.mark.parametrize("reactivate", [False, True])
def test_deactivation_ends_sessions_even_after_reactivation(app, browser, api, rectiflow,
                                                            with_passwords, reactivate):
    owner = browser("owner")
    client = api("owner")
    email = with_passwords.owner.email
    assert rectiflow("user", "set", email, "--inactive").code == 0
    if reactivate:
        assert rectiflow("user", "set", email, "--active").code == 0
    assert not opens_my_page(owner.client)
    assert client.get("/api/measures").status_code == 401
    # Other people's sessions are untouched
    assert opens_my_page(browser("leader").client)
    if reactivate:
        assert owner.login(email, PASSWORD).status_code == 303
        assert opens_my_page(owner.client)
