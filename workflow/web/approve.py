"""``/approve/{token}``: the one-time link in a message. GET shows what will happen and changes
nothing (mail scanners open links); POST acts as the person the link was made for: the link's
action (确认销号, 批准延期), or, where the lifecycle lets that person refuse it, its refusal
with a reason (退回整改, 不同意延期). Either uses the link up.

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

from workflow.errors import InputError, LinkForSomeoneElse, NotPermitted
from workflow.models import Person, ProgressReport
from workflow.policy import approval_sign_in
from workflow.services.approvals import LinkView, inspect, redeem, refusal_for
from workflow.services.people import principals_for
from workflow.timeutil import local_date
from workflow.web.auth import LoginRequired, check_csrf, csrf_token, session_person
from workflow.web.context import Web, web_of

router = APIRouter(include_in_schema=False)


def signed_in_actor(web: Web, request: Request, session: Session, view: LinkView, token: str,
                    now: datetime, refusing: bool = False) -> Person | None:
    """None when the policy lets the link act by itself; else the signed-in person, who must be
    the link's person or act for them today. Raises LoginRequired without a session. A refusal
    asks for sign-in where the link's action or the refusal does."""
    wanted = {view.action} | ({view.choice.refusal} if refusing and view.choice.refusal else set())
    if not wanted & approval_sign_in(web.policies):
        return None
    person = session_person(request, session)
    if person is None:
        raise LoginRequired(f"/approve/{token}")
    if view.person.id not in {p.id for p in principals_for(session, person, local_date(now))}:
        raise LinkForSomeoneElse(view.person.name, person.name)
    return person


def _page(web: Web, request: Request, session: Session, view: LinkView, token: str,
          actor: Person | None, now: datetime, *, reason: str = "", error: str | None = None,
          status_code: int = 200) -> Response:
    reports = session.scalars(
        select(ProgressReport).options(selectinload(ProgressReport.evidence))
        .where(ProgressReport.measure_id == view.measure.id)
        .order_by(ProgressReport.id.desc()).limit(3)).all()
    context = {"view": view, "measure": view.measure, "reports": reports,
               "area": view.measure.problem.area.title, "csrf": csrf_token(request),
               "token": token, "person": None, "actor": actor,
               "refusal": refusal_for(session, view, local_date(now), actor),
               "reason": reason, "error": error}
    return web.render(request, "approve.html", context, status_code=status_code)


@router.get("/approve/{token}")
def confirm(token: str, request: Request) -> Response:
    web = web_of(request)
    now = web.now()
    with web.transaction() as session:
        view = inspect(session, token, now)
        actor = signed_in_actor(web, request, session, view, token, now)
        return _page(web, request, session, view, token, actor, now)


@router.post("/approve/{token}")
async def approve(token: str, request: Request) -> Response:
    """``decision=refuse`` (with ``reason``) takes the link's refusal; anything else its
    action. A refusal without a reason, or one the person may not take, shows the page again
    with the message and what was typed (422/403); the link stays unused."""
    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    refusing = form.get("decision") == "refuse"
    reason = str(form.get("reason") or "")
    now = web.now()
    try:
        with web.transaction() as session:
            view = inspect(session, token, now)
            actor = signed_in_actor(web, request, session, view, token, now, refusing)
            outcome = redeem(session, token, now, actor=actor, refuse=refusing, reason=reason)
            word = view.choice.refuse_button if refusing else view.action_label
            context = {"measure": outcome.measure, "word": word,
                       "state": outcome.measure.state, "person": None}
    except (InputError, NotPermitted) as exc:
        if not refusing:
            raise
        with web.transaction() as session:  # the refused attempt rolled back: show it again
            view = inspect(session, token, now)
            actor = signed_in_actor(web, request, session, view, token, now, refusing)
            return _page(web, request, session, view, token, actor, now, reason=reason,
                         error=str(exc), status_code=exc.http_status)
    return web.render(request, "approve_done.html", context)
