"""Rendering a weekly digest: HTML (with the inline chart), plain text, and WeCom markdown.

Templates are Jinja2 files in ``templates/digest.*``; HTML is autoescaped (titles are user
text). The markdown version is cut down until it fits WeCom's 4,096-byte limit.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy.orm import Session

from notifications.channels.base import Rendered
from notifications.chart import WIDTH_PX, Bar, Chart, legend_note, progress_chart, text_bars
from notifications.templating import TEMPLATES
from workflow.calendar_store import load_calendar
from workflow.lifecycle import STATE_LABELS, ChannelName
from workflow.models import OutboxMessage, Person
from workflow.reminders import WorkdayIndex
from workflow.services.dashboard import Figures
from workflow.services.digest import (
    Digest,
    DigestInputs,
    Scope,
    load_inputs,
    subject_for_digest,
)
from workflow.stats import Counts, Flagged, bounds, percent
from workflow.timeutil import SHANGHAI, local_text

MARKDOWN_LIMIT = 4096
CHART_CID = "progress-chart"
LIST_LIMIT = 30



@dataclass(frozen=True)
class DigestRendering:
    subject: str
    html: str
    text: str
    markdown: str
    chart: Chart | None


def _signed(value: int | float | None, *, points: bool = False) -> str:
    if value is None:
        return "—"
    if points:
        shown = f"{value * 100:+.1f}个百分点"
        return "持平" if shown.startswith(("+0.0", "-0.0")) else shown
    return "持平" if value == 0 else f"{value:+d}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _row(digest: Digest, flag: Flagged, base_url: str) -> dict[str, Any]:
    r = flag.record
    owner = digest.person(r.owner_id)
    return {"id": r.id, "title": r.title, "area": r.area, "unit": r.unit or "—",
            "owner": owner.name if owner else "—", "days": flag.days,
            "deadline": r.deadline.isoformat() if r.deadline else "—",
            "state": STATE_LABELS[r.state], "link": f"{base_url}/measures/{r.id}"}


def _counts_row(name: str, c: Counts) -> dict[str, Any]:
    return {"name": name, "total": c.total, "finished": c.finished, "long_term": c.long_term,
            "unfinished": c.unfinished, "overdue": c.overdue,
            "completion": percent(c.completed, c.total), "on_time": _rate(c.on_time_rate)}


def bars_for(digest: Digest) -> list[Bar]:
    """One bar per 方面 for a campaign-wide digest, else per 责任部门."""
    source = digest.stats.by_area if digest.scope.whole else digest.stats.by_unit
    return [Bar(name, c.finished, c.long_term, c.unfinished - c.overdue, c.overdue)
            for name, c in source.items()]


def context(digest: Digest, base_url: str, *, name: str, limit: int = LIST_LIMIT,
            chart: Chart | None = None, chart_src: str | None = None) -> dict[str, Any]:
    counts = digest.stats.counts
    wow = digest.week_on_week
    bars = bars_for(digest)
    leaders = []
    for pid, c in digest.stats.by_leader.items():
        ref = digest.person(pid)
        leaders.append(_counts_row(ref.name if ref else "（未指定）", c))
    as_of = digest.as_of.astimezone(SHANGHAI)
    return {
        "name": name,
        "subject": subject_for_digest(digest.campaign_title, digest.as_of),
        "campaign": digest.campaign_title or "全部整改任务",
        "scope": digest.scope.label,
        "as_of": local_text(digest.as_of),
        "as_of_day": f"{as_of.year}年{as_of.month}月{as_of.day}日",
        "headline": digest.headline,
        "counts": counts,
        "urges": sum(digest.urges.values()),
        "urged": len(digest.urges),
        "rechecks": sum(digest.rechecks.values()),
        "relapses": sum(digest.relapses.values()),
        "relapses_total": sum(digest.relapses_total.values()),
        "completion": percent(counts.completed, counts.total),
        "on_time": _rate(counts.on_time_rate),
        "wow": {"completed": _signed(wow["completed"]), "overdue": _signed(wow["overdue"]),
                "completion_rate": _signed(wow["completion_rate"], points=True),
                "on_time_rate": _signed(wow["on_time_rate"], points=True),
                "total": _signed(wow["total"])},
        "overdue": [_row(digest, f, base_url) for f in digest.stats.overdue[:limit]],
        "overdue_more": max(counts.overdue - limit, 0),
        "due_soon": [_row(digest, f, base_url) for f in digest.stats.due_soon[:limit]],
        "due_soon_more": max(counts.due_soon - limit, 0),
        "mine": [_row(digest, Flagged(r, 0), base_url) for r in digest.own_open[:limit]],
        "mine_more": max(len(digest.own_open) - limit, 0),
        "stagnating": [_row(digest, f, base_url) for f in digest.stats.stagnating[:limit]],
        "stagnating_more": max(counts.stagnating - limit, 0),
        "changes": [{"id": c.record.id, "title": c.record.title, "what": c.describe(),
                     "link": f"{base_url}/measures/{c.record.id}"}
                    for c in digest.changes[:limit]],
        "changes_more": max(len(digest.changes) - limit, 0),
        "areas": [_counts_row(k, c) for k, c in digest.stats.by_area.items()][:limit],
        "units": [_counts_row(k, c) for k, c in digest.stats.by_unit.items()][:limit],
        "leaders": leaders[:limit] if digest.scope.whole else [],
        "text_chart": text_bars(bars),
        "chart_src": chart_src,
        "chart_width": WIDTH_PX,
        "chart_alt": chart.alt if chart else "",
        "chart_legend": legend_note(chart, bars) if chart else [],
        "home": f"{base_url}/my",
        "base_url": base_url,
    }


def markdown_for(digest: Digest, base_url: str, *, name: str,
                 limit_bytes: int = MARKDOWN_LIMIT) -> str:
    """The WeCom markdown version, cut to fewer items until it fits ``limit_bytes``."""
    template = TEMPLATES.get_template("digest.md")
    for limit in (LIST_LIMIT, 15, 10, 5, 3, 1, 0):
        text = template.render(context(digest, base_url, name=name, limit=limit))
        if len(text.encode("utf-8")) <= limit_bytes:
            return text
    return text.encode("utf-8")[:limit_bytes].decode("utf-8", "ignore")


def render_digest(digest: Digest, base_url: str, *, name: str, inline: bool = True,
                  chart: bool = True) -> DigestRendering:
    """HTML, text and markdown. ``inline``: the chart as ``cid:`` (mail) or else a data URI
    (a standalone file)."""
    drawn = progress_chart(bars_for(digest)) if chart and bars_for(digest) else None
    src = None
    if drawn is not None:
        src = (f"cid:{CHART_CID}" if inline
               else "data:image/png;base64," + base64.b64encode(drawn.png).decode())
    ctx = context(digest, base_url, name=name, chart=drawn, chart_src=src)
    return DigestRendering(
        subject=ctx["subject"],
        html=TEMPLATES.get_template("digest.html").render(ctx),
        text=TEMPLATES.get_template("digest.txt").render(ctx),
        markdown=markdown_for(digest, base_url, name=name),
        chart=drawn)


def _calendar_from_payload(session: Session, raw: dict[str, bool]) -> WorkdayIndex:
    overrides = {date.fromisoformat(k): (bool(v), "") for k, v in raw.items()}
    return WorkdayIndex(load_calendar(session, overrides).is_workday)


RANKING_COLUMNS = (("rank", "排名"), ("inspected_unit", "被巡察单位"), ("total", "措施"),
                   ("closed", "已销号"), ("overdue", "逾期"), ("completion_rate", "完成率"),
                   ("on_time_rate", "按期完成率"), ("urges", "催办"), ("relapses", "回头看反弹"))


def _cell(key: str, value: Any) -> str:
    if key in ("completion_rate", "on_time_rate"):
        return "—" if value is None else f"{value * 100:.1f}%"
    return str(value)


def render_ranking(rows: list[dict[str, Any]], *, name: str, as_of: datetime,
                   base_url: str) -> tuple[str, str, str]:
    """The 巡察办's ranking of the inspected units as (html, text, markdown); unit names are
    user text, escaped in the HTML."""
    day = as_of.astimezone(SHANGHAI)
    head = (f"{name}：截至{day.year}年{day.month}月{day.day}日，各被巡察单位整改进展排名如下"
            "（按完成率，逾期少者在前）。")
    header = [label for _, label in RANKING_COLUMNS]
    cells = [[_cell(key, row.get(key)) for key, _ in RANKING_COLUMNS] for row in rows]
    text_lines = [head, "", "｜".join(header), *("｜".join(c) for c in cells), "",
                  f"详情：{base_url}/api/stats?by=inspected_unit"]
    md_lines = [f"**{RANKING_SUBJECT_MD}**", head, *(
        f"{c[0]}. {c[1]}：完成率 {c[5]}，逾期 {c[4]}，催办 {c[7]}，反弹 {c[8]}" for c in cells)]
    markdown = "\n".join(md_lines)
    while len(markdown.encode()) > MARKDOWN_LIMIT and len(md_lines) > 3:
        md_lines.pop()
        markdown = "\n".join([*md_lines, "……（其余单位见邮件或系统）"])
    table = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in cells)
    html = (f"<p>{escape(head)}</p><table border=\"1\" cellpadding=\"4\" "
            f"style=\"border-collapse:collapse\"><thead><tr>"
            + "".join(f"<th>{escape(h)}</th>" for h in header)
            + f"</tr></thead><tbody>{table}</tbody></table>"
            f"<p><a href=\"{escape(base_url)}/api/stats?by=inspected_unit\">查看详情</a></p>")
    return html, "\n".join(text_lines), markdown


RANKING_SUBJECT_MD = "各被巡察单位整改进展排名"


def _render_ranking_message(session: Session, message: OutboxMessage,
                            base_url: str) -> Rendered:
    """The 巡察办's ranking digest, worked out at send time over every inspected unit."""
    payload = message.payload
    as_of = datetime.fromisoformat(payload["as_of"])
    days = _calendar_from_payload(session, payload.get("calendar") or {})
    today = as_of.astimezone(SHANGHAI).date()
    rows = Figures(session, None, bounds(today, days, stagnation=int(payload.get("stagnation", 10)))
                   ).rows("inspected_unit")
    person = session.get(Person, message.recipient_id) if message.recipient_id else None
    name = payload.get("name") or (person.name if person else message.recipient)
    html, text, markdown = render_ranking(rows, name=str(name), as_of=as_of, base_url=base_url)
    return Rendered(
        message_id=message.id, key=message.key, channel=message.channel,
        recipient=message.recipient, recipient_name=str(name),
        wecom_id=person.wecom_id if person else None, subject=message.subject,
        text=text, html=html, markdown=markdown, url=f"{base_url}/my",
        created_at=message.created_at, extra={})


@dataclass
class _Read:
    """The snapshots of one campaign as of one moment, the calendar they are counted with, and
    the digests built from them so far (by scope, the latest last)."""

    inputs: DigestInputs
    days: WorkdayIndex
    stagnation: int
    read_at: float
    built: OrderedDict[Scope, Digest] = field(default_factory=OrderedDict)


class DigestCache:
    """The week's digests as a deliverer renders them, cut from one read of their campaign.

    Every reader's digest of a week is built from the same two snapshots of the campaign as of
    the same moment. Read again for each message, they cost a campaign of 100,000 measures
    seconds a message, and its thousand readers most of an hour. A moment past stays what it
    was (history is only added to, and a snapshot rewinds what came after it), so the snapshots
    read for the first message serve the others, and a reader's mail and WeCom message share
    one digest. A read is used for ``max_age`` at most: what a snapshot does not rewind (a
    title edited, a holiday entered since) shows in digests rendered after that. Only the last
    ``size`` reads are kept: the snapshots of 100,000 measures take tens of MB."""

    def __init__(self, *, size: int = 2, max_age: timedelta = timedelta(minutes=10),
                 scopes: int = 16, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.max_age = max_age.total_seconds()
        self.scopes = scopes
        self.clock = clock
        self.reads = 0  # how many times the snapshots were read (for tests and the benchmark)
        self._reads: OrderedDict[tuple[Any, ...], _Read] = OrderedDict()
        self._lock = threading.Lock()  # one read per moment, even if renderers share the cache

    def digest(self, session: Session, payload: Mapping[str, Any]) -> Digest:
        """The digest a ``digest`` outbox row's payload asks for (campaign, moment, scope,
        calendar and stagnation rule), read in ``session`` when not read already."""
        as_of = datetime.fromisoformat(payload["as_of"])
        calendar = payload.get("calendar") or {}
        stagnation = int(payload.get("stagnation", 10))
        key = (payload.get("campaign_id"), as_of, stagnation,
               json.dumps(calendar, sort_keys=True))
        scope = Scope.from_json(payload.get("scope", {}))
        with self._lock:
            read = self._reads.get(key)
            if read is None or self.clock() - read.read_at > self.max_age:
                read = _Read(load_inputs(session, payload.get("campaign_id"), as_of),
                             _calendar_from_payload(session, calendar), stagnation,
                             self.clock())
                self.reads += 1
                self._reads[key] = read
            self._reads.move_to_end(key)
            while len(self._reads) > self.size:
                self._reads.popitem(last=False)
            return self._built(read, scope)

    def _built(self, read: _Read, scope: Scope) -> Digest:
        digest = read.built.get(scope)
        if digest is None:
            digest = read.built[scope] = read.inputs.digest(scope, read.days,
                                                            stagnation=read.stagnation)
            while len(read.built) > self.scopes:
                read.built.popitem(last=False)
        read.built.move_to_end(scope)
        return digest


def render_digest_message(session: Session, message: OutboxMessage, base_url: str,
                          digests: DigestCache | None = None) -> Rendered:
    """Render a ``digest`` outbox row at send time from its payload (campaign, scope, as_of):
    the snapshot is rebuilt as of that moment, so a late send says what was true then.
    ``digests``: the snapshots and digests read already for the rows rendered before."""
    payload = message.payload
    if payload.get("ranking"):
        return _render_ranking_message(session, message, base_url)
    digest = (digests or DigestCache()).digest(session, payload)
    person = session.get(Person, message.recipient_id) if message.recipient_id else None
    name = payload.get("name") or (person.name if person else message.recipient)
    wants_chart = message.channel in (ChannelName.EMAIL, ChannelName.FILE)
    shown = render_digest(digest, base_url, name=name, inline=True, chart=wants_chart)
    extra: dict[str, Any] = {}
    if shown.chart is not None:
        extra["inline_images"] = [(CHART_CID, shown.chart.png, "image/png")]
    return Rendered(
        message_id=message.id, key=message.key, channel=message.channel,
        recipient=message.recipient, recipient_name=str(name),
        wecom_id=person.wecom_id if person else None, subject=message.subject,
        text=shown.text, html=shown.html, markdown=shown.markdown,
        url=f"{base_url}/my", created_at=message.created_at, extra=extra)

