"""``/approve/{token}``: the one-time link in a message. GET shows what will happen and changes
nothing (mail scanners open links); POST acts as the person the link was made for.

Where the policy requires sign-in for the link's action (``[approval_link]``, 销号 by default),
both ask for a session first (login, then back here), and only the link's person or their
delegate may confirm: a forwarded message does not hand the sign-off over.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from workflow.errors import LinkForSomeoneElse
from workflow.models import Person, ProgressReport
from workflow.policy import approval_sign_in
from workflow.services.approvals import LinkView, inspect, redeem
from workflow.services.people import principals_for
from workflow.timeutil import local_date
from workflow.web.auth import LoginRequired, check_csrf, csrf_token, session_person
from workflow.web.context import Web, web_of

router = APIRouter(include_in_schema=False)


def signed_in_actor(web: Web, request: Request, session: Session, view: LinkView, token: str,
                    now: datetime) -> Person | None:
    """None when the policy lets the link act by itself; else the signed-in person, who must be
    the link's person or act for them today. Raises LoginRequired without a session."""
    if view.action not in approval_sign_in(web.policies):
        return None
    person = session_person(request, session)
    if person is None:
        raise LoginRequired(f"/approve/{token}")
    if view.person.id not in {p.id for p in principals_for(session, person, local_date(now))}:
        raise LinkForSomeoneElse(view.person.name, person.name)
    return person


@router.get("/approve/{token}")
def confirm(token: str, request: Request) -> Response:
    web = web_of(request)
    now = web.now()
    with web.transaction() as session:
        view = inspect(session, token, now)
        actor = signed_in_actor(web, request, session, view, token, now)
        reports = session.scalars(
            select(ProgressReport).options(selectinload(ProgressReport.evidence))
            .where(ProgressReport.measure_id == view.measure.id)
            .order_by(ProgressReport.id.desc()).limit(3)).all()
        context = {"view": view, "measure": view.measure, "reports": reports,
                   "area": view.measure.problem.area.title, "csrf": csrf_token(request),
                   "token": token, "person": None, "actor": actor}
        return web.render(request, "approve.html", context)


@router.post("/approve/{token}")
async def approve(token: str, request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    now = web.now()
    with web.transaction() as session:
        view = inspect(session, token, now)
        actor = signed_in_actor(web, request, session, view, token, now)
        outcome = redeem(session, token, now, actor=actor)
        context = {"measure": outcome.measure, "label": outcome.entry.action,
                   "state": outcome.measure.state, "person": None}
    return web.render(request, "approve_done.html", context)
