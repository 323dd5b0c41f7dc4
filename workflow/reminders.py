"""Reminder planning: which notices are due for one measure at ``now``, and when to look again.

Pure: no I/O. The sweep (workflow/services/sweep.py) feeds it snapshots and writes what it
returns. Each notice has a stage key that names it for good (rule, its anchor and the deadline it
was computed for), so a notice planned twice is written once, and a changed deadline gives new
keys: the stages are re-planned.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

from workflow.lifecycle import OPEN_STATES, Kind, Relation, Rule, State, rule_family
from workflow.policy import Policy
from workflow.timeutil import SHANGHAI, local_date

#: Urgency groups, most urgent first; messages list items in this order. An item's group is
#: worked out from its rule and the measure's deadline (``urgency_of``), so it matches its name.
URGENCY_LABELS = {
    0: "严重逾期（红牌）",
    1: "已逾期（黄牌）",
    2: "今明两天到期",
    3: "即将到期",
    4: "立行立改",
    5: "等待审核/销号",
    6: "进展停滞",
    7: "定期报送",
    8: "回头看",
}
WEEKDAY_LABELS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


def day_text(day: date, *, bracketed: bool = True) -> str:
    """A date as messages show it beside a count of working days: ``2026-12-04（周五）``, or
    ``2026-12-04 周五`` inside brackets already."""
    weekday = WEEKDAY_LABELS[day.weekday()]
    return f"{day.isoformat()}（{weekday}）" if bracketed else f"{day.isoformat()} {weekday}"


class WorkdayIndex:
    """Fast working-day arithmetic over an ``is_workday`` function, one year at a time."""

    def __init__(self, is_workday: Callable[[date], bool]) -> None:
        self._is_workday = is_workday
        self._years: dict[int, list[int]] = {}

    def is_workday(self, day: date) -> bool:
        ordinals = self._year(day.year)
        i = bisect.bisect_left(ordinals, day.toordinal())
        return i < len(ordinals) and ordinals[i] == day.toordinal()

    def _year(self, year: int) -> list[int]:
        found = self._years.get(year)
        if found is None:
            first = date(year, 1, 1).toordinal()
            last = date(year, 12, 31).toordinal()
            found = [o for o in range(first, last + 1)
                     if self._is_workday(date.fromordinal(o))]
            self._years[year] = found
        return found

    def count_between(self, start: date, end: date) -> int:
        """Working days in (start, end]; 0 when end <= start."""
        if end <= start:
            return 0
        total = 0
        for year in range(start.year, end.year + 1):
            ordinals = self._year(year)
            lo = bisect.bisect_right(ordinals, start.toordinal())
            hi = bisect.bisect_right(ordinals, end.toordinal())
            total += hi - lo
        return total

    def nth_after(self, day: date, n: int) -> date:
        """The n-th working day strictly after ``day`` (n >= 1)."""
        year = day.year
        ordinals = self._year(year)
        i = bisect.bisect_right(ordinals, day.toordinal()) + n - 1
        while i >= len(ordinals):
            i -= len(ordinals)
            year += 1
            ordinals = self._year(year)
        return date.fromordinal(ordinals[i])

    def nth_before(self, day: date, n: int) -> date:
        """The n-th working day strictly before ``day`` (n >= 1)."""
        year = day.year
        ordinals = self._year(year)
        i = bisect.bisect_left(ordinals, day.toordinal()) - n
        while i < 0:
            year -= 1
            ordinals = self._year(year)
            i += len(ordinals)
        return date.fromordinal(ordinals[i])

    def before_deadline(self, deadline: date, n: int) -> date:
        """The day of a ``before:n`` reminder: ``n`` working days before the deadline's last
        working day (the deadline, or the last working day before it when it is not one), so
        ``before:0`` and ``before:1`` never fall on the same day."""
        last = self.on_or_before(deadline)
        return last if n == 0 else self.nth_before(last, n)

    def left_until(self, today: date, deadline: date) -> int:
        """Working days left before the deadline's last working day (0 on that day)."""
        return self.count_between(today, self.on_or_before(deadline))

    def on_or_before(self, day: date) -> date:
        return day if self.is_workday(day) else self.nth_before(day, 1)

    def on_or_after(self, day: date) -> date:
        return day if self.is_workday(day) else self.nth_after(day, 1)


@dataclass(frozen=True)
class MeasureSnapshot:
    """What the planner needs to know of one measure. Its times are local (Asia/Shanghai)
    dates: the planner counts working days and never looks at the hour."""

    id: int
    state: State
    kind: Kind
    deadline: date | None
    created_on: date
    changed_on: date
    progress_on: date | None
    #: the day of the last 回头看 (recheck), if any
    rechecked_on: date | None = None

    @property
    def active_on(self) -> date:
        """The last day something happened: a progress report or a change of state."""
        return max(self.progress_on, self.changed_on) if self.progress_on else self.changed_on


@dataclass(frozen=True)
class Notice:
    """One thing someone should be told about one measure."""

    measure_id: int
    rule: str            # before:N, overdue:N, review_sla, closure_sla, stagnation, checkin, nudge
    stage: str           # the rule with its anchor; part of the idempotency key
    to: tuple[Relation, ...]  # whom: owner, leader, first_responsible, reviewer
    urgency: int
    due_at: datetime
    deadline: date | None
    colour: str | None = None


@dataclass(frozen=True)
class Plan:
    notices: tuple[Notice, ...]
    next_at: datetime | None


@dataclass(frozen=True)
class _Stage:
    day: date
    rule: str
    stage: str
    to: tuple[Relation, ...]
    urgency: int
    colour: str | None = None


class Planner:
    """Plans notices for measures under a policy and a working-day calendar."""

    def urgency(self, rule: str, colour: str | None, deadline: date | None, today: date) -> int:
        """``urgency_of`` with this planner's calendar."""
        return urgency_of(rule, colour, deadline, today, self.days)

    def __init__(self, workdays: WorkdayIndex) -> None:
        self.days = workdays
        # window_open is called for every stage of every measure; a sweep sees few distinct days
        self._openings: dict[tuple[date, time], datetime] = {}
        self._plans: dict[tuple[object, ...], Plan] = {}
        self._reasons: dict[tuple[object, ...], str] = {}

    # -------------------------------------------------------------- time of day

    def window_open(self, day: date, policy: Policy) -> datetime:
        """When messages of ``day`` may go out: the send window's start, as aware UTC."""
        key = (day, policy.window_start)
        found = self._openings.get(key)
        if found is None:
            local = datetime.combine(day, policy.window_start, tzinfo=SHANGHAI)
            found = self._openings[key] = local.astimezone(UTC)
        return found

    def next_send_time(self, now: datetime, policy: Policy) -> datetime:
        """``now`` if inside the send window, else the next window's opening."""
        local = now.astimezone(SHANGHAI)
        day = local.date()
        allowed = (not policy.window_working_days_only) or self.days.is_workday(day)
        if allowed and policy.window_start <= local.time() < policy.window_end:
            return now
        if allowed and local.time() < policy.window_start:
            return self.window_open(day, policy)
        following = (self.days.nth_after(day, 1) if policy.window_working_days_only
                     else day + timedelta(days=1))
        return self.window_open(following, policy)

    # -------------------------------------------------------------- stages

    def effective_deadline(self, m: MeasureSnapshot, policy: Policy) -> date | None:
        if m.deadline is not None:
            return m.deadline
        if m.kind is Kind.IMMEDIATE:
            return self.days.nth_after(m.created_on, max(policy.immediate_default_deadline, 1))
        return None

    def _deadline_stages(self, m: MeasureSnapshot, policy: Policy, today: date,
                         deadline: date) -> list[_Stage]:
        """Before-deadline reminders, escalations after it, and 立行立改 daily nudges."""
        tag = deadline.isoformat()
        stages: list[_Stage] = []
        steps = sorted(set(policy.before) | {w.within for w in policy.warnings}, reverse=True)
        for n in steps:
            day = self.days.before_deadline(deadline, n)
            rule = Rule.BEFORE.at(n)
            to, colour = warning_for(policy, n)
            stages.append(_Stage(day, rule, f"{rule}@{tag}", to,
                                 urgency_of(rule, None, deadline, day, self.days), colour))
        if m.kind is Kind.IMMEDIATE and policy.daily_nudge:
            last_day = self.days.on_or_before(deadline)
            for offset in (0, 1):  # today's and tomorrow's nudge, if before the deadline
                day = self.days.on_or_after(today) if offset == 0 else self.days.nth_after(today, 1)
                if day < last_day:
                    stages.append(_Stage(day, Rule.NUDGE, f"{Rule.NUDGE}@{day.isoformat()}",
                                         (Relation.OWNER,),
                                         urgency_of(Rule.NUDGE, None, deadline, day, self.days)))
        overdue_now = self.days.count_between(deadline, today)
        last = policy.escalation[-1]
        for step in policy.escalation:
            stages.append(self._overdue_stage(deadline, step.overdue, step.to, step.colour, tag))
        if overdue_now >= last.overdue:
            # the repeat that is due (or the last step), and the next one
            k = (overdue_now - last.overdue) // policy.repeat_every
            for j in (k, k + 1):
                n = last.overdue + j * policy.repeat_every
                stages.append(self._overdue_stage(deadline, n, last.to, last.colour, tag))
        return stages

    def _overdue_stage(self, deadline: date, n: int, to: tuple[Relation, ...], colour: str,
                       tag: str) -> _Stage:
        rule = Rule.OVERDUE.at(n)
        return _Stage(self.days.nth_after(deadline, n), rule, f"{rule}@{tag}",
                      to, 0 if colour == "red" else 1, colour)

    def _repeating(self, anchor: date, every: int, today: date, rule: Rule,
                   to: tuple[Relation, ...], urgency: int) -> list[_Stage]:
        """A stage every ``every`` working days after ``anchor``: the last due and the next."""
        elapsed = self.days.count_between(anchor, today)
        k = max(elapsed // every, 1)
        stages = []
        for j in (k, k + 1):
            day = self.days.nth_after(anchor, j * every)
            stages.append(_Stage(day, rule, f"{rule}:{j}@{anchor.isoformat()}", to, urgency))
        return stages

    def _checkins(self, since: date, today: date, months: int) -> list[_Stage]:
        """First working day of every ``months``-th month after ``since``: last due and next."""
        def month_start(index: int) -> date:
            return date(index // 12, index % 12 + 1, 1)

        first = since.year * 12 + since.month - 1 + months
        current = today.year * 12 + today.month - 1
        k = max((current - first) // months, 0)
        stages = []
        for j in (k, k + 1):
            start = month_start(first + j * months)
            stages.append(_Stage(self.days.on_or_after(start), Rule.CHECKIN,
                                 f"{Rule.CHECKIN}@{start:%Y-%m}", (Relation.OWNER,), 7))
        return stages

    def stages(self, m: MeasureSnapshot, policy: Policy, today: date) -> list[list[_Stage]]:
        """Stage families for the measure's current state; one notice per family at most."""
        families: list[list[_Stage]] = []
        changed = m.changed_on
        if m.state in OPEN_STATES:
            deadline = self.effective_deadline(m, policy)
            if deadline is not None:
                families.append(self._deadline_stages(m, policy, today, deadline))
            families.append(self._repeating(m.active_on, policy.stagnation, today,
                                            Rule.STAGNATION, (Relation.OWNER,), 6))
        elif m.state is State.SUBMITTED:
            families.append(self._repeating(changed, policy.review_sla, today, Rule.REVIEW_SLA,
                                            (Relation.REVIEWER,), 5))
        elif m.state is State.VERIFIED:
            families.append(self._repeating(changed, policy.closure_sla, today,
                                            Rule.CLOSURE_SLA, (Relation.LEADER,), 5))
        if m.kind is Kind.LONG_TERM and m.state in (State.VERIFIED, State.CLOSED):
            families.append(self._checkins(changed, today, policy.checkin_months))
        if m.state is State.CLOSED and policy.followup_months > 0 and (
                m.rechecked_on is None or m.rechecked_on < changed):
            families.append([self._followup(changed, policy.followup_months)])
        return families

    def _followup(self, closed_on: date, months: int) -> _Stage:
        """The 回头看 of a measure closed on ``closed_on``: ``followup_day``, or the first
        working day after it."""
        due = followup_day(closed_on, months)
        return _Stage(self.days.on_or_after(due), Rule.FOLLOWUP,
                      f"{Rule.FOLLOWUP}@{closed_on.isoformat()}", (Relation.REVIEWER,), 8)

    def plan(self, m: MeasureSnapshot, policy: Policy, now: datetime) -> Plan:
        """The latest due notice of each family, and when the next one falls due."""
        shared = self.shared_plan(m, policy, now)
        if not shared.notices:
            return shared
        return Plan(tuple(replace(n, measure_id=m.id) for n in shared.notices), shared.next_at)

    def shared_plan(self, m: MeasureSnapshot, policy: Policy, now: datetime) -> Plan:
        """``plan`` with ``measure_id`` 0 in its notices: the same object for every measure
        that shares the dates. A plan depends only on dates, so a burst of thousands due on the
        same deadline is planned once."""
        key = (m.state, m.kind, m.deadline, m.created_on, m.changed_on, m.progress_on,
               m.rechecked_on, policy, now)
        found = self._plans.get(key)
        if found is None:
            found = self._plan(replace(m, id=0), policy, now)
            if len(self._plans) > 100_000:
                self._plans.clear()
            self._plans[key] = found
        return found

    def reason(self, notice: Notice, now: datetime, anchor: date | None) -> str:
        """``describe`` for a notice, remembered: many items share the same sentence."""
        key = (notice.rule, notice.deadline, notice.colour, anchor, now)
        found = self._reasons.get(key)
        if found is None:
            found = self._reasons[key] = describe(notice, now, self.days, anchor)
        return found

    def _plan(self, m: MeasureSnapshot, policy: Policy, now: datetime) -> Plan:
        today = local_date(now)
        notices: list[Notice] = []
        upcoming: list[datetime] = []
        deadline = self.effective_deadline(m, policy)
        for family in self.stages(m, policy, today):
            opens = [self.window_open(s.day, policy) for s in family]
            due = [s for s, at in zip(family, opens, strict=True) if at <= now]
            if due:
                s = max(due, key=lambda s: (s.day, -s.urgency))
                # the rule as a plain str, not a Rule member: an enum member is an object the
                # cyclic collector tracks, and so is every outbox payload dict holding one
                notices.append(Notice(m.id, str(s.rule), s.stage, s.to, s.urgency,
                                      self.window_open(s.day, policy), deadline, s.colour))
            upcoming.extend(t for t in opens if t > now)
        return Plan(tuple(notices), min(upcoming) if upcoming else None)


def followup_day(closed_on: date, months: int) -> date:
    """The day a measure closed on ``closed_on`` comes up for its 回头看: ``months`` later, the
    same day of the month (or the month's last day)."""
    index = closed_on.year * 12 + closed_on.month - 1 + months
    year, month = divmod(index, 12)
    last_day = (date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month + 1, min(closed_on.day, last_day))


def warning_for(policy: Policy, n: int) -> tuple[tuple[Relation, ...], str | None]:
    """Whom a ``before:n`` reminder goes to and its colour under the policy's 三色预警: the owner
    alone (no colour) unless a warning tier covers ``n`` working days; then the owner and the
    tightest covering tier's people, in its colour."""
    covering = [w for w in policy.warnings if n <= w.within]
    if not covering:
        return (Relation.OWNER,), None
    tightest = min(covering, key=lambda w: w.within)
    people = dict.fromkeys((Relation.OWNER, *(r for w in covering for r in w.to)))
    return tuple(people), tightest.colour


def urgency_of(rule: str, colour: str | None, deadline: date | None, today: date,
               days: WorkdayIndex) -> int:
    """The group an item is listed under (``URGENCY_LABELS``), from its rule and the deadline
    as it stands ``today``: "今明两天到期" only when the deadline's last working day is today or
    the next working day."""
    family = rule_family(rule)
    if family is Rule.OVERDUE:
        return 0 if colour == "red" else 1
    if family in (Rule.BEFORE, Rule.NUDGE) and deadline is not None:
        if days.left_until(today, deadline) <= 1:
            return 2
        return 3 if family is Rule.BEFORE else 4
    return {Rule.REVIEW_SLA: 5, Rule.CLOSURE_SLA: 5, Rule.STAGNATION: 6,
            Rule.CHECKIN: 7, Rule.FOLLOWUP: 8}.get(family, 3) if family is not None else 3


def deadline_text(deadline: date, today: date, days: WorkdayIndex) -> str:
    """How far a deadline is, the one way messages say it too: working days, with the date."""
    if today > deadline:
        return (f"逾期 {days.count_between(deadline, today)} 个工作日"
                f"（时限 {day_text(deadline, bracketed=False)}）")
    left = days.left_until(today, deadline)
    if left == 0:
        return f"今天到期（时限 {day_text(deadline, bracketed=False)}）"
    return f"还有 {left} 个工作日到期（时限 {day_text(deadline, bracketed=False)}）"


WARNING_LABELS = {"yellow": "黄色预警", "red": "红色预警", "green": "绿色"}


def describe(notice: Notice, now: datetime, days: WorkdayIndex, anchor: date | None = None
             ) -> str:
    """Why this notice was sent, in one Chinese sentence ("why you got this"); ``anchor`` is
    the local day the waiting started (submitted, verified, last progress). Every count is of
    working days, with the calendar date beside it."""
    today = local_date(now)
    deadline = notice.deadline
    family = rule_family(notice.rule)
    if family is Rule.BEFORE and deadline is not None:
        last = days.on_or_before(deadline)
        warning = (f"（{WARNING_LABELS[notice.colour]}）"
                   if notice.colour in WARNING_LABELS else "")
        if today >= last and last != deadline:
            return (f"今天是完成时限（{day_text(deadline, bracketed=False)}，非工作日）前的最后一个工作日"
                    f"{warning}")
        if today >= last:
            return f"今天是完成时限（{day_text(deadline, bracketed=False)}）{warning}"
        return (f"距完成时限（{day_text(deadline, bracketed=False)}）还有 {days.left_until(today, deadline)} "
                f"个工作日{warning}")
    if family is Rule.NUDGE and deadline is not None:
        return (f"立行立改事项，完成时限 {day_text(deadline)}，还有 "
                f"{days.left_until(today, deadline)} 个工作日，请尽快完成")
    if family is Rule.OVERDUE and deadline is not None:
        late = days.count_between(deadline, today)
        card = "红牌" if notice.colour == "red" else "黄牌"
        return f"已逾期 {late} 个工作日（{card}督办），完成时限 {day_text(deadline)}"
    since = days.count_between(anchor, today) if anchor is not None else None
    waited = f" {since} 个工作日" if since else ""
    on = f"（自 {day_text(anchor, bracketed=False)} 起）" if anchor is not None else ""
    texts = {
        Rule.REVIEW_SLA: f"已提交{waited}{on}，仍待整改办核验",
        Rule.CLOSURE_SLA: f"已核验通过{waited}{on}，仍待责任领导销号",
        Rule.STAGNATION: f"已{waited or '较长时间'}没有报送整改进展{on}",
        Rule.CHECKIN: f"长期坚持事项，请报送 {today.year}年{today.month}月 的整改进展",
        Rule.FOLLOWUP: (f"已于 {day_text(anchor, bracketed=False)} 销号，请开展回头看，检查整改成效是否巩固"
                        "（rectiflow measure do ID recheck --result ok|relapse）"
                        if anchor is not None else "已销号的措施到期回头看，请检查整改成效是否巩固"),
    }
    return texts.get(family, notice.rule) if family is not None else notice.rule
