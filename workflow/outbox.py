"""Writing notifications into the outbox: once per key, one message per recipient and channel.

Items carry the idempotency key (measure, deadline, stage, recipient, channel); the database's
unique index on it means a notice planned twice, by one sweep run twice or by two at once, is
written once. What a message says is rendered at send time from its payload.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol, TypedDict

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from workflow import metrics
from workflow.lifecycle import (
    DEADLINE_RULES,
    RULE_LABELS,
    ChannelName,
    MessageKind,
    OutboxStatus,
    Preference,
)
from workflow.models import OutboxItem, OutboxMessage, Person
from workflow.reminders import URGENCY_LABELS


@dataclass(slots=True)
class PlannedItem:
    """One measure to tell one person about, and why."""

    measure_id: int
    rule: str
    stage: str
    deadline: date | None
    recipient_id: int
    urgency: int
    reason: str
    on_behalf_of: str | None = None  # the absent person this delegate receives it for
    colour: str | None = None
    #: the measure's version when planned, the relation the item is meant for (owner, leader,
    #: ...) and the person who holds it: the deliverer checks them at send time
    version: int | None = None
    relation: str | None = None
    meant_for: int | None = None
    #: the first words of ``reason``, for a subject (an event's reason adds the actor's words)
    headline: str | None = None
    document: dict[str, Any] | None = None  # the 督办 document the stage issued (id, number, …)


@dataclass(frozen=True)
class Recipient:
    id: int
    name: str
    email: str
    wecom_id: str | None
    preference: str


def channels_for(person: Recipient, configured: frozenset[str]) -> list[str]:
    """Which channels reach ``person``: email and/or WeCom as configured and preferred; the
    file channel when no real channel is configured at all."""
    if not configured & {ChannelName.EMAIL, ChannelName.WECOM}:
        return [ChannelName.FILE]
    reachable: list[str] = []
    if ChannelName.EMAIL in configured and person.email:
        reachable.append(ChannelName.EMAIL)
    if ChannelName.WECOM in configured and person.wecom_id:
        reachable.append(ChannelName.WECOM)
    if person.preference in (Preference.EMAIL, Preference.WECOM) \
            and person.preference in reachable:
        return [person.preference]
    return reachable


def item_key(item: PlannedItem, channel: str) -> str:
    """(measure, deadline, stage, recipient, channel); the deadline only for deadline rules."""
    return f"{item.measure_id}|{_key_middle(item.rule, item.stage, item.deadline)}|" \
           f"{item.recipient_id}|{channel}"


@functools.lru_cache(maxsize=4096)
def _key_middle(rule: str, stage: str, deadline: date | None) -> str:
    """The deadline and stage part of a key, which thousands of items of a sweep share."""
    depends = deadline is not None and rule.split(":", 1)[0] in DEADLINE_RULES
    return f"{deadline.isoformat() if depends and deadline else '-'}|{stage}"


def by_measure(items: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The items of one message grouped by measure, each group most urgent first, the groups
    in the order of their most urgent item (pure): one line per measure, with all its reasons."""
    groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for item in sorted(items, key=_shown_order):
        groups[item["measure_id"]].append(item)
    return list(groups.values())


def subject_for(items: Sequence[dict[str, Any]], kind: str) -> str:
    """A Chinese subject that says how many measures and how urgent (pure). A measure with
    several reasons counts once, under its most urgent one."""
    measures = by_measure(items)
    firsts = [group[0] for group in measures]
    if kind == MessageKind.EVENT:
        if len(measures) == 1:
            first = firsts[0]
            return f"【整改督办】{first.get('headline') or first['reason']}"
        by_rule: dict[str, int] = defaultdict(int)
        for item in firsts:
            by_rule[RULE_LABELS.get(item["rule"], item["rule"])] += 1
        detail = "，".join(f"{label}{n}项" for label, n in by_rule.items())
        return f"【整改督办】您有{len(measures)}项整改措施：{detail}"
    counts: dict[int, int] = defaultdict(int)
    for item in firsts:
        counts[item["urgency"]] += 1
    worst = min(counts)
    detail = "，".join(f"{URGENCY_LABELS[u]}{n}项" for u, n in sorted(counts.items()))
    prefix = "【整改督办·红牌】" if worst == 0 else "【整改督办】"
    return f"{prefix}您有{len(measures)}项整改措施需要关注：{detail}"


def load_recipients(session: Session, ids: Iterable[int]) -> dict[int, Recipient]:
    wanted = set(ids)
    found: dict[int, Recipient] = {}
    id_list = sorted(wanted)
    for start in range(0, len(id_list), 1000):
        chunk = id_list[start:start + 1000]
        for pid, name, email, wecom_id, preference in session.execute(
                select(Person.id, Person.name, Person.email, Person.wecom_id,
                       Person.channel_preference).where(Person.id.in_(chunk))):
            found[pid] = Recipient(pid, name, email, wecom_id, preference)
    return found


#: Items are shown most urgent first, then by measure (an itemgetter: a burst's finish sorts a
#: quarter of a million items by it).
_shown_order = operator.itemgetter("urgency", "measure_id")


def _item_payload(item: PlannedItem) -> dict[str, Any]:
    """The item as its message lists it."""
    payload: dict[str, Any] = {
        "measure_id": item.measure_id, "rule": item.rule, "urgency": item.urgency,
        "reason": item.reason, "colour": item.colour, "on_behalf_of": item.on_behalf_of,
        "deadline": item.deadline.isoformat() if item.deadline else None}
    if item.version is not None:
        payload["version"] = item.version
    if item.relation is not None:
        payload.update(relation=item.relation, meant_for=item.meant_for)
    if item.headline is not None:
        payload["headline"] = item.headline
    if item.document is not None:
        payload["document"] = item.document
    return payload


class ItemRow(TypedDict):
    """An ``outbox_item`` row to insert (a dict: what an executemany and JSON take)."""

    message_id: int
    measure_id: int
    rule: str
    key: str


def insert_items(session: Session, rows: list[ItemRow]) -> int:
    """Insert ``rows``, skipping those whose key exists already; how many were inserted."""
    table = OutboxItem.__table__
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    statement = dialect.insert(table).on_conflict_do_nothing(  # type: ignore[arg-type]
        index_elements=["key"])
    return int(session.execute(statement, rows).rowcount) if rows else 0  # type: ignore[attr-defined]


def keys_inserted(session: Session, message_ids: set[int], *,
                  all_inserted: bool) -> set[str] | None:
    """Which keys were inserted into the messages ``message_ids``: ``None`` (every key sent)
    when no row was skipped, the usual case; otherwise those of the items that point at the
    messages (only the writer that made them writes into them)."""
    if all_inserted:
        return None
    ids = sorted(message_ids)
    inserted: set[str] = set()
    for start in range(0, len(ids), 1000):
        inserted.update(session.scalars(
            select(OutboxItem.key).where(OutboxItem.message_id.in_(ids[start:start + 1000]))))
    return inserted


class ItemStore(Protocol):
    """Where ``OutboxWriter`` writes its items: ``insert_items`` inserts rows, skipping keys
    written before; ``inserted_keys`` gives the keys it inserted, once everything is written
    (``None``: all of them);
    ``fill_messages`` gives placeholder messages (``id``) their ``subject``, ``payload`` and
    ``key``."""

    def insert_items(self, rows: list[ItemRow]) -> None: ...

    def inserted_keys(self) -> set[str] | None: ...

    def fill_messages(self, rows: list[dict[str, Any]]) -> None: ...


class PortableItems:
    """``ItemStore`` with portable statements. A key written before is rare (a replay, two
    clocks), so the inserts send nothing back: ``inserted_keys`` compares the rows inserted
    with those sent and asks the database only when they differ."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._message_ids: set[int] = set()
        self._skipped = 0

    def insert_items(self, rows: list[ItemRow]) -> None:
        self._skipped += len(rows) - self._insert(rows)
        self._message_ids.update(row["message_id"] for row in rows)

    def _insert(self, rows: list[ItemRow]) -> int:
        return insert_items(self.session, rows)

    def inserted_keys(self) -> set[str] | None:
        return keys_inserted(self.session, self._message_ids, all_inserted=not self._skipped)

    def fill_messages(self, rows: list[dict[str, Any]]) -> None:
        """An executemany: psycopg pipelines it, SQLite runs it in-process."""
        self.session.execute(_FILL, [{"message_id": row["id"], "subject": row["subject"],
                                      "payload": row["payload"], "key": row["key"]}
                                     for row in rows])


def items_store_for(session: Session) -> PortableItems:
    """The item store for the session's backend: PostgreSQL's adapter, or the portable one."""
    if session.get_bind().dialect.name == "postgresql":
        from workflow.pg.items import PostgresItems  # builds on this module's names
        return PostgresItems(session)
    return PortableItems(session)


#: how many messages ``OutboxWriter.finish`` hands the store at a time (a burst's messages list
#: about a hundred items each: a chunk is a few megabytes of payloads, stored while the next
#: chunk is made)
FILL_CHUNK = 32


class OutboxWriter:
    """Writes planned items into the outbox, batch by batch: each key once, grouped into one
    message per recipient and channel for the whole run.

    Each item is written once, already pointing at its message: ``write`` inserts a placeholder
    message (a key of its own, so it can never clash) the first time a recipient and channel
    come up, then the items (``store.insert_items``: keys written before are skipped);
    ``finish`` fills the placeholders from the items actually inserted
    (``store.inserted_keys``) and deletes those that got none.
    No other transaction ever sees a placeholder.
    """

    def __init__(self, session: Session, *, now: datetime, send_at: datetime,
                 configured: frozenset[str], kind: str = MessageKind.REMINDER,
                 store: ItemStore | None = None) -> None:
        self.session = session
        self.now, self.send_at, self.configured, self.kind = now, send_at, configured, kind
        self.store = store if store is not None else PortableItems(session)
        self._recipients: dict[int, Recipient] = {}
        self._channels: dict[int, list[str]] = {}  # which channels reach each recipient
        self._payloads: dict[str, dict[str, Any]] = {}  # each key's item, as its message lists it
        self._messages: dict[tuple[int, str], OutboxMessage] = {}  # by recipient and channel
        self._message_ids: dict[tuple[int, str], int] = {}  # their ids, read once
        self._keys: dict[tuple[int, str], list[str]] = {}  # each message's keys
        self._token = uuid.uuid4().hex

    def write(self, items: Iterable[PlannedItem]) -> None:
        """Write ``items`` (keys met before in this run are left out)."""
        items = list(items)
        self._meet({item.recipient_id for item in items})
        rows: list[ItemRow] = []
        groups: list[tuple[int, str]] = []  # each row's recipient and channel
        new: list[tuple[int, str]] = []  # recipients and channels met for the first time
        payloads, keys, channels = self._payloads, self._keys, self._channels
        for item in items:
            for channel in channels[item.recipient_id]:
                key = item_key(item, channel)
                if key in payloads:
                    continue
                payloads[key] = _item_payload(item)
                group = (item.recipient_id, channel)
                members = keys.get(group)
                if members is None:
                    members = keys[group] = []
                    new.append(group)
                members.append(key)
                rows.append({"message_id": 0, "measure_id": item.measure_id, "rule": item.rule,
                             "key": key})
                groups.append(group)
        if new:
            self._open(sorted(new))
        if rows:
            ids = self._message_ids
            for row, group in zip(rows, groups, strict=True):
                row["message_id"] = ids[group]
            self.store.insert_items(rows)

    def amend(self, items: Iterable[PlannedItem]) -> None:
        """Give items written before (by ``write``) the 督办 document linked to them since
        (``item.document``): their messages, filled by ``finish``, then list them with it.
        The sweep issues its documents once all its batches are written."""
        payloads, channels = self._payloads, self._channels
        for item in items:
            if item.document is None:
                continue
            for channel in channels[item.recipient_id]:
                payload = payloads.get(item_key(item, channel))
                if payload is not None:  # the last of the payload's keys, as _item_payload puts it
                    payload["document"] = item.document

    def _meet(self, ids: set[int]) -> None:
        """Read the recipients not met before, and which channels reach them."""
        missing = ids - self._recipients.keys()
        if missing:
            found = load_recipients(self.session, missing)
            self._recipients.update(found)
            self._channels.update((pid, channels_for(person, self.configured))
                                  for pid, person in found.items())

    def _open(self, new: list[tuple[int, str]]) -> None:
        """A placeholder message for each recipient and channel in ``new``: one ORM bulk insert
        that returns them as the session's objects (a burst's 2,069 placeholders took 0.33 s
        through the unit of work's flush)."""
        placeholders = self.session.scalars(
            insert(OutboxMessage).returning(OutboxMessage, sort_by_parameter_order=True),
            [{"channel": channel, "kind": self.kind, "recipient_id": recipient_id,
              "recipient": self._recipients[recipient_id].email, "subject": "", "payload": {},
              "key": f"{self.kind}|{recipient_id}|{channel}|writing-{self._token}",
              "status": OutboxStatus.PENDING, "attempts": 0, "not_before": self.send_at,
              "created_at": self.now, "info": {}}
             for recipient_id, channel in new]).all()
        for group, message in zip(new, placeholders, strict=True):
            self._messages[group] = message
            self._message_ids[group] = message.id

    def finish(self) -> list[OutboxMessage]:
        """Fill the placeholders; returns the messages created, in id order (those whose every
        item was written before are deleted).

        The fills go to the store ``FILL_CHUNK`` messages at a time, as they are made: a store
        that runs its statements while Python goes on (PostgreSQL's sweep) then stores one
        chunk while the next is made, and no call carries a burst's whole payload."""
        filled: list[tuple[OutboxMessage, dict[str, Any]]] = []
        empty: list[OutboxMessage] = []
        inserted = self.store.inserted_keys()
        chunk: list[dict[str, Any]] = []
        for (recipient_id, channel), message in sorted(self._messages.items(),
                                                       key=lambda pair: pair[1].id):
            keys = self._keys[(recipient_id, channel)]
            if inserted is not None:
                keys = [k for k in keys if k in inserted]
            if not keys:
                empty.append(message)
                continue
            shown = sorted((self._payloads[k] for k in keys), key=_shown_order)
            digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
            values = {
                "id": message.id, "subject": subject_for(shown, self.kind),
                "payload": {"items": shown, "name": self._recipients[recipient_id].name},
                "key": f"{self.kind}|{recipient_id}|{channel}|{digest[:40]}"}
            filled.append((message, values))
            chunk.append(values)
            if len(chunk) == FILL_CHUNK:
                self.store.fill_messages(chunk)
                chunk = []
        if chunk:
            self.store.fill_messages(chunk)
        _settle_placeholders(self.session, filled, empty)
        messages = [message for message, _ in filled]
        metrics.messages_created((m.channel for m in messages), self.kind)
        return messages


def write_notices(session: Session, items: Sequence[PlannedItem], *, now: datetime,
                  send_at: datetime, configured: frozenset[str], kind: str = MessageKind.REMINDER
                  ) -> list[OutboxMessage]:
    """Write ``items`` as outbox rows (``OutboxWriter``, one batch). Returns the messages
    created (items already written before are left out)."""
    writer = OutboxWriter(session, now=now, send_at=send_at, configured=configured, kind=kind,
                          store=items_store_for(session))
    writer.write(items)
    return writer.finish()


_MESSAGES = OutboxMessage.__table__
_FILL = (update(_MESSAGES)  # type: ignore[arg-type]
         .where(_MESSAGES.c.id == bindparam("message_id"))
         .values(subject=bindparam("subject"), payload=bindparam("payload"), key=bindparam("key")))


def _settle_placeholders(session: Session, filled: list[tuple[OutboxMessage, dict[str, Any]]],
                         empty: list[OutboxMessage]) -> None:
    """Delete the placeholders that got no item, with a Core statement (no unit-of-work
    bookkeeping), and tell the filled ones their new subject, payload and key as committed
    values (the store wrote them)."""
    if empty:
        session.execute(delete(_MESSAGES)  # type: ignore[arg-type]
                        .where(_MESSAGES.c.id.in_([m.id for m in empty])))
        for message in empty:
            session.expunge(message)
    for message, values in filled:
        for column in ("subject", "payload", "key"):
            set_committed_value(message, column, values[column])


def message_dict(message: OutboxMessage) -> dict[str, Any]:
    """The contract shape of one outbox message (design.md, ``outbox list --json``)."""
    items = message.payload.get("items", [])
    return {
        "id": message.id,
        "channel": message.channel,
        "kind": message.kind,
        "recipient": message.recipient,
        "subject": message.subject,
        "status": message.status,
        "key": message.key,
        "attempts": message.attempts,
        "not_before": message.not_before.isoformat(),
        "created_at": message.created_at.isoformat(),
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "last_error": message.last_error,
        "measure_ids": sorted({i["measure_id"] for i in items}),
        "reasons": [{"measure_id": i["measure_id"], "rule": i["rule"], "reason": i["reason"]}
                    for i in items],
        "info": message.info,
    }


def list_messages(session: Session, status: str | None = None, limit: int | None = None
                  ) -> Sequence[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()



# ------------------------------------------------------------------ dead messages, for the clerk

#: Why a message died, in plain Chinese, and what to do: (words found in the error, explanation),
#: first match wins. The errors are the channels' own (notifications/channels), often technical.
FAILURE_EXPLANATIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("被拒收", "recipients refused", "550", "553", "mailbox"),
     "对方邮箱拒收：邮箱地址可能写错或已停用。请在人员页核对此人的邮箱后重试。"),
    (("登录失败", "535", "authentication"),
     "发件邮箱登录失败：发件账号或密码（授权码）不对。请管理员检查邮件设置后重试。"),
    (("无法连接 SMTP", "connection refused", "connectionrefused", "timed out", "timeout",
      "连接中断", "name or service not known", "network is unreachable"),
     "连不上邮件服务器：网络或服务器故障。恢复后重试即可。"),
    (("invaliduser", "账号", "60111", "81013", "userid"),
     "企业微信账号无效：此人不在企业微信通讯录中，或账号写错。请在人员页核对企业微信账号后重试。"),
    (("60020", "from your ip", "可信", "白名单"),
     "企业微信拒绝了本服务器的地址：需在企业微信管理后台把服务器 IP 加入可信 IP。"),
    (("40001", "42001", "40014", "access_token", "secret"),
     "企业微信应用凭据无效：请管理员检查企业 ID、应用 Secret 是否正确。"),
    (("45009", "45033", "频率", "rate limit", "too many"),
     "发送太频繁被企业微信限流：稍后重试即可。"),
    (("93000", "webhook", "机器人"),
     "企业微信群机器人地址无效：机器人可能已被移出群，请管理员更新机器人地址。"),
    (("无法写入",),
     "无法写入本地文件：请管理员检查发件箱目录的磁盘空间和权限。"),
)
UNKNOWN_FAILURE = "发送失败，原因见右侧原始错误信息；如不明白，请把它转给管理员。"


def explain_failure(error: str | None) -> str:
    """Why a message could not be sent, for a clerk, from the channel's error text."""
    text = (error or "").lower()
    for words, explanation in FAILURE_EXPLANATIONS:
        if any(word.lower() in text for word in words):
            return explanation
    return UNKNOWN_FAILURE


def dead_messages(session: Session, *, channel: str | None = None, error: str | None = None,
                  limit: int | None = None) -> Sequence[OutboxMessage]:
    """Dead messages, newest first, of one channel and/or whose error contains ``error``."""
    query = select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.DEAD)
    if channel:
        query = query.where(OutboxMessage.channel == channel)
    if error:
        query = query.where(OutboxMessage.last_error.contains(error, autoescape=True))
    query = query.order_by(OutboxMessage.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return session.scalars(query).all()


def retry_dead(session: Session, now: datetime, *, channel: str | None = None,
               error: str | None = None) -> int:
    """Put every dead message of the filter back in the queue, tries counted from zero; how
    many. The deliverer sends them on its next round."""
    revived = 0
    for message in dead_messages(session, channel=channel, error=error):
        message.status = OutboxStatus.PENDING
        message.attempts = 0
        message.not_before = now
        message.lease_until = None
        revived += 1
    session.flush()
    return revived
