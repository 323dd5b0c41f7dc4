"""Structured logs: JSON lines with message ids and request ids, the readable text format, and
no configured secret (nor WeCom's access token) anywhere in the output, at DEBUG."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fakes.wecom_server import FakeWeCom
from fastapi.testclient import TestClient
from sqlalchemy import select

from config.settings import Settings, load_settings
from workflow import db
from workflow.logs import Redactor, configure_logging, configured_secrets
from workflow.models import RuntimeState
from workflow.outbox import PlannedItem, write_notices
from workflow.runtime import Runtime
from workflow.services.group_summary import queue_group_summary
from workflow.web.app import create_app

SECRETS = {
    "RECTIFLOW_SMTP_PASSWORD": "smtp-Pa55-w0rd-secret",
    "RECTIFLOW_WECOM_WEBHOOK_KEY": "robot-key-9f8e7d6c5b4a",
    "RECTIFLOW_SECRET_KEY": "session-signing-key-0123456789",
    "RECTIFLOW_METRICS_TOKEN": "prometheus-scrape-token-42",
}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging changes the root logger: put it back for the tests that follow."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level
              for name in ("sqlalchemy", "apscheduler", "httpcore", "multipart")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


@pytest.fixture
def wecom() -> Iterator[FakeWeCom]:
    with FakeWeCom(users={"zhangsan"}, robot_keys={SECRETS["RECTIFLOW_WECOM_WEBHOOK_KEY"]}) as server:
        yield server


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` that is not the CLI's own output, each parsed as JSON."""
    records = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("注意："):  # the CLI's RECTIFLOW_NOW notice
            continue
        records.append(json.loads(line))  # fails the test on any line that is not JSON
    return records


# ------------------------------------------------------------------ a delivery, as JSON


def test_a_delivery_logs_json_lines_with_message_ids_and_no_secrets(rectiflow, cli_env, monkeypatch,
                                                                    sessions, ledger, now, wecom):
    # Given WeCom (app and robot), SMTP with a password, a session key and a metrics token,
    # JSON logs at DEBUG, and three due messages: one to a member, one to a departed member,
    # one to the group robot, which is rate-limited once
    env = {**SECRETS, "RECTIFLOW_LOG_FORMAT": "json", "RECTIFLOW_LOG_LEVEL": "DEBUG",
           "RECTIFLOW_SMTP_HOST": "127.0.0.1", "RECTIFLOW_SMTP_PORT": "1",
           "RECTIFLOW_SMTP_USER": "zgb@example.edu.cn", "RECTIFLOW_SMTP_SENDER": "zgb@example.edu.cn",
           "RECTIFLOW_WECOM_CORP_ID": wecom.corp_id, "RECTIFLOW_WECOM_SECRET": wecom.secret,
           "RECTIFLOW_WECOM_AGENT_ID": str(wecom.agent_id), "RECTIFLOW_WECOM_API_BASE": wecom.url,
           "RECTIFLOW_NOW": now.isoformat()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    zhangsan = ledger.person("Zhangsan", "owner", wecom_id="zhangsan")
    departed = ledger.person("Departed", "owner", wecom_id="nobody-knows")
    leader = ledger.person("Leader", "leader")
    first, second = ledger.measures(ledger.campaign(), [
        {"leader": leader, "owner": p, "title": f"整改措施{n}", "deadline": date(2026, 12, 4)}
        for n, p in enumerate((zhangsan, departed))])
    due = now - timedelta(minutes=1)
    with db.transaction(sessions) as session:
        written = write_notices(session, [
            PlannedItem(measure_id=m.id, rule="overdue:1", stage="overdue:1", deadline=m.deadline,
                        recipient_id=p.id, urgency=1, reason="已逾期 1 个工作日", colour="yellow")
            for m, p in ((first, zhangsan), (second, departed))],
            now=due, send_at=due, configured=frozenset({"wecom"}))
        robot = queue_group_summary(session, written, now=due)
        assert robot is not None
        ids = sorted([m.id for m in written] + [robot.id])
    wecom.fail_next("webhook/send", 45009)

    # When rectiflow deliver runs
    result = rectiflow("deliver", "--json")
    assert result.code == 0, result.err
    assert result.json()["sent"] >= 1

    # Then every line on stderr is one JSON object with ts, level, logger and message
    records = json_lines(result.err)
    assert records, "nothing was logged"
    for record in records:
        assert {"ts", "level", "logger", "message"} <= set(record)
        datetime.fromisoformat(record["ts"])
    # And each message's fate is logged with its id and channel as fields
    by_id = {r["message_id"]: r for r in records if r.get("logger") == "rectiflow.deliver"
             and "message_id" in r}
    assert set(by_id) >= set(ids), by_id
    assert by_id[written[0].id]["level"] == "INFO" and by_id[written[0].id]["channel"] == "wecom"
    assert by_id[written[1].id]["level"] == "ERROR"  # dead: not a WeCom member
    assert by_id[robot.id]["level"] == "WARNING" and by_id[robot.id]["error_code"] == 45009
    # And httpx's request lines were there (DEBUG and INFO are on), with their secrets masked
    requests = [r["message"] for r in records if r["logger"] == "httpx"]
    assert any("/cgi-bin/gettoken?corpid=" in m and "corpsecret=***" in m for m in requests)
    assert any("access_token=***" in m for m in requests)
    assert any("webhook/send?key=***" in m for m in requests)
    # And no secret appears anywhere: the configured ones, and the access token WeCom issued
    with db.transaction(sessions) as session:
        token = session.scalar(select(RuntimeState.value)
                              .where(RuntimeState.name.like("wecom_token:%")))
    assert token and token == wecom.current_token
    output = result.err + result.out
    for secret in [*SECRETS.values(), wecom.secret, token]:
        assert secret not in output, f"a secret leaked into the log: {secret[:4]}…"


def test_cli_commands_log_warnings_only_by_default(rectiflow, cli_env, sessions):
    # Given no RECTIFLOW_LOG_* setting, a one-shot command stays quiet: no INFO lines
    result = rectiflow("deliver", "--json")
    assert result.code == 0
    assert result.json() == {"sent": 0, "failed": 0, "dead": 0, "deferred": 0, "cancelled": 0}
    assert " INFO " not in result.err


# ------------------------------------------------------------------ web requests


def test_every_log_line_of_a_request_carries_its_request_id(database, sessions, tmp_path, now):
    # Given JSON logs, and a broker that is down (so /readyz logs a warning while serving)
    settings = Settings(database_url=database.url, evidence_dir=tmp_path / "evidence",
                        outbox_dir=tmp_path / "outbox", secret_key="session-signing-key-abcdef",
                        broker_url="redis://:Redis-Pa55-word@127.0.0.1:9/0", log_format="json",
                        log_level="INFO")
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    client = TestClient(create_app(Runtime(settings, engine=database.engine, clock=lambda: now)))
    # When a request comes with an id of its own, and another without
    client.get("/readyz", headers={"X-Request-ID": "lb-7f3a-0001"})
    answer = client.get("/approve/secret-approval-token-abc")
    generated = answer.headers["X-Request-ID"]
    # Then the warning and the access line of the first carry its id
    records = json_lines(stream.getvalue())
    first = [r for r in records if r.get("request_id") == "lb-7f3a-0001"]
    assert any(r["logger"] == "rectiflow.web.ops" and r["level"] == "WARNING"
               and "broker" in r["message"] for r in first)
    # And the second's access line carries the generated id, without the link's token
    [access] = [r for r in records if r.get("request_id") == generated
                and r["logger"] == "rectiflow.web.access"]
    assert access["path"] == "/approve/***" and access["status"] == answer.status_code
    output = stream.getvalue()
    for secret in ("secret-approval-token-abc", "Redis-Pa55-word", "session-signing-key-abcdef"):
        assert secret not in output


def test_the_text_format_is_one_readable_line_with_the_request_id(database, sessions, tmp_path,
                                                                   now):
    settings = Settings(database_url=database.url, evidence_dir=tmp_path / "evidence",
                        outbox_dir=tmp_path / "outbox", secret_key="k" * 32, log_level="INFO")
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    TestClient(create_app(Runtime(settings, engine=database.engine, clock=lambda: now))).get(
        "/login", headers={"X-Request-ID": "req-42"})
    [line] = [line for line in stream.getvalue().splitlines() if "rectiflow.web.access" in line]
    # e.g. 2026-12-07 09:30:00,123 INFO rectiflow.web.access [request_id=req-42]: GET /login 200 3.1ms
    assert " INFO rectiflow.web.access [request_id=req-42]: GET /login 200 " in line
    assert not line.startswith("{")


# ------------------------------------------------------------------ the redactor


def test_configured_secrets_include_url_passwords_plain_and_decoded():
    settings = load_settings({
        "RECTIFLOW_DATABASE_URL": "postgresql+psycopg://rectiflow:Db%40Pa55@db.example.edu.cn/rf",
        "RECTIFLOW_BROKER_URL": "redis://:Redis-Pa55@127.0.0.1:6379/0",
        "RECTIFLOW_WECOM_SECRET": "wecom-s3cr3t", "RECTIFLOW_SMTP_PASSWORD": "abc"})
    found = configured_secrets(settings)
    assert {"Db%40Pa55", "Db@Pa55", "Redis-Pa55", "wecom-s3cr3t"} <= set(found)
    assert "abc" not in found  # too short to mask without masking ordinary words


@pytest.mark.parametrize(("text", "expected"), [
    ("GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=S3CRET \"200\"",
     "GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=*** \"200\""),
    ("POST /cgi-bin/message/send?access_token=tok_ABC.123", "POST /cgi-bin/message/send?access_token=***"),
    ("POST /cgi-bin/webhook/send?key=abc-def", "POST /cgi-bin/webhook/send?key=***"),
    ("connecting to postgresql://rf:Db@Pa55@db/rf", "connecting to postgresql://rf:***@db/rf"),
    ("https://zg.example.edu.cn/approve/AbC-123_x.y", "https://zg.example.edu.cn/approve/***"),
    ("nothing secret here", "nothing secret here"),
])
def test_the_redactor_masks_values_and_query_secrets(text, expected):
    assert Redactor(["Db@Pa55"])(text) == expected


def test_secrets_in_tracebacks_and_extra_fields_are_masked():
    settings = Settings(wecom_secret="wecom-s3cr3t-value", log_format="json")
    stream = io.StringIO()
    configure_logging(settings, stream=stream)
    log = logging.getLogger("rectiflow.test")
    try:
        raise RuntimeError("gettoken failed for corpsecret=wecom-s3cr3t-value")
    except RuntimeError:
        log.exception("failed", extra={"url": "https://x/?corpsecret=wecom-s3cr3t-value"})
    [record] = json_lines(stream.getvalue())
    assert "wecom-s3cr3t-value" not in stream.getvalue()
    assert record["url"] == "https://x/?corpsecret=***"
    assert "RuntimeError" in record["exception"]

