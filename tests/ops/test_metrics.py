"""``/metrics``, ``/readyz`` and request ids on the web app, scraped after real deliveries (an
aiosmtpd server, the fake WeCom API, the file channel) and over a ledger with known counts.

The counters live in the process-wide default registry, so tests compare scrapes taken before
and after what they do.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from fakes.wecom_server import FakeWeCom
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from notifications.deliverer import Deliverer
from notifications.setup import build_channels
from workflow import db, metrics
from workflow.ledger import MeasureFilter, list_measures
from workflow.lifecycle import Kind, State
from workflow.models import Measure, OutboxMessage
from workflow.outbox import PlannedItem, write_notices
from workflow.policy import load_policy_file
from workflow.runtime import Runtime
from workflow.services.group_summary import queue_group_summary
from workflow.services.sweep import reminder_context, sweep
from workflow.timeutil import local_date
from workflow.web.app import create_app

ROBOT_KEY = "robot-key-0123456789"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def web_settings(database: Any, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(**{"database_url": database.url, "evidence_dir": tmp_path / "evidence",
                       "outbox_dir": tmp_path / "outbox", "base_url": "http://testserver",
                       "secret_key": "test-secret-key", **overrides})


def app_for(database: Any, tmp_path: Path, now: datetime, *, engine: Engine | None = None,
            **overrides: Any) -> Any:
    """The web app over this test's database (or ``engine``) at ``now``."""
    return create_app(Runtime(web_settings(database, tmp_path, **overrides),
                              engine=engine or database.engine, clock=lambda: now))


@pytest.fixture
def client(database: Any, sessions: sessionmaker[Session], tmp_path: Path,
           now: datetime) -> TestClient:
    return TestClient(app_for(database, tmp_path, now))


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


class _Accept:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return "250 OK"


@pytest.fixture
def smtp_port() -> Iterator[int]:
    port = free_port()
    controller = Controller(_Accept(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


@pytest.fixture
def wecom() -> Iterator[FakeWeCom]:
    with FakeWeCom(users={"zhangsan"}, robot_keys={ROBOT_KEY}) as server:
        yield server


# ------------------------------------------------------------------ a delivery run


def test_a_delivery_run_is_counted_by_channel(client, sessions, ledger, now, smtp_port, wecom,
                                              tmp_path):
    # Given Zhangsan (email and WeCom), a departed colleague WeCom does not know, the group
    # robot, and the file channel, each with a message due 90 seconds ago
    zhangsan = ledger.person("Zhangsan", "owner", wecom_id="zhangsan")
    departed = ledger.person("Departed", "owner", wecom_id="nobody-knows")
    leader = ledger.person("Leader", "leader")
    campaign = ledger.campaign()
    first, second = ledger.measures(campaign, [
        {"leader": leader, "owner": zhangsan, "title": "修订食堂采购办法",
         "deadline": date(2026, 12, 4)},
        {"leader": leader, "owner": departed, "title": "整改宿舍消防通道",
         "deadline": date(2026, 12, 4)}])
    with db.transaction(sessions) as session:  # the 新交办 notices of the set-up: not ours
        session.execute(update(OutboxMessage).values(status="sent"))
    due = now - timedelta(seconds=90)
    before = scrape(client)

    def item(measure: Measure, person_id: int, stage: str = "overdue:1") -> PlannedItem:
        return PlannedItem(measure_id=measure.id, rule="overdue:1", stage=stage,
                           deadline=measure.deadline, recipient_id=person_id, urgency=1,
                           reason="已逾期 1 个工作日", colour="yellow")

    with db.transaction(sessions) as session:
        both = write_notices(session, [item(first, zhangsan.id)], now=due, send_at=due,
                             configured=frozenset({"email", "wecom"}))
        write_notices(session, [item(second, departed.id)], now=due, send_at=due,
                      configured=frozenset({"wecom"}))
        write_notices(session, [item(first, zhangsan.id, "file")], now=due, send_at=due,
                      configured=frozenset())
        assert queue_group_summary(session, both, now=due) is not None
    created = scrape(client)
    assert [delta(before, created, "rectiflow_messages_created_total", channel=c,
                  kind="reminder") for c in ("email", "wecom", "file", "wecom_robot")] == [1, 2, 1, 1]

    # When the robot is rate-limited once and the deliverer runs now, then two minutes later
    wecom.fail_next("webhook/send", 45009)
    settings = Settings(smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_sender="zgb@example.edu.cn",
                        wecom_corp_id=wecom.corp_id, wecom_secret=wecom.secret,
                        wecom_agent_id=wecom.agent_id, wecom_api_base=wecom.url,
                        wecom_webhook_key=ROBOT_KEY, outbox_dir=tmp_path / "outbox")
    deliverer = Deliverer(sessions, build_channels(settings, sessions), base_url="http://testserver",
                          rng=random.Random(7))
    first_run = deliverer.run(lambda: now)
    second_run = deliverer.run(lambda: now + timedelta(minutes=2))
    # (the departed colleague's dead WeCom message falls back to email, sent in the same run)
    assert first_run.as_json() == {"sent": 4, "failed": 1, "dead": 1, "deferred": 0, "cancelled": 0}
    assert second_run.as_json() == {"sent": 1, "failed": 0, "dead": 0, "deferred": 0, "cancelled": 0}

    # Then the scrape counts exactly that, by channel
    after = scrape(client)

    def counted(name: str) -> dict[str, float]:
        return {c: delta(before, after, f"rectiflow_messages_{name}_total", channel=c)
                for c in ("email", "wecom", "wecom_robot", "file")}

    assert counted("sent") == {"email": 2, "wecom": 1, "wecom_robot": 1, "file": 1}
    assert counted("failed") == {"email": 0, "wecom": 0, "wecom_robot": 1, "file": 0}
    assert counted("dead") == {"email": 0, "wecom": 1, "wecom_robot": 0, "file": 0}
    assert delta(before, after, "rectiflow_messages_created_total", channel="email",
                 kind="reminder") == 2  # the fallback is written by the deliverer
    # And WeCom's refusals by errcode: all members unknown (81013), the robot's rate limit (45009)
    assert delta(before, after, "rectiflow_wecom_api_errors_total", channel="wecom",
                 errcode="81013") == 1
    assert delta(before, after, "rectiflow_wecom_api_errors_total", channel="wecom_robot",
                 errcode="45009") == 1
    # And the delay from due to sent: 90 s for the first three, none for the fallback (due
    # when written), 60 s for the robot's retry
    histogram = "rectiflow_message_delay_seconds"
    for channel in ("wecom", "file"):
        assert delta(before, after, f"{histogram}_count", channel=channel) == 1
        assert delta(before, after, f"{histogram}_sum", channel=channel) == pytest.approx(90)
        assert delta(before, after, f"{histogram}_bucket", channel=channel, le="60.0") == 0
        assert delta(before, after, f"{histogram}_bucket", channel=channel, le="120.0") == 1
    assert delta(before, after, f"{histogram}_count", channel="email") == 2
    assert delta(before, after, f"{histogram}_sum", channel="email") == pytest.approx(90)
    assert delta(before, after, f"{histogram}_bucket", channel="email", le="1.0") == 1
    assert delta(before, after, f"{histogram}_sum", channel="wecom_robot") == pytest.approx(60)


def test_a_sweep_is_counted_and_timed(client, sessions, ledger, now):
    # Given three measures past their deadline
    owner = ledger.person("Owner", "owner")
    leader = ledger.person("Leader", "leader")
    ledger.measures(ledger.campaign(), [
        {"leader": leader, "owner": owner, "title": f"整改措施{n}", "deadline": date(2026, 12, 1)}
        for n in range(3)])
    before = scrape(client)
    # When one sweep runs
    with db.transaction(sessions, write_lock=True) as session:
        ctx = reminder_context(session, load_policy_file(None), frozenset())
        result = sweep(session, ctx, now=now)
    after = scrape(client)
    # Then it is counted once, timed once, with the measures it planned and the messages it wrote
    assert delta(before, after, "rectiflow_sweeps_total", outcome="ok") == 1
    assert delta(before, after, "rectiflow_sweeps_total", outcome="error") == 0
    assert delta(before, after, "rectiflow_sweep_duration_seconds_count") == 1
    assert delta(before, after, "rectiflow_sweep_measures_total") == result.measures == 3
    assert delta(before, after, "rectiflow_messages_created_total", channel="file",
                 kind="reminder") == len(result.messages) > 0


# ------------------------------------------------------------------ series there from the start


CONFIGURED = [
    ({}, ["file"]),
    ({"smtp_host": "127.0.0.1", "wecom_corp_id": "ww01", "wecom_secret": "s", "wecom_agent_id": "1",
      "wecom_webhook_key": ROBOT_KEY}, ["email", "wecom", "wecom_robot", "file"]),
]


@pytest.mark.parametrize(("configured", "channels"), CONFIGURED, ids=["embedded", "every-channel"])
def test_counters_of_the_configured_channels_start_at_zero(database, sessions, tmp_path, now,
                                                            configured, channels):
    # Given a fresh process (no metric touched yet) with these channels configured
    metrics._build()
    # When the app starts and Prometheus scrapes it at once
    samples = scrape(TestClient(app_for(database, tmp_path, now, **configured)))
    # Then every channel's counters are there, at zero, so increase() sees the first one
    for channel in channels:
        for name in ("sent", "failed", "dead", "deferred"):
            assert samples[(f"rectiflow_messages_{name}_total", (("channel", channel),))] == 0
        for kind in ("reminder", "event", "digest"):
            assert samples[("rectiflow_messages_created_total",
                            (("channel", channel), ("kind", kind)))] == 0
    # And WeCom's alerted errcodes, for the WeCom channels configured
    wecom = [c for c in channels if c.startswith("wecom")]
    errors = {labels for name, labels in samples if name == "rectiflow_wecom_api_errors_total"}
    assert errors == {(("channel", c), ("errcode", e)) for c in wecom
                      for e in ("40001", "40013", "40056", "45009", "60020", "93000")}
    # And no series for a channel that is not configured
    shown = {dict(labels).get("channel") for name, labels in samples
             if name == "rectiflow_messages_dead_total"}
    assert shown == set(channels)


# ------------------------------------------------------------------ the ledger's gauges


def test_measure_gauges_by_campaign_agree_with_the_ledger(client, sessions, ledger, now):
    # Given two campaigns; today is 2026-12-07
    owner = ledger.person("Owner", "owner")
    leader = ledger.person("Leader", "leader")
    fifth = ledger.campaign("第五轮巡察反馈问题整改")
    audit = ledger.campaign("专项审计整改")
    past, future = date(2026, 12, 1), date(2026, 12, 31)
    rows = [  # (state, kind, deadline)
        (State.ASSIGNED, Kind.DEADLINE, past),          # open, overdue
        (State.IN_PROGRESS, Kind.DEADLINE, future),     # open
        (State.IN_PROGRESS, Kind.LONG_TERM, past),      # open, overdue (long-term too)
        (State.SUBMITTED, Kind.DEADLINE, past),         # waiting for the reviewer: not overdue
        (State.VERIFIED, Kind.DEADLINE, past),          # awaiting sign-off
        (State.VERIFIED, Kind.LONG_TERM, None),         # awaiting sign-off
        (State.CLOSED, Kind.DEADLINE, past),            # done
        (State.ASSIGNED, Kind.DEADLINE, None),          # open, no deadline
    ]
    measures = ledger.measures(fifth, [
        {"leader": leader, "owner": owner, "title": f"措施{n}", "deadline": deadline,
         "kind": kind.value} for n, (_, kind, deadline) in enumerate(rows)])
    ledger.measures(audit, [{"leader": leader, "owner": owner, "title": "审计措施",
                             "deadline": past}])
    with db.transaction(sessions) as session:
        for measure, (state, _, _) in zip(measures, rows, strict=True):
            session.execute(update(Measure).where(Measure.id == measure.id)
                            .values(state=state.value))
    # When Prometheus scrapes
    samples = scrape(client)
    # Then each campaign's open, overdue and awaiting sign-off counts are exact
    labels = {"campaign_id": str(fifth.id), "campaign": "第五轮巡察反馈问题整改"}
    other = {"campaign_id": str(audit.id), "campaign": "专项审计整改"}
    assert value(samples, "rectiflow_ledger_up") == 1
    assert value(samples, "rectiflow_measures_open", **labels) == 4
    assert value(samples, "rectiflow_measures_overdue", **labels) == 2
    assert value(samples, "rectiflow_measures_awaiting_signoff", **labels) == 2
    assert value(samples, "rectiflow_measures", state="closed", **labels) == 1
    assert value(samples, "rectiflow_measures", state="submitted", **labels) == 1
    assert (value(samples, "rectiflow_measures_open", **other),
            value(samples, "rectiflow_measures_overdue", **other)) == (1, 1)
    # And overdue is what `measure list --overdue` lists
    with db.transaction(sessions) as session:
        listed = list_measures(session, MeasureFilter(campaign_id=fifth.id, overdue=True),
                               local_date(now))
    assert len(listed) == value(samples, "rectiflow_measures_overdue", **labels)


def test_a_database_that_is_down_reads_as_ledger_down_not_an_error(database, tmp_path, now):
    broken = (db.make_engine(
        f"postgresql+psycopg://rectiflow:pw@127.0.0.1:{free_port()}/none?connect_timeout=2"))
    client = TestClient(app_for(database, tmp_path, now, engine=broken))
    samples = scrape(client)
    assert value(samples, "rectiflow_ledger_up") == 0
    assert not any(name.startswith("rectiflow_measures") for name, _ in samples)


def test_metrics_can_require_a_bearer_token(database, sessions, tmp_path, now):
    app = app_for(database, tmp_path, now, metrics_token="scrape-token-123")
    client = TestClient(app)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-123"})
    assert answer.status_code == 200 and "rectiflow_ledger_up" in answer.text


# ------------------------------------------------------------------ health and readiness


def test_healthz_and_readyz_answer_and_stay_out_of_the_api_schema(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"
    assert ready.json()["checks"]["database"]["status"] == "ok"
    assert "broker" not in ready.json()["checks"]  # the embedded default has none
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/healthz", "/readyz", "/metrics"} & set(paths)


def test_readyz_is_503_naming_a_database_that_is_down(database, tmp_path, now):
    broken = (db.make_engine(
        f"postgresql+psycopg://rectiflow:pw@127.0.0.1:{free_port()}/none?connect_timeout=2"))
    client = TestClient(app_for(database, tmp_path, now, engine=broken))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["status"] == "unavailable"
    assert answer.json()["checks"]["database"]["status"] == "down"
    assert "pw" not in answer.text  # no connection detail leaks to whoever asks
    assert client.get("/healthz").status_code == 200  # alive all the same


@pytest.mark.parametrize("scheme", ["redis://127.0.0.1:{port}/0",
                                    "amqp://guest:guest@127.0.0.1:{port}//"])
def test_readyz_is_503_naming_a_broker_that_is_down(database, sessions, tmp_path, now, scheme):
    url = scheme.format(port=free_port())
    client = TestClient(app_for(database, tmp_path, now, broker_url=url))
    answer = client.get("/readyz")
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["broker"]["status"] == "down"


def test_readyz_with_a_broker_that_answers(database, sessions, tmp_path, now):
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    client = TestClient(app_for(database, tmp_path, now, broker_url=url))
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json()["checks"]["broker"]["status"] == "ok"


# ------------------------------------------------------------------ request ids


@pytest.mark.parametrize(("sent", "kept"), [
    ("req-2026-12-07.abc:42", True),
    ("has spaces and\ttabs", False),
    ("x" * 300, False),
    (None, False),
])
def test_each_response_carries_a_request_id(client, sent, kept):
    headers = {"X-Request-ID": sent} if sent is not None else {}
    answer = client.get("/healthz", headers=headers)
    echoed = answer.headers["X-Request-ID"]
    if kept:
        assert echoed == sent
    else:
        assert echoed != sent and len(echoed) == 32 and int(echoed, 16) >= 0


def test_request_ids_are_new_for_each_request(client):
    ids = {client.get("/healthz").headers["X-Request-ID"] for _ in range(5)}
    assert len(ids) == 5

