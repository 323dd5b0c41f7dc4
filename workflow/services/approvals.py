"""One-time approval links (``/approve/{token}``): minted at send time, stored hashed.

A link lets one person do one action on one version of one measure, once, before it expires.
The clear token is returned to the caller (the message renderer) and never stored: the table
holds its SHA-256. Using a link goes through ``perform`` like any other action.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session

from workflow.errors import InputError, LinkExpired, LinkNotFound, LinkStale, LinkUsed
from workflow.lifecycle import LINK_ACTIONS, TRANSITIONS, Action, LinkChoice, State, link_choice
from workflow.models import ApprovalLink, Measure, OutboxMessage, Person
from workflow.services.measures import (
    ActionOutcome,
    ActionRequest,
    load_measure,
    perform,
    relations_with_delegation,
)
from workflow.timeutil import SHANGHAI, local_text

DEFAULT_TTL = timedelta(hours=72)
#: The longest reason a refusal through a link takes (the page's field says so too).
REASON_MAX_CHARS = 2000


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def mint(session: Session, *, measure: Measure, action: Action, person_id: int, now: datetime,
         ttl: timedelta = DEFAULT_TTL, message_id: int | None = None) -> str:
    """Store a new link for (measure, action, person, the measure's current version); return
    the clear token, which exists nowhere else."""
    token = secrets.token_urlsafe(32)
    session.add(ApprovalLink(
        token_sha256=token_digest(token), measure_id=measure.id, action=action.value,
        person_id=person_id, version=measure.version, created_at=now, expires_at=now + ttl,
        message_id=message_id))
    session.flush()
    return token


@dataclass(frozen=True)
class LinkView:
    """What a valid link will do, for the confirmation page."""

    link: ApprovalLink
    measure: Measure
    person: Person
    action: Action

    @property
    def action_label(self) -> str:
        return TRANSITIONS[self.action].label

    @property
    def choice(self) -> LinkChoice:
        return link_choice(self.action)


def refusal_for(session: Session, view: LinkView, on: date,
                actor: Person | None = None) -> Action | None:
    """The action that refuses what the link asks (``LINK_CHOICES``: 退回 a measure waiting for
    销号, 不同意 an extension) if the link's person (or ``actor``, acting for them) may take it
    on the measure as it stands; else None, and the page offers the link's action alone."""
    refusal = view.choice.refusal
    if refusal is None:
        return None
    transition = TRANSITIONS[refusal]
    relations = relations_with_delegation(session, actor or view.person, view.measure, on)
    if State(view.measure.state) not in transition.sources or not transition.who & relations:
        return None
    if not transition.allowed_with(view.measure.extension_deadline is not None):
        return None
    return refusal


def inspect(session: Session, token: str, now: datetime) -> LinkView:
    """The link behind ``token`` if it can still be used; raise why not. Changes nothing."""
    link = session.scalar(select(ApprovalLink).where(
        ApprovalLink.token_sha256 == token_digest(token)))
    if link is None:
        raise LinkNotFound()
    if link.used_at is not None:
        raise LinkUsed(link.measure_id, local_text(link.used_at))
    if now >= link.expires_at:
        raise LinkExpired(link.measure_id, local_text(link.expires_at))
    measure = load_measure(session, link.measure_id)
    action = Action(link.action)
    if measure.version != link.version or State(measure.state) not in TRANSITIONS[action].sources:
        raise LinkStale(measure.id, State(measure.state).label)
    person = session.get(Person, link.person_id)
    assert person is not None  # a foreign key
    return LinkView(link, measure, person, action)


def redeem(session: Session, token: str, now: datetime, *,
           actor: Person | None = None, refuse: bool = False,
           reason: str | None = None) -> ActionOutcome:
    """Use the link: act as its person (or ``actor``, their signed-in delegate, where the policy
    requires sign-in) on its version, and mark it used, in one transaction. With ``refuse``
    the link's refusal (``refusal_for``) is taken instead, with ``reason`` (required): the same
    single use, the same measure, version and person. A refusal the person may not take is
    refused (``NotPermitted`` from ``perform``); a missing reason is ``InputError``; either leaves the link
    unused (the caller rolls back)."""
    view = inspect(session, token, now)
    action, comment = view.action, "通过消息中的一次性链接办理"
    if refuse:
        refusal = view.choice.refusal
        if refusal is None:
            raise InputError(f"此链接只能用于「{view.action_label}」，不能退回。",
                             field="decision")
        action, comment = refusal, (reason or "").strip()
        if len(comment) > REASON_MAX_CHARS:
            raise InputError(f"理由不能超过 {REASON_MAX_CHARS} 字（现为 {len(comment)} 字）",
                             field="reason")
    table = ApprovalLink.__table__
    marked = session.execute(
        update(table).where(table.c.id == view.link.id,  # type: ignore[arg-type]
                            table.c.used_at.is_(None)).values(used_at=now))
    if marked.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkUsed(view.measure.id, local_text(now))
    return perform(session, ActionRequest(
        measure_id=view.measure.id, action=action, actor=actor or view.person,
        comment=comment, expected_version=view.link.version), now=now)


def expiry_after_workdays(workdays: int, nth_after: Callable[[date, int], date]
                          ) -> Callable[[datetime], datetime]:
    """When a link made at a time expires: the same time of day ``workdays`` working days
    later, Asia/Shanghai (made Thursday 15:00 with 3: Tuesday 15:00)."""

    def expires(moment: datetime) -> datetime:
        local = moment.astimezone(SHANGHAI)
        day = nth_after(local.date(), workdays)
        return datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=SHANGHAI)

    return expires


def make_link_maker(base_url: str, ttl: timedelta | Callable[[datetime], datetime],
                    now: Callable[[], datetime]
                    ) -> Callable[[OutboxMessage, dict[str, Any]], str | None]:
    """A ``LinkMaker`` for the deliverer: items whose rule asks the recipient to act get a
    fresh approval link, minted in the transaction that renders the message. ``ttl`` is a
    fixed duration, or a function from the time made to the expiry (``expiry_after_workdays``).
    No link for a measure that is no longer where the item found it (its version)."""

    def link_for(message: OutboxMessage, item: dict[str, Any]) -> str | None:
        action = LINK_ACTIONS.get(item.get("rule", ""))
        session = object_session(message)
        if action is None or message.recipient_id is None or session is None:
            return None
        measure = session.get(Measure, item["measure_id"])
        if measure is None or State(measure.state) not in TRANSITIONS[action].sources:
            return None  # already acted on: the plain link to the measure is enough
        if item.get("version") is not None and item["version"] != measure.version:
            return None  # changed since the item was planned
        made = now()
        lifetime = ttl if isinstance(ttl, timedelta) else ttl(made) - made
        token = mint(session, measure=measure, action=action, person_id=message.recipient_id,
                     now=made, ttl=lifetime, message_id=message.id)
        return f"{base_url}/approve/{token}"

    return link_for
