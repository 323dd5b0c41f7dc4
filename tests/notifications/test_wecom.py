"""WeCom application messages and group robots, through the real deliverer and a real database,
against a local server speaking the WeCom API (tests/fakes/wecom_server.py)."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fakes.clock import Clock
from fakes.wecom_server import FakeWeCom
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from notifications.channels.base import Channel, ChannelConfigError, MemoryChannel
from notifications.channels.wecom.api import TokenStore, fit_utf8
from notifications.channels.wecom.app import WeComAppChannel, card_description
from notifications.channels.wecom.robot import WeComRobotChannel
from notifications.deliverer import Deliverer
from notifications.setup import build_channels
from tasks.clock import embedded_jobs
from workflow import db
from workflow.models import Measure, OutboxMessage, Person, RuntimeState
from workflow.runtime import Runtime
from workflow.services.group_summary import ROBOT_NAME, queue_group_summary

BASE_URL = "https://rectiflow.example.edu.cn"
ROBOT_KEY = "robot-key-SECRET"


@pytest.fixture
def clock(now: datetime) -> Clock:
    """One movable clock for the deliverer, the channels and the fake server."""
    return Clock(now)


@pytest.fixture
def wecom_server(clock: Clock) -> Iterator[FakeWeCom]:
    """The fake WeCom API, knowing members zhangsan, lisi, wangwu and one group robot."""
    with FakeWeCom(users={"zhangsan", "lisi", "wangwu"}, robot_keys={ROBOT_KEY},
                   clock=clock) as server:
        yield server


@dataclass
class Team:
    owner: Person      # WeCom id zhangsan
    leader: Person     # WeCom id lisi
    departed: Person   # WeCom id nobody-knows (left the organisation)
    measures: list[Measure]


@pytest.fixture
def team(ledger: Any) -> Team:
    owner = ledger.person("Zhangsan", "owner", unit="饮食服务中心", wecom_id="zhangsan")
    leader = ledger.person("Lisi", "leader", unit="后勤处", wecom_id="lisi")
    departed = ledger.person("Departed", "owner", unit="后勤处", wecom_id="nobody-knows")
    campaign = ledger.campaign()
    measures = ledger.measures(campaign, [
        {"leader": leader, "owner": owner, "title": f"修订食堂原材料采购管理办法（第{n}条）"}
        for n in range(1, 4)])
    return Team(owner, leader, departed, measures)


def queue(sessions: sessionmaker[Session], now: datetime, person: Person | None,
          measures: list[Measure], *, channel: str = "wecom", count: int = 1,
          label: str = "提醒", colour: str = "yellow") -> list[int]:
    """``count`` outbox rows to ``person`` (or the group robot), each listing ``measures``."""
    items = [{"measure_id": m.id, "rule": "overdue:1", "urgency": 0 if colour == "red" else 1,
              "reason": "已逾期 1 个工作日（黄牌督办），完成时限 2026-12-04", "colour": colour,
              "deadline": "2026-12-04", "on_behalf_of": None} for m in measures]
    ids = []
    with db.transaction(sessions) as session:
        for n in range(count):
            message = OutboxMessage(
                channel=channel, kind="reminder", recipient_id=person.id if person else None,
                recipient=person.email if person else ROBOT_NAME,
                subject=f"【整改督办】{label}{n + 1}：您有{len(items)}项整改措施已逾期",
                payload={"items": items, "name": person.name if person else ROBOT_NAME},
                key=f"test|{channel}|{label}|{n}|{person.id if person else 0}", status="pending",
                attempts=0, not_before=now, created_at=now, info={})
            session.add(message)
            session.flush()
            ids.append(message.id)
    return ids


def rows(sessions: sessionmaker[Session], ids: list[int] | None = None) -> list[OutboxMessage]:
    with db.transaction(sessions) as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if ids is not None:
            query = query.where(OutboxMessage.id.in_(ids))
        return list(session.scalars(query))


def app_channel(server: FakeWeCom, sessions: sessionmaker[Session], clock: Clock,
                **overrides: Any) -> WeComAppChannel:
    kwargs: dict[str, Any] = {"corp_id": server.corp_id, "secret": server.secret,
                              "agent_id": server.agent_id, "api_base": server.url,
                              "tokens": TokenStore(sessions), "clock": clock}
    kwargs.update(overrides)
    return WeComAppChannel(**kwargs)


def deliverer(sessions: sessionmaker[Session], **channels: Channel) -> Deliverer:
    return Deliverer(sessions, channels, base_url=BASE_URL, rng=random.Random(7))


# ------------------------------------------------------------------ the access token


def test_one_token_is_fetched_and_shared_by_two_workers(sessions, clock, team, wecom_server):
    # Given two workers, each with its own WeCom channel over the same database
    first = app_channel(wecom_server, sessions, clock)
    second = app_channel(wecom_server, sessions, clock)
    one = queue(sessions, clock(), team.owner, team.measures[:1], label="甲")
    # When the first delivers a message, and later the second delivers another
    assert deliverer(sessions, wecom=first).run(clock).sent == 1
    clock.advance(600)
    two = queue(sessions, clock(), team.owner, team.measures[1:2], label="乙")
    assert deliverer(sessions, wecom=second).run(clock).sent == 1
    # Then gettoken was called once, and the token sits in runtime_state for everyone
    assert wecom_server.gettoken_calls == 1
    assert (first.token_fetches, second.token_fetches) == (1, 0)
    with db.transaction(sessions) as session:
        state = session.get(RuntimeState, f"wecom_token:{wecom_server.corp_id}:{wecom_server.agent_id}")
        assert state is not None and state.value == wecom_server.current_token
        assert state.expires_at == clock.now - timedelta(seconds=600) + timedelta(seconds=7200 - 300)
    assert [r.status for r in rows(sessions, one + two)] == ["sent", "sent"]
    assert len(wecom_server.delivered_to("zhangsan")) == 2


def test_a_token_near_its_end_is_replaced_before_wecom_refuses_it(sessions, clock, team,
                                                                  wecom_server):
    # Given a token fetched two hours minus four minutes ago (inside the five-minute margin)
    channel = app_channel(wecom_server, sessions, clock)
    queue(sessions, clock(), team.owner, team.measures[:1], label="甲")
    deliverer(sessions, wecom=channel).run(clock)
    clock.advance(7200 - 240)
    queue(sessions, clock(), team.owner, team.measures[1:2], label="乙")
    # When the next message goes out
    deliverer(sessions, wecom=app_channel(wecom_server, sessions, clock)).run(clock)
    # Then a new token was fetched up front and WeCom never answered 42001
    assert wecom_server.gettoken_calls == 2
    assert ("message/send", 42001) not in wecom_server.errors
    assert all(r.status == "sent" for r in rows(sessions))


@pytest.mark.parametrize(("spoil", "errcode"), [("expire_tokens", 42001), ("revoke_tokens", 40014)])
def test_a_token_refused_mid_batch_is_fetched_again_and_nothing_is_lost(
        sessions, clock, team, wecom_server, spoil, errcode):
    # Given three messages queued and a token that will stop working after the first send
    ids = [queue(sessions, clock(), team.owner, [m], label=f"批{n}")[0]
           for n, m in enumerate(team.measures)]
    channel = app_channel(wecom_server, sessions, clock)
    if spoil == "expire_tokens":
        wecom_server.expire_tokens_after(1)
    else:
        original = wecom_server.handle

        def revoke_after_first(method: str, path: str, query: dict[str, str], raw: bytes):
            answer = original(method, path, query, raw)
            if path.endswith("message/send") and wecom_server.send_calls == 1:
                wecom_server.revoke_tokens()
            return answer

        wecom_server.handle = revoke_after_first  # type: ignore[method-assign]
    # When the deliverer sends the batch
    report = deliverer(sessions, wecom=channel).run(clock)
    # Then WeCom refused the old token once, a new one was fetched, and all three arrived once
    assert wecom_server.errors == [("message/send", errcode)]
    assert wecom_server.gettoken_calls == 2
    assert report.sent == 3 and report.failed == report.dead == 0
    assert [(r.status, r.attempts) for r in rows(sessions, ids)] == [("sent", 1)] * 3
    assert len(wecom_server.delivered_to("zhangsan")) == 3


def test_a_token_another_worker_already_refreshed_is_used_without_a_new_fetch(
        sessions, clock, team, wecom_server):
    # Given worker A holds a token in memory, and worker B refreshed the shared one since
    worker_a = app_channel(wecom_server, sessions, clock)
    queue(sessions, clock(), team.owner, team.measures[:1], label="甲")
    deliverer(sessions, wecom=worker_a).run(clock)
    wecom_server.revoke_tokens()
    worker_b = app_channel(wecom_server, sessions, clock)
    queue(sessions, clock(), team.owner, team.measures[1:2], label="乙")
    deliverer(sessions, wecom=worker_b).run(clock)  # refused (40014), so B fetched a new one
    # When A sends with its stale copy
    queue(sessions, clock(), team.owner, team.measures[2:3], label="丙")
    deliverer(sessions, wecom=worker_a).run(clock)
    # Then A, refused too, took B's token from the database instead of calling gettoken
    assert wecom_server.errors == [("message/send", 40014)] * 2
    assert (worker_a.token_fetches, worker_b.token_fetches) == (1, 1)
    assert wecom_server.gettoken_calls == 2
    assert len(wecom_server.delivered_to("zhangsan")) == 3
    assert all(r.status == "sent" for r in rows(sessions))


# ------------------------------------------------------------------ what is sent


def test_a_short_reminder_is_a_textcard_with_the_link_and_duplicate_check(sessions, clock, team,
                                                                           wecom_server):
    # Given one overdue measure for the owner
    [message_id] = queue(sessions, clock(), team.owner, team.measures[:1])
    # When it is delivered
    deliverer(sessions, wecom=app_channel(wecom_server, sessions, clock)).run(clock)
    # Then the owner got a card: subject as title, the measure in the text, a link and a button
    [got] = wecom_server.delivered_to("zhangsan")
    assert got.msgtype == "textcard"
    card = got.body["textcard"]
    assert card["title"].startswith("【整改督办】提醒1")
    assert "修订食堂原材料采购管理办法（第1条）" in card["description"]
    assert "http" not in card["description"] and len(card["description"].encode()) <= 512
    assert card["url"] == f"{BASE_URL}/measures/{team.measures[0].id}"
    assert card["btntxt"] == "详情"
    assert got.body["enable_duplicate_check"] == 1 and got.body["duplicate_check_interval"] > 0
    [row] = rows(sessions, [message_id])
    assert row.info["wecom_msgtype"] == "textcard" and row.info["wecom_msgid"]


def test_a_reminder_with_many_items_is_markdown_cut_to_2048_bytes(sessions, clock, ledger, team,
                                                                  wecom_server):
    # Given forty overdue measures for one person: far more than a card holds
    campaign = ledger.campaign("第六轮巡察反馈问题整改")
    many = ledger.measures(campaign, [
        {"leader": team.leader, "owner": team.owner, "title": f"建立健全食堂安全管理长效机制第{n}项"}
        for n in range(1, 41)])
    [message_id] = queue(sessions, clock(), team.owner, many)
    # When it is delivered
    deliverer(sessions, wecom=app_channel(wecom_server, sessions, clock)).run(clock)
    # Then it went as markdown within WeCom's 2,048 bytes, ending with how many there are
    [got] = wecom_server.delivered_to("zhangsan")
    content = got.body["markdown"]["content"]
    assert got.msgtype == "markdown"
    assert len(content.encode()) <= 2048
    assert content.endswith(f"……（共40项，[点此查看全部]({BASE_URL}/my)）")
    assert "建立健全食堂安全管理长效机制第1项" in content
    assert rows(sessions, [message_id])[0].status == "sent"


def test_partly_invalid_users_are_recorded_in_the_rows_info(sessions, clock, ledger, team,
                                                            wecom_server):
    # Given a person whose WeCom id field names a valid and a stale account
    both = ledger.person("Wangwu", "owner", wecom_id="wangwu|wangwu_old")
    [message_id] = queue(sessions, clock(), both, team.measures[:1])
    # When it is delivered
    deliverer(sessions, wecom=app_channel(wecom_server, sessions, clock)).run(clock)
    # Then it counts as sent, and the invalid account is kept on the row for the admins
    [row] = rows(sessions, [message_id])
    assert row.status == "sent"
    assert row.info["invaliduser"] == "wangwu_old"
    assert len(wecom_server.delivered_to("wangwu")) == 1


def test_a_person_without_a_wecom_id_is_a_permanent_failure_naming_them(sessions, clock, ledger,
                                                                         team, wecom_server):
    # Given a WeCom row for someone whose WeCom id was removed since
    nobody = ledger.person("Zhaoliu", "owner")
    [message_id] = queue(sessions, clock(), nobody, team.measures[:1])
    # When the deliverer tries it
    report = deliverer(sessions, wecom=app_channel(wecom_server, sessions, clock)).run(clock)
    # Then it is dead at once and the error names the person
    [row] = rows(sessions, [message_id])
    assert report.dead == 1 and row.status == "dead" and row.attempts == 1
    assert "Zhaoliu" in row.last_error and "没有登记企业微信账号" in row.last_error


# ------------------------------------------------------------------ failures


def test_rate_limited_45009_is_retried_a_minute_later_and_then_delivered(sessions, clock, team,
                                                                         wecom_server):
    # Given WeCom will answer 45009 (too many calls) once
    [message_id] = queue(sessions, clock(), team.owner, team.measures[:1])
    wecom_server.fail_next("message/send", 45009)
    channel = app_channel(wecom_server, sessions, clock)
    # When the deliverer runs now
    first = deliverer(sessions, wecom=channel).run(clock)
    # Then the message waits about a minute, not dead, with the Chinese reason kept
    [row] = rows(sessions, [message_id])
    assert first.failed == 1 and first.dead == 0
    assert row.status == "pending" and row.attempts == 1
    assert row.not_before == clock.now + timedelta(seconds=60)
    assert "45009" in row.last_error and "频繁" in row.last_error
    # When it runs again after that minute
    clock.advance(61)
    second = deliverer(sessions, wecom=channel).run(clock)
    # Then it is delivered, once
    assert second.sent == 1
    assert rows(sessions, [message_id])[0].status == "sent"
    assert len(wecom_server.delivered_to("zhangsan")) == 1


def test_transport_errors_are_retryable(sessions, clock, team):
    # Given a WeCom base address where nothing listens
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = WeComAppChannel(corp_id="ww1", secret="x", agent_id=1, api_base=f"http://127.0.0.1:{port}",
                              tokens=TokenStore(sessions), clock=clock, timeout=2)
    [message_id] = queue(sessions, clock(), team.owner, team.measures[:1])
    # When the deliverer tries
    report = deliverer(sessions, wecom=channel).run(clock)
    # Then the message is pending for a later try
    [row] = rows(sessions, [message_id])
    assert report.failed == 1 and row.status == "pending" and "无法连接企业微信接口" in row.last_error


@dataclass(frozen=True)
class PermanentCase:
    name: str
    errcode: int
    words: str


PERMANENT_CASES = [
    PermanentCase("departed member", 81013, "nobody-knows"),
    PermanentCase("bad secret", 40001, "RECTIFLOW_WECOM_SECRET"),
    PermanentCase("untrusted IP", 60020, "可信IP"),
]


@pytest.mark.parametrize("case", PERMANENT_CASES, ids=lambda c: c.name)
def test_permanent_wecom_errors_are_dead_at_once_and_fall_back_to_email(
        sessions, clock, team, wecom_server, case):
    # Given one message that WeCom will refuse for good, and an email channel configured
    person = team.departed if case.errcode == 81013 else team.owner
    [message_id] = queue(sessions, clock(), person, team.measures[:1])
    overrides: dict[str, Any] = {"secret": "wrong-secret"} if case.errcode == 40001 else {}
    if case.errcode == 60020:
        wecom_server.fail_next("message/send", 60020)
    email = MemoryChannel("email")
    worker = deliverer(sessions, wecom=app_channel(wecom_server, sessions, clock, **overrides),
                       email=email)
    # When the deliverer runs
    report = worker.run(clock)
    # Then the WeCom row is dead after one try, the Chinese reason kept for the admins
    [row] = rows(sessions, [message_id])
    assert row.status == "dead" and row.attempts == 1
    assert f"错误码 {case.errcode}" in row.last_error and "永久性错误" in row.last_error
    assert case.words in row.last_error
    # And the same message went to the person by email instead
    [fallback] = [r for r in rows(sessions) if r.channel == "email"]
    assert fallback.info == {"fallback_for": message_id}
    assert fallback.status == "sent" and report.sent == 1
    assert [m.recipient for m in email.sent] == [person.email]
    assert wecom_server.delivered == []


def test_the_untrusted_ip_message_tells_the_admin_where_to_fix_it(sessions, clock, team,
                                                                  wecom_server):
    # Given the app's trusted-IP list does not include this server
    wecom_server.fail_next("message/send", 60020)
    [message_id] = queue(sessions, clock(), team.owner, team.measures[:1])
    # When the deliverer runs without an email channel
    deliverer(sessions, wecom=app_channel(wecom_server, sessions, clock)).run(clock)
    # Then the dead row says, in Chinese, that the IP is not trusted and where to add it
    [row] = rows(sessions, [message_id])
    assert row.status == "dead"
    assert "出口 IP 不在企业微信应用的可信 IP 列表中" in row.last_error
    assert "企业可信IP" in row.last_error
    assert [r.channel for r in rows(sessions)] == ["wecom"]  # no email channel: no fallback


# ------------------------------------------------------------------ pacing under WeCom's limits


class UnpacedApp(WeComAppChannel):
    """The same channel without limits: what happens if the deliverer did not pace."""

    limits = ()


@pytest.mark.parametrize("paced", [True, False], ids=["paced", "unpaced control"])
def test_45_messages_to_one_member_are_paced_under_30_a_minute(sessions, clock, team,
                                                               wecom_server, paced):
    # Given 45 different messages queued for one member
    ids = queue(sessions, clock(), team.owner, team.measures[:1], count=45)
    kind = WeComAppChannel if paced else UnpacedApp
    channel = kind(corp_id=wecom_server.corp_id, secret=wecom_server.secret,
                   agent_id=wecom_server.agent_id, api_base=wecom_server.url,
                   tokens=TokenStore(sessions), clock=clock)
    worker = deliverer(sessions, wecom=channel)
    # When the deliverer runs now, and again once the minute has passed
    first = worker.run(clock)
    clock.advance(61)
    second = worker.run(clock)
    if not paced:
        # Then (control) WeCom silently dropped 15 that the outbox believes were sent
        assert first.sent == 45 and len(wecom_server.dropped) == 15
        return
    # Then 30 went now and 15 waited for the next minute; WeCom dropped none
    assert (first.sent, first.deferred) == (30, 15)
    assert second.sent == 15
    assert wecom_server.dropped == []
    assert len(wecom_server.delivered_to("zhangsan")) == 45
    sent = rows(sessions, ids)
    assert all(r.status == "sent" for r in sent)
    assert sorted({r.sent_at for r in sent}) == [clock.now - timedelta(seconds=61), clock.now]


# ------------------------------------------------------------------ secrets and configuration


def test_secrets_never_appear_in_repr_logs_or_errors(sessions, clock, team, wecom_server, caplog):
    # Given full logging, a working channel and a robot
    caplog.set_level(logging.DEBUG)
    channel = app_channel(wecom_server, sessions, clock)
    robot = WeComRobotChannel(key=ROBOT_KEY, api_base=wecom_server.url)
    queue(sessions, clock(), team.owner, team.measures[:1], label="甲")
    queue(sessions, clock(), None, team.measures[:1], channel="wecom_robot", label="群")
    wecom_server.fail_next("webhook/send", 45009)
    # When messages are sent, one robot call fails, and a token is refused and refetched
    deliverer(sessions, wecom=channel, wecom_robot=robot).run(clock)
    first_token = wecom_server.current_token
    wecom_server.revoke_tokens()
    queue(sessions, clock(), team.owner, team.measures[1:2], label="乙")
    deliverer(sessions, wecom=channel, wecom_robot=robot).run(clock)
    # Then neither secret nor any token shows in reprs, logs or stored errors
    secrets = [wecom_server.secret, ROBOT_KEY, first_token, wecom_server.current_token]
    assert all(secrets)
    assert "corpsecret=***" in caplog.text  # httpx did log the request, redacted
    stored = " ".join(f"{r.last_error} {r.info}" for r in rows(sessions))
    for text in (repr(channel), repr(robot), caplog.text, stored):
        for secret in secrets:
            assert secret not in text
    assert "secret='***'" in repr(channel) and "key='***'" in repr(robot)


@pytest.mark.parametrize(("settings", "variable"), [
    ({"wecom_secret": "s", "wecom_agent_id": 1000002}, "RECTIFLOW_WECOM_CORP_ID"),
    ({"wecom_corp_id": "ww1", "wecom_agent_id": 1000002}, "RECTIFLOW_WECOM_SECRET"),
    ({"wecom_corp_id": "ww1", "wecom_secret": "s"}, "RECTIFLOW_WECOM_AGENT_ID"),
    ({"wecom_corp_id": "ww1", "wecom_secret": "s", "wecom_agent_id": 1000002,
      "wecom_api_base": "http://qyapi.weixin.qq.com"}, "RECTIFLOW_WECOM_API_BASE"),
    ({"wecom_webhook_key": "a&b"}, "RECTIFLOW_WECOM_WEBHOOK_KEY"),
    ({"wecom_webhook_key": "k", "wecom_api_base": "ftp://example.com"}, "RECTIFLOW_WECOM_API_BASE"),
], ids=["no corp id", "no secret", "no agent id", "plain http", "bad robot key", "bad scheme"])
def test_bad_configuration_is_refused_at_start_naming_the_variable(sessions, settings, variable):
    # Given settings with half a WeCom configuration or a bad address
    # When the channels are built
    with pytest.raises(ChannelConfigError, match=variable) as refused:
        build_channels(Settings(**settings), sessions)
    # Then the refusal names the variable and shows no secret
    assert "s3cr3t" not in str(refused.value)


def test_good_configuration_builds_both_channels(sessions):
    # Given complete WeCom settings and a robot key
    settings = Settings(wecom_corp_id="ww1", wecom_secret="s3cr3t", wecom_agent_id=1000002,
                        wecom_webhook_key="k3y")
    # When channels are built
    channels = build_channels(settings, sessions)
    # Then both WeCom channels are there, next to the file channel
    assert isinstance(channels["wecom"], WeComAppChannel)
    assert isinstance(channels["wecom_robot"], WeComRobotChannel)
    assert "s3cr3t" not in repr(channels) and "k3y" not in repr(channels)


# ------------------------------------------------------------------ the group robot


def robot(server: FakeWeCom, key: str = ROBOT_KEY) -> WeComRobotChannel:
    return WeComRobotChannel(key=key, api_base=server.url)


def test_a_robot_summary_arrives_as_markdown_unchanged(sessions, clock, team, wecom_server):
    # Given a short group message
    [message_id] = queue(sessions, clock(), None, team.measures, channel="wecom_robot")
    # When it is delivered
    deliverer(sessions, wecom_robot=robot(wecom_server)).run(clock)
    # Then the group got the rendered markdown whole, with a link per measure
    [got] = wecom_server.robot_messages
    content = got.body["markdown"]["content"]
    assert got.msgtype == "markdown" and "……" not in content
    for measure in team.measures:
        assert f"{BASE_URL}/measures/{measure.id}" in content
    assert rows(sessions, [message_id])[0].status == "sent"


def test_a_long_robot_message_is_cut_to_4096_bytes_on_a_line_boundary(sessions, clock, ledger,
                                                                      team, wecom_server):
    # Given sixty overdue measures in one group message: far beyond 4,096 bytes
    campaign = ledger.campaign("第六轮巡察反馈问题整改")
    many = ledger.measures(campaign, [
        {"leader": team.leader, "owner": team.owner, "title": f"规范公务接待审批流程第{n}项"}
        for n in range(1, 61)])
    [message_id] = queue(sessions, clock(), None, many, channel="wecom_robot")
    # When it is delivered
    deliverer(sessions, wecom_robot=robot(wecom_server)).run(clock)
    # Then the server accepted it: within the limit, ending with the count, no link cut in half
    assert wecom_server.robot_refused == []
    [got] = wecom_server.robot_messages
    content = got.body["markdown"]["content"]
    assert len(content.encode()) <= 4096
    assert content.endswith(f"……（共60项，[点此查看全部]({BASE_URL}/my)）")
    assert all(line.count("(") == line.count(")") for line in content.splitlines())
    assert rows(sessions, [message_id])[0].info["bytes"] == len(content.encode())


def test_an_invalid_robot_webhook_93000_is_dead_with_the_reason(sessions, clock, team,
                                                                wecom_server):
    # Given a robot that was removed from the group (its key no longer works)
    [message_id] = queue(sessions, clock(), None, team.measures[:1], channel="wecom_robot")
    # When the deliverer runs
    report = deliverer(sessions, wecom_robot=robot(wecom_server, key="removed-robot"),
                       email=MemoryChannel("email")).run(clock)
    # Then the row is dead at once, the Chinese reason names the setting; no email fallback
    [row] = rows(sessions, [message_id])
    assert report.dead == 1 and row.status == "dead" and row.attempts == 1
    assert "错误码 93000" in row.last_error and "RECTIFLOW_WECOM_WEBHOOK_KEY" in row.last_error
    assert [r.channel for r in rows(sessions)] == ["wecom_robot"]


def test_robot_rate_limit_45009_is_retried_after_a_minute(sessions, clock, team, wecom_server):
    # Given the robot is being throttled once
    [message_id] = queue(sessions, clock(), None, team.measures[:1], channel="wecom_robot")
    wecom_server.fail_next("webhook/send", 45009)
    channel = robot(wecom_server)
    # When the deliverer runs, and again a minute later
    assert deliverer(sessions, wecom_robot=channel).run(clock).failed == 1
    [row] = rows(sessions, [message_id])
    assert row.status == "pending" and row.not_before == clock.now + timedelta(seconds=60)
    clock.advance(61)
    # Then it goes through the second time
    assert deliverer(sessions, wecom_robot=channel).run(clock).sent == 1


def test_25_robot_messages_are_paced_under_20_a_minute(sessions, clock, team, wecom_server):
    # Given 25 group messages queued at once
    ids = queue(sessions, clock(), None, team.measures[:1], channel="wecom_robot", count=25)
    worker = deliverer(sessions, wecom_robot=robot(wecom_server))
    # When the deliverer runs now and after the minute
    first = worker.run(clock)
    clock.advance(61)
    second = worker.run(clock)
    # Then 20 went at once, 5 a minute later, and the robot never answered 45009
    assert (first.sent, first.deferred, second.sent) == (20, 5, 5)
    assert wecom_server.robot_refused == []
    assert len(wecom_server.robot_messages) == 25
    assert all(r.status == "sent" for r in rows(sessions, ids))


def test_a_sweeps_escalations_become_one_group_summary_once(sessions, clock, team):
    # Given what a sweep wrote: the owner and the leader told about the same overdue measures
    owner_rows = queue(sessions, clock(), team.owner, team.measures[:2], colour="red", label="甲")
    leader_rows = queue(sessions, clock(), team.leader, team.measures[:2], colour="red", label="乙")
    with db.transaction(sessions) as session:
        written = list(session.scalars(select(OutboxMessage)
                                       .where(OutboxMessage.id.in_(owner_rows + leader_rows))))
        # When the group summary is queued, twice (the sweep's entry point ran twice)
        summary = queue_group_summary(session, written, now=clock())
        again = queue_group_summary(session, written, now=clock())
    # Then there is one robot row listing each measure once
    assert summary is not None and again is None
    assert summary.channel == "wecom_robot" and summary.recipient == ROBOT_NAME
    assert summary.recipient_id is None
    assert [i["measure_id"] for i in summary.payload["items"]] == [m.id for m in team.measures[:2]]
    assert summary.subject == "【整改督办·群通报】逾期督办2项：红牌2项"


def test_the_sweep_command_queues_one_group_summary_when_a_robot_is_configured(
        rectiflow, ledger, monkeypatch):
    # Given three measures due Friday 2026-10-09 and a group robot configured
    monkeypatch.setenv("RECTIFLOW_WECOM_WEBHOOK_KEY", ROBOT_KEY)
    ledger.now = datetime(2026, 9, 1, 10, 0, tzinfo=ledger.now.tzinfo)
    leader = ledger.person("Leader", "leader")
    owner = ledger.person("Owner", "owner")
    campaign = ledger.campaign(first_responsible=ledger.person("Secretary", "leader"))
    measures = ledger.measures(campaign, [
        {"leader": leader, "owner": owner, "deadline": date(2026, 10, 9), "title": f"措施{n}"}
        for n in range(3)])
    # When the sweep runs three working days later, twice
    first = rectiflow("sweep", "--now", "2026-10-13T09:00:00+08:00", "--json")
    second = rectiflow("sweep", "--now", "2026-10-13T09:05:00+08:00", "--json")
    # Then the people got their messages and the group one summary, written once
    assert first.code == 0, first.err
    assert first.json()["group_messages"] == 1 and second.json()["group_messages"] == 0
    listed = rectiflow("outbox", "list", "--json").json()
    [group] = [m for m in listed if m["channel"] == "wecom_robot"]
    assert group["recipient"] == ROBOT_NAME
    assert group["measure_ids"] == [m.id for m in measures]
    assert {r["rule"] for r in group["reasons"]} == {"overdue:3"}
    assert group["subject"].startswith("【整改督办·群通报】逾期督办3项")


def test_the_embedded_clocks_sweep_sends_the_group_summary_to_the_robot(
        database, ledger, wecom_server, tmp_path):
    # Given three measures due Friday 2026-10-09, a group robot configured against the local
    # WeCom server, and the jobs the embedded clock of `rectiflow serve` runs
    ledger.now = datetime(2026, 9, 1, 10, 0, tzinfo=ledger.now.tzinfo)
    leader = ledger.person("Leader", "leader")
    owner = ledger.person("Owner", "owner")
    secretary = ledger.person("Secretary", "leader")
    campaign = ledger.campaign(first_responsible=secretary)
    measures = ledger.measures(campaign, [
        {"leader": leader, "owner": owner, "deadline": date(2026, 10, 9), "title": f"措施{n}"}
        for n in range(3)])
    settings = Settings(database_url=database.url, outbox_dir=tmp_path / "outbox",
                        wecom_api_base=wecom_server.url, wecom_webhook_key=ROBOT_KEY)
    runtime = Runtime(settings, engine=database.engine,
                      clock=lambda: datetime(2026, 10, 13, 9, 0, tzinfo=ledger.now.tzinfo))
    jobs = embedded_jobs(runtime)
    # When the clock's sweep tick fires three working days after the deadline, twice
    jobs["sweep"][1](runtime.now())
    jobs["sweep"][1](runtime.now())
    # Then the group got one summary listing the three escalated measures, and the people their
    # own reminders (in the file channel: no mail server or WeCom application is configured)
    [summary] = wecom_server.robot_messages
    assert summary.msgtype == "markdown"
    text = summary.body["markdown"]["content"]
    assert "逾期督办3项" in text and all(m.title in text for m in measures)
    sent = rows(database.sessions)
    assert {(m.channel, m.status) for m in sent} == {("wecom_robot", "sent"), ("file", "sent")}
    assert sorted(m.recipient for m in sent if m.channel == "file") == sorted(
        p.email for p in (owner, leader, secretary))


# ------------------------------------------------------------------ pure helpers


@pytest.mark.parametrize("limit", [10, 64, 200, 4096])
def test_fit_utf8_never_exceeds_the_limit_or_splits_a_character(limit):
    # Given Chinese lines much longer than the limit
    text = "\n".join(f"{n}. 落实“第一议题”制度，健全学习传达机制😀" for n in range(300))
    tail = "\n……（共300项，详见系统）"
    # When it is fitted
    fitted = fit_utf8(text, limit, tail if limit > 64 else "")
    # Then it fits, decodes, and when there was room it ends with the tail
    assert len(fitted.encode()) <= limit
    fitted.encode().decode("utf-8")
    if limit > 64:
        assert fitted.endswith(tail)


def test_card_description_escapes_user_text_and_drops_links():
    # Given a rendered text whose measure title contains markup
    from notifications.channels.base import Rendered

    message = Rendered(message_id=1, key="k", channel="wecom", recipient="a@b.cn",
                       recipient_name="张三", wecom_id="zhangsan", subject="【整改督办】提醒",
                       text="张三，您好：\n\n【整改督办】提醒\n\n  1. <b>食堂</b>整改\n     查看详情：https://x/1\n"
                            "\n—— rectiflow 整改督办",
                       html="", markdown="", url="https://x/1")
    # When the card text is built
    description = card_description(message)
    # Then only the item remains, escaped
    assert description == "1. &lt;b&gt;食堂&lt;/b&gt;整改"


def test_markdown_text_makes_user_text_inert() -> None:
    from notifications.templating import markdown_text
    assert markdown_text("[a](http://x) **b** <font>#c\n`d`") == \
        "【a】（http://x） ＊＊b＊＊ ＜font＞＃c ｀d｀"
