"""Writing a parsed report into the ledger: areas, problems (sub-problems through ``parent_id``),
measures with their first history rows, and progress reports, in bulk and in the caller's
transaction (nothing here commits).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from workflow import events
from workflow.errors import InputError
from workflow.history import GENESIS
from workflow.importers.report.numbering import normalize
from workflow.importers.report.parsed import ParsedArea, ParsedMeasure, ParsedProblem, ParsedReport
from workflow.lifecycle import SystemAction
from workflow.models import Area, Campaign, HistoryEntry, Measure, Problem, ProgressReport
from workflow.services.measures import new_history_entry
from workflow.timeutil import SHANGHAI, as_utc

# ---------------------------------------------------------------- when progress was reported

_DATE = re.compile(r"(?:(?P<y>\d{4})\s*年\s*)?(?P<m>\d{1,2})\s*月(?:\s*(?P<d>\d{1,2})\s*[日号])?"
                   r"|(?P<y2>\d{4})[-./](?P<m2>\d{1,2})[-./](?P<d2>\d{1,2})")


def latest_date(text: str, *, not_after: datetime) -> datetime | None:
    """The latest date written in ``text`` (2024年8月 → 1 August 2024, 00:00 in Beijing), as
    aware UTC. A month without a year takes the year written before it; dates after
    ``not_after`` are plans, not progress, and are ignored."""
    year: int | None = None
    latest: datetime | None = None
    limit = as_utc(not_after)
    for match in _DATE.finditer(normalize(text)):
        if match.group("y2"):
            y, m, d = int(match.group("y2")), int(match.group("m2")), int(match.group("d2"))
        else:
            if match.group("y"):
                year = int(match.group("y"))
            if year is None:
                continue
            y, m, d = year, int(match.group("m")), int(match.group("d") or 1)
        year = y
        try:
            moment = as_utc(datetime(y, m, d, tzinfo=SHANGHAI))
        except ValueError:
            continue
        if moment <= limit and (latest is None or moment > latest):
            latest = moment
    return latest


# ---------------------------------------------------------------- the rows


def campaign_by_title(session: Session, title: str, *, now: datetime,
                      create: bool) -> Campaign | None:
    """The campaign of that title; a new one when there is none and ``create`` is set."""
    title = title.strip()
    if not title:
        raise InputError("整改任务名称不能为空（--campaign）", field="campaign")
    campaign = session.scalar(select(Campaign).where(Campaign.title == title))
    if campaign is None and create:
        campaign = Campaign(title=title, created_at=now)
        session.add(campaign)
        session.flush()
    return campaign


@dataclass
class _PendingMeasure:
    """A measure to insert once its problem is written: ``problem_key`` is ``id()`` of the
    parsed problem."""

    measure: ParsedMeasure
    problem_key: int
    seq: str


def write_report(session: Session, campaign: Campaign, report: ParsedReport, now: datetime,
                 *, source: str) -> None:
    """Insert areas, problems (level by level, sub-problems through ``parent_id``), measures,
    their first history rows and progress reports in bulk; the campaign keeps how the document
    counts its results, for the report written back."""
    counting = report.counting()
    if counting is not None:
        campaign.counting = counting.as_json()
    area_ids, area_numbers = _write_areas(session, campaign, report.areas)
    taken = {s for s in session.scalars(select(Measure.seq).where(
        Measure.campaign_id == campaign.id)) if s}
    problem_ids, pending = _write_problems(session, report.areas, area_ids, area_numbers, taken)
    start = session.scalar(select(func.max(Measure.position)).where(
        Measure.campaign_id == campaign.id)) or 0
    values = []
    for offset, item in enumerate(pending, start=1):
        m = item.measure
        at = [latest_date(text, not_after=now) or now for text in m.progress]
        values.append({
            "campaign_id": campaign.id, "problem_id": problem_ids[item.problem_key],
            "position": start + offset, "seq": item.seq, "title": m.title, "kind": m.kind.value,
            "state": m.state.value, "deadline": None, "original_deadline": None, "owner_id": None,
            "leader_id": None, "unit_id": None, "version": 1, "created_at": now,
            "state_changed_at": now, "last_progress_at": max(at) if at else None})
    measure_ids = session.scalars(
        insert(Measure).returning(Measure.id, sort_by_parameter_order=True), values).all()
    session.execute(insert(HistoryEntry), [
        new_history_entry(measure_id=mid, seq=1, action=SystemAction.IMPORT.value, from_state=None,
                          to_state=item.measure.state.value, actor_id=None, on_behalf_of_id=None,
                          comment=f"从 {source} 导入", data=_history_data(item, source), at=now,
                          prev_hash=GENESIS)
        for mid, item in zip(measure_ids, pending, strict=True)])
    progress = [{"measure_id": mid, "author_id": None, "text": text,
                 "at": latest_date(text, not_after=now) or now}
                for mid, item in zip(measure_ids, pending, strict=True)
                for text in item.measure.progress]
    if progress:
        session.execute(insert(ProgressReport), progress)
    events.publish(session, [
        events.MeasureChanged(measure_id=mid, action=SystemAction.IMPORT.value, from_state=None,
                              to_state=item.measure.state.value, actor_id=None,
                              on_behalf_of_id=None, at=now)
        for mid, item in zip(measure_ids, pending, strict=True)])


def _history_data(item: _PendingMeasure, source: str) -> dict[str, Any]:
    data: dict[str, Any] = {"source": source, "line": item.measure.line}
    if item.measure.result_text:
        data["result"] = item.measure.result_text
    if item.measure.fields:
        data["fields"] = dict(item.measure.fields)
    return data


def _write_areas(session: Session, campaign: Campaign,
                 areas: Sequence[ParsedArea]) -> tuple[dict[str, int], dict[str, int]]:
    """Area ids and 1-based numbers by title; existing areas of the campaign are reused."""
    ids: dict[str, int] = {}
    numbers: dict[str, int] = {}
    for row in session.scalars(select(Area).where(Area.campaign_id == campaign.id)):
        ids[row.title], numbers[row.title] = row.id, row.position + 1
    next_position = max(numbers.values(), default=0)
    new: list[dict[str, Any]] = []
    for area in areas:
        if area.title not in ids:
            numbers[area.title] = next_position + 1
            new.append({"campaign_id": campaign.id, "position": next_position,
                        "title": area.title})
            ids[area.title] = -1
            next_position += 1
    if new:
        created = session.scalars(insert(Area).returning(Area.id, sort_by_parameter_order=True),
                                  new).all()
        for values, new_id in zip(new, created, strict=True):
            ids[values["title"]] = new_id
    return ids, numbers


def _write_problems(session: Session, areas: Sequence[ParsedArea], area_ids: Mapping[str, int],
                    area_numbers: Mapping[str, int],
                    taken: set[str]) -> tuple[dict[int, int], list[_PendingMeasure]]:
    """Insert problems depth by depth (a parent's id is known before its children are written);
    return problem ids by ``id(parsed problem)`` and the measures to write, each with a seq
    such as "2.1.3" (area.problem.sub-problem), unique in the campaign."""
    existing = dict(session.execute(
        select(Problem.area_id, func.count()).where(
            Problem.area_id.in_([i for i in area_ids.values() if i > 0]),
            Problem.parent_id.is_(None)).group_by(Problem.area_id)).all())
    level: list[tuple[ParsedProblem, int, int | None, str, int]] = []
    used: dict[int, int] = {}
    for area in areas:
        area_id = area_ids[area.title]
        for problem in area.problems:
            used[area_id] = used.get(area_id, existing.get(area_id, 0)) + 1
            level.append((problem, area_id, None, f"{area_numbers[area.title]}.{used[area_id]}",
                          used[area_id] - 1))
    ids: dict[int, int] = {}
    pending: list[_PendingMeasure] = []
    while level:
        rows = [{"area_id": area_id, "parent_id": ids[parent] if parent is not None else None,
                 "position": position, "text": problem.text}
                for problem, area_id, parent, _seq, position in level]
        created = session.scalars(
            insert(Problem).returning(Problem.id, sort_by_parameter_order=True), rows).all()
        following: list[tuple[ParsedProblem, int, int | None, str, int]] = []
        for (problem, area_id, _parent, seq, _position), new_id in zip(level, created, strict=True):
            ids[id(problem)] = new_id
            for index, child in enumerate(problem.children):
                following.append((child, area_id, id(problem), f"{seq}.{index + 1}", index))
            many = len(problem.measures) > 1
            for index, measure in enumerate(problem.measures):
                measure_seq = _unique(f"{seq}.{index + 1}" if many else seq, taken)
                pending.append(_PendingMeasure(measure, id(problem), measure_seq))
        level = following
    pending.sort(key=lambda p: p.measure.line)
    return ids, pending


def _unique(seq: str, taken: set[str]) -> str:
    candidate, n = seq, 1
    while candidate in taken:
        n += 1
        candidate = f"{seq}-{n}"
    taken.add(candidate)
    return candidate
