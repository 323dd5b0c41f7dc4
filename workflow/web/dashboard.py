"""``/dashboard`` (整改总览): for leaders, the first responsible and the 整改办, the figures of
the measures the reader may see (the same service as ``GET /api/stats``), drawn as inline SVG
on the server (the CSP allows no script), each number a link to the ledger filtered to the
measures behind it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from workflow.ledger import deadline_health
from workflow.lifecycle import Kind
from workflow.services.dashboard import GROUPINGS, SECTION_LIMIT, dashboard_view
from workflow.web.auth import page_person
from workflow.web.context import web_of
from workflow.web.pages import page

router = APIRouter(include_in_schema=False)


@router.get("/dashboard")
def dashboard(request: Request,
              section: Annotated[str | None, Query(alias="all")] = None) -> Response:
    """``?all=unit`` shows that section's every group (a 巡察办's 600 departments); a stale
    or mistyped value shows the usual page."""
    web = web_of(request)
    expand = section if section in GROUPINGS else None
    today = web.today()
    with web.transaction() as session:
        person = page_person(request, session)
        view = dashboard_view(
            session, web.scope(session, person), person.id, today,
            web.runtime.reminder_context(session).days,
            stagnation=web.policies.effective(Kind.DEADLINE).stagnation, policies=web.policies,
            expand=expand)
        return web.render(request, "dashboard.html", page(
            request, person, "dashboard", view=view, today=today, health=deadline_health,
            expanded=expand, limit=SECTION_LIMIT,
            due_text=web.due_text(session)))
