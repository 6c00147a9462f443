"""Admin token check: disabled without a token, 401 without one, 403 for a wrong one."""

from __future__ import annotations

from artflow.serve.admin import check, presented_token


def test_admin_disabled_when_no_token_is_configured():
    status, message = check({"authorization": "Bearer anything"}, expected="")
    assert status == 403 and "disabled" in message


def test_missing_and_wrong_tokens():
    assert check({}, expected="s3cret")[0] == 401
    assert check({"authorization": "Bearer nope"}, expected="s3cret")[0] == 403
    assert check({"x-admin-token": "nope"}, expected="s3cret")[0] == 403


def test_right_token_in_either_header():
    assert check({"authorization": "Bearer s3cret"}, expected="s3cret") is None
    assert check({"x-admin-token": "s3cret"}, expected="s3cret") is None
    assert presented_token({"authorization": "Basic abc"}) == ""


def test_token_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("ARTFLOW_ADMIN_TOKEN", "from-env")
    assert check({"authorization": "Bearer from-env"}) is None
    monkeypatch.delenv("ARTFLOW_ADMIN_TOKEN")
    assert check({"authorization": "Bearer from-env"})[0] == 403


def test_the_caller_behind_a_trusted_proxy_is_the_address_it_forwards_for() -> None:
    """Failed admin tokens are counted per caller: behind the gateway, the client it names,
    not the gateway itself; a forwarded-for header from anyone else is ignored."""
    from artflow.serve.shared import caller_identity

    trusted = ["10.0.0.0/8"]
    xff = {"x-forwarded-for": "203.0.113.7, 10.1.2.3"}
    assert caller_identity("10.9.9.9", xff, trusted) == "203.0.113.7"
    assert caller_identity("198.51.100.2", xff, trusted) == "198.51.100.2"  # not a proxy
    assert caller_identity("10.9.9.9", {}, trusted) == "10.9.9.9"
    assert caller_identity("10.9.9.9", xff, []) == "10.9.9.9"  # no proxy trusted: the peer
    spoofed = {"x-forwarded-for": "1.2.3.4, 203.0.113.7"}  # the client prepended a lie
    assert caller_identity("10.9.9.9", spoofed, trusted) == "203.0.113.7"
