"""Statistics over a snapshot of measures: pure functions, no I/O.

A snapshot is a list of :class:`MeasureRecord` as they stood at one moment (now, or any time
reconstructed from the history by ``workflow.services.digest``). Every figure is computed from
the records, the day they are read for (``today``, Asia/Shanghai) and a working-day index.

Definitions (the words of the official reports in brackets):

- **completed** (已销号): state ``closed``, any kind. ``completion_rate`` = completed / total,
  as design.md's ``digest --json`` contract says.
- **long_term** (长期坚持 / 长期建设): a 长期坚持 measure that is ``verified`` or ``closed``: the
  work is done and now goes on ("基本完成，长期坚持").
- **finished** (整改完成, 整改结果「完成」): ``closed`` and not 长期坚持. finished, long_term and
  unfinished split the measures without overlap, as the reports count "已完成26项；长期建设3项".
- **unfinished** (暂未完成): every other measure.
- **overdue** (逾期): the owner still has work (``assigned``/``in_progress``) and the deadline
  has passed — the same rule as ``measure list --overdue``; ``overdue_days`` counts the working
  days after the deadline up to today (a holiday in between does not count).
- **due_soon** (即将到期): owner still has work, the deadline is today or within the next
  ``due_window`` (7) working days.
- **stagnating** (进展停滞): owner still has work, and neither a progress report nor a state
  change for ``stagnation`` (10) or more working days — the reminder planner's rule.
- **on-time rate** (按期完成率): of the measures with an original deadline (the one in the
  ledger before any 延期) that has passed or that are completed, the share signed off on or
  before that original deadline. ``None`` when no measure is due yet.
- **week-on-week**: the same counts a week earlier, and the difference.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar

from workflow.lifecycle import OPEN_STATES, STATE_LABELS, Kind, State
from workflow.reminders import WorkdayIndex
from workflow.timeutil import SHANGHAI, local_date

DUE_WINDOW = 7
STAGNATION = 10


class MeasureRecord(NamedTuple):
    """One measure as it stood at the snapshot's moment. A named tuple: immutable like a frozen
    dataclass, and made about six times faster (a frozen dataclass sets each of its 19 fields
    through ``object.__setattr__``), which counts when a snapshot holds 100,000 of them. Copy
    with a change through ``record._replace(...)``."""

    id: int
    campaign_id: int
    seq: str | None
    area: str
    problem: str
    title: str
    kind: Kind
    state: State
    deadline: date | None
    original_deadline: date | None
    owner_id: int | None
    leader_id: int | None
    unit: str | None
    created_at: datetime
    state_changed_at: datetime
    last_progress_at: datetime | None = None
    closed_at: datetime | None = None
    area_position: int = 0
    problem_id: int = 0

    @property
    def result_label(self) -> str:
        """整改结果 in the reports' words."""
        if is_finished(self.state, self.kind):
            return "完成"
        if is_long_term_done(self.state, self.kind):
            return "基本完成，长期坚持"
        return "暂未完成"


def is_completed(state: State, kind: Kind) -> bool:
    """已销号: closed, any kind."""
    return state is State.CLOSED


def is_finished(state: State, kind: Kind) -> bool:
    """整改完成: closed and not 长期坚持."""
    return state is State.CLOSED and kind is not Kind.LONG_TERM


def is_long_term_done(state: State, kind: Kind) -> bool:
    """长期坚持: a 长期坚持 measure whose work is done and now goes on."""
    return kind is Kind.LONG_TERM and state in (State.VERIFIED, State.CLOSED)


# ------------------------------------------------------------------ flag codes

# What one record adds to the counts is packed in one int, its *flag code*: the bits below say
# yes or no, the bits from ``_PAIR_SHIFT`` up which (state, kind) pair the record has. A
# campaign of 100,000 measures has only a few hundred distinct codes, so the counts are made by
# counting codes (a ``Counter`` of small ints) and adding each distinct code once, ``n`` times.
COMPLETED = 1 << 0
FINISHED = 1 << 1
LONG_TERM = 1 << 2
OVERDUE = 1 << 3
DUE_SOON = 1 << 4
STAGNATING = 1 << 5
ON_TIME_DUE = 1 << 6    # counts in the on-time rate's denominator
ON_TIME = 1 << 7        # signed off by the original deadline
_PAIR_SHIFT = 8
#: (state, kind) values by their number in a flag code.
_PAIRS: tuple[tuple[str, str], ...] = tuple((s.value, k.value) for s in State for k in Kind)


def _pair_code(state: State, kind: Kind) -> int:
    """The part of a flag code that a record's state and kind decide."""
    code = _PAIRS.index((state.value, kind.value)) << _PAIR_SHIFT
    if is_completed(state, kind):
        code |= COMPLETED
    if is_finished(state, kind):
        code |= FINISHED
    if is_long_term_done(state, kind):
        code |= LONG_TERM
    return code


# keyed by the values (str hashes are cached; an Enum member's hash is a Python call)
_PAIR_CODES = {s.value: {k.value: _pair_code(s, k) for k in Kind} for s in State}
_OPEN_VALUES = frozenset(s.value for s in OPEN_STATES)
_STATE_VALUES = tuple(s.value for s in State)  # iterating an Enum is a Python call per member
_KIND_VALUES = tuple(k.value for k in Kind)


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


@dataclass
class Counts:
    """The figures for one group of measures (a campaign, an area, a unit, a leader)."""

    total: int = 0
    by_state: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_STATE_VALUES, 0))
    by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_KIND_VALUES, 0))
    completed: int = 0
    finished: int = 0
    long_term: int = 0
    overdue: int = 0
    due_soon: int = 0
    stagnating: int = 0
    on_time_due: int = 0
    on_time: int = 0

    def add(self, code: int, n: int = 1) -> None:
        """Count ``n`` measures that share the flag ``code``."""
        state, kind = _PAIRS[code >> _PAIR_SHIFT]
        self.add_tally(state, kind, n, overdue=n if code & OVERDUE else 0,
                       due_soon=n if code & DUE_SOON else 0,
                       stagnating=n if code & STAGNATING else 0,
                       on_time_due=n if code & ON_TIME_DUE else 0,
                       on_time=n if code & ON_TIME else 0)

    def add_tally(self, state: str, kind: str, n: int, *, overdue: int, due_soon: int,
                  stagnating: int, on_time_due: int, on_time: int) -> None:
        """Count ``n`` measures of one (state, kind) counted elsewhere (in SQL, by the rules of
        :meth:`Reading.facts` over :func:`bounds`): the numbers among them flagged each way."""
        pair = _PAIR_CODES[state][kind]
        self.total += n
        self.by_state[state] += n
        self.by_kind[kind] += n
        self.completed += n if pair & COMPLETED else 0
        self.finished += n if pair & FINISHED else 0
        self.long_term += n if pair & LONG_TERM else 0
        self.overdue += overdue
        self.due_soon += due_soon
        self.stagnating += stagnating
        self.on_time_due += on_time_due
        self.on_time += on_time

    def merge(self, other: Counts) -> None:
        """Add ``other``'s measures to these."""
        self.total += other.total
        for state, n in other.by_state.items():
            self.by_state[state] += n
        for kind, n in other.by_kind.items():
            self.by_kind[kind] += n
        for name in ("completed", "finished", "long_term", "overdue", "due_soon", "stagnating",
                     "on_time_due", "on_time"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @classmethod
    def of(cls, codes: Iterable[int]) -> Counts:
        """The counts of the records whose flag codes are ``codes``."""
        counts = cls()
        for code, n in Counter(codes).items():
            counts.add(code, n)
        return counts

    @property
    def unfinished(self) -> int:
        return self.total - self.finished - self.long_term

    @property
    def completion_rate(self) -> float:
        """Closed share of all measures, 0..1."""
        return _rate(self.completed, self.total)

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.on_time_due if self.on_time_due else None

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_state": dict(self.by_state),
            "by_kind": dict(self.by_kind),
            "completed": self.completed,
            "finished": self.finished,
            "long_term": self.long_term,
            "unfinished": self.unfinished,
            "overdue": self.overdue,
            "due_soon": self.due_soon,
            "stagnating": self.stagnating,
            "completion_rate": round(self.completion_rate, 6),
            "on_time_rate": None if self.on_time_rate is None else round(self.on_time_rate, 6),
        }


@dataclass(frozen=True, slots=True)
class Flagged:
    """A record listed in a digest, with its number: working days overdue, left, or idle."""

    record: MeasureRecord
    days: int


@dataclass
class Statistics:
    """All figures of one snapshot: totals, lists and breakdowns."""

    today: date
    counts: Counts
    overdue: list[Flagged]
    due_soon: list[Flagged]
    stagnating: list[Flagged]
    by_area: dict[str, Counts]
    by_unit: dict[str, Counts]
    by_leader: dict[int | None, Counts]
    areas: int
    problems: int


NO_UNIT = "（未指定部门）"


class Reading:
    """The figures of records as read on one day (``today``).

    The working-day counts are memoised per distinct date: a campaign has 100,000 measures but
    only a few hundred distinct deadlines and activity days."""

    __slots__ = ("today", "days", "due_limit", "stagnation", "_after", "_until", "_idle",
                 "_local")

    def __init__(self, today: date, days: WorkdayIndex, *, due_window: int = DUE_WINDOW,
                 stagnation: int = STAGNATION) -> None:
        self.today = today
        self.days = days
        self.due_limit = days.nth_after(today, due_window)  # the due-soon window's last day
        self.stagnation = stagnation
        self._after: dict[date, int] = {}     # deadline -> working days from it to today
        self._until: dict[date, int] = {}     # deadline -> working days from today to it
        self._idle: dict[datetime, int] = {}  # activity time -> working days idle until today
        self._local: dict[datetime, date] = {}

    def overdue_days(self, deadline: date) -> int:
        found = self._after.get(deadline)
        if found is None:
            found = self._after[deadline] = self.days.count_between(deadline, self.today)
        return found

    def due_in(self, deadline: date) -> int:
        found = self._until.get(deadline)
        if found is None:
            found = self._until[deadline] = self.days.count_between(self.today, deadline)
        return found

    def idle(self, anchor: datetime) -> int:
        found = self._idle.get(anchor)
        if found is None:
            found = self._idle[anchor] = self.idle_since(anchor.astimezone(SHANGHAI).date())
        return found

    def idle_since(self, day: date) -> int:
        """Working days idle up to today for a measure last changed or reported on ``day``."""
        return self.days.count_between(day, self.today)

    def local(self, moment: datetime) -> date:
        found = self._local.get(moment)
        if found is None:
            found = self._local[moment] = local_date(moment)
        return found

    def facts(self, record: MeasureRecord) -> tuple[int, int | None, int | None, int | None]:
        """What ``record`` adds to the figures: its flag code, and the working days it is
        overdue, has left before its deadline, and has been idle (None when not flagged).

        The rules are those of the module's docstring."""
        state = record.state._value_
        today = self.today
        overdue_days = due_in = idle_days = None
        code = _PAIR_CODES[state][record.kind._value_]
        if state in _OPEN_VALUES:  # the owner still has work
            deadline = record.deadline
            if deadline is not None:
                if today > deadline:  # workflow.ledger.is_overdue, for an open measure
                    overdue_days = self.overdue_days(deadline)
                    code |= OVERDUE
                elif deadline <= self.due_limit:
                    due_in = self.due_in(deadline)
                    code |= DUE_SOON
            anchor = record.state_changed_at  # the last state change or progress report
            progress = record.last_progress_at
            if progress is not None and progress > anchor:
                anchor = progress
            idle = self.idle(anchor)
            if idle >= self.stagnation:
                idle_days = idle
                code |= STAGNATING
        original = record.original_deadline or record.deadline
        if original is not None:
            if code & COMPLETED:
                code |= ON_TIME_DUE
                closed_at = record.closed_at
                if closed_at is not None and self.local(closed_at) <= original:
                    code |= ON_TIME
            elif original < today:
                code |= ON_TIME_DUE
        return code, overdue_days, due_in, idle_days


class Bounds(NamedTuple):
    """The days the flags of :meth:`Reading.facts` turn on, for counting where the records lie
    (in SQL, by ``workflow.services.figures``): an open measure is overdue when its deadline is
    before ``today``, due soon when it falls from ``today`` to ``due_limit``, and stagnating
    when its last state change or progress report fell (in Asia/Shanghai) on or before
    ``idle_until`` (None: every open measure is)."""

    today: date
    due_limit: date
    idle_until: date | None


def bounds(today: date, days: WorkdayIndex, *, due_window: int = DUE_WINDOW,
           stagnation: int = STAGNATION) -> Bounds:
    """The :class:`Bounds` of a reading on ``today``. Idle days (working days in (activity day,
    today]) only shrink as the activity day moves later, so ``idle >= stagnation`` holds exactly
    up to the day before the ``stagnation``-th working day counted back from today."""
    idle_until = (days.nth_before(today + timedelta(days=1), stagnation) - timedelta(days=1)
                  if stagnation > 0 else None)
    return Bounds(today, days.nth_after(today, due_window), idle_until)


def count(records: Iterable[MeasureRecord], today: date, days: WorkdayIndex, *,
          due_window: int = DUE_WINDOW, stagnation: int = STAGNATION) -> Counts:
    """``compute(...).counts`` without the lists and breakdowns (what week-on-week needs)."""
    facts = Reading(today, days, due_window=due_window, stagnation=stagnation).facts
    return Counts.of([facts(r)[0] for r in records])


def compute(records: Iterable[MeasureRecord], today: date, days: WorkdayIndex, *,
            due_window: int = DUE_WINDOW, stagnation: int = STAGNATION) -> Statistics:
    """Every figure for ``records`` as read on ``today``.

    Each record's flag code is kept with its area, unit and leader; each breakdown then counts
    the (key, code) pairs."""
    facts = Reading(today, days, due_window=due_window, stagnation=stagnation).facts
    overdue: list[Flagged] = []
    due_soon: list[Flagged] = []
    stagnating: list[Flagged] = []
    problems: set[tuple[str, int | str]] = set()
    area_order: dict[str, tuple[int, int]] = {}
    codes: list[int] = []
    areas: list[str] = []
    units: list[str] = []
    leaders: list[int | None] = []
    last_area: str | None = None
    last_problem: int | str | None = None
    for r in records:
        code, overdue_days, due_in, idle_days = facts(r)
        codes.append(code)
        area = r.area
        areas.append(area)
        units.append(r.unit or NO_UNIT)
        leaders.append(r.leader_id)
        problem = r.problem_id or r.problem
        if problem != last_problem or area != last_area:  # records come problem by problem
            if area not in area_order:
                area_order[area] = (r.area_position, len(area_order))
            problems.add((area, problem))
            last_area, last_problem = area, problem
        if overdue_days is not None:
            overdue.append(Flagged(r, overdue_days))
        if due_in is not None:
            due_soon.append(Flagged(r, due_in))
        if idle_days is not None:
            stagnating.append(Flagged(r, idle_days))
    by_area = _grouped(areas, codes)
    # by days (most first, or fewest left first), then by id: two stable sorts with C keys are
    # faster than one with a Python key building tuples
    for flagged, most_first in ((overdue, True), (due_soon, False), (stagnating, True)):
        flagged.sort(key=_RECORD_ID)
        flagged.sort(key=_DAYS, reverse=most_first)
    ordered_areas = dict(sorted(by_area.items(), key=lambda kv: area_order[kv[0]]))
    return Statistics(today, Counts.of(codes), overdue, due_soon, stagnating, ordered_areas,
                      dict(sorted(_grouped(units, codes).items())),
                      leaders_in_order(_grouped(leaders, codes)),
                      areas=len(by_area), problems=len(problems))


def leaders_in_order(by_leader: dict[int | None, Counts]) -> dict[int | None, Counts]:
    """The counts per 责任领导 in the order people were entered (by id), the measures without a
    leader last."""
    return dict(sorted(by_leader.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))


def flag_codes(records: Iterable[MeasureRecord], today: date, days: WorkdayIndex, *,
               due_window: int = DUE_WINDOW, stagnation: int = STAGNATION) -> list[int]:
    """Each record's flag code as read on ``today``: work them out once and pass them to
    :func:`count_by` (``codes=``) when the same records are counted by several keys."""
    facts = Reading(today, days, due_window=due_window, stagnation=stagnation).facts
    return [facts(r)[0] for r in records]


def count_by(records: Sequence[MeasureRecord], key: Callable[[MeasureRecord], K_], today: date,
             days: WorkdayIndex, *, due_window: int = DUE_WINDOW,
             stagnation: int = STAGNATION, codes: Sequence[int] | None = None
             ) -> dict[K_, Counts]:
    """The counts of ``records`` per ``key(record)`` (a unit, a leader, a campaign ...), by the
    same rules as :func:`compute`; groups in the order their first record comes. ``codes``:
    the records' :func:`flag_codes` for the same day and rules, when already worked out."""
    if codes is None:
        codes = flag_codes(records, today, days, due_window=due_window, stagnation=stagnation)
    return _grouped([key(r) for r in records], codes)


_RECORD_ID = attrgetter("record.id")
_DAYS = attrgetter("days")

K_ = TypeVar("K_")


def _grouped(keys: Sequence[K_], codes: Sequence[int]) -> dict[K_, Counts]:
    """Counts per key, ``keys[i]`` being the key of the record with flag code ``codes[i]``."""
    groups: dict[K_, Counts] = defaultdict(Counts)
    for (key, code), n in Counter(zip(keys, codes, strict=True)).items():
        groups[key].add(code, n)
    return dict(groups)


# ------------------------------------------------------------------ week on week


@dataclass(frozen=True)
class Change:
    """What happened to one measure between two snapshots."""

    record: MeasureRecord
    what: str          # "new", "state", "extended", "reassigned"
    before: str | None
    after: str | None

    def describe(self) -> str:
        if self.what == "new":
            return "新增整改措施"
        if self.what == "state":
            before = STATE_LABELS[State(self.before)] if self.before else "—"
            after = STATE_LABELS[State(self.after)] if self.after else "—"
            return f"{before} → {after}"
        if self.what == "extended":
            return f"延期：{self.before or '—'} → {self.after or '—'}"
        return "改派责任人"


def changes_between(before: Iterable[MeasureRecord], after: Iterable[MeasureRecord]
                    ) -> list[Change]:
    """Measures new, moved, extended or reassigned from ``before`` to ``after`` (by id)."""
    earlier = {r.id: r for r in before}
    found: list[Change] = []
    for r in after:
        old = earlier.get(r.id)
        if old is r:
            continue  # snapshots share the records of measures nothing happened to
        if old is None:
            found.append(Change(r, "new", None, r.state.value))
            continue
        if old.state is not r.state:
            found.append(Change(r, "state", old.state.value, r.state.value))
        if old.deadline != r.deadline:
            found.append(Change(r, "extended", _iso(old.deadline), _iso(r.deadline)))
        if old.owner_id != r.owner_id:
            found.append(Change(r, "reassigned", str(old.owner_id), str(r.owner_id)))
    order = {"state": 0, "new": 1, "extended": 2, "reassigned": 3}
    found.sort(key=lambda c: (order[c.what], c.record.id))
    return found


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def week_on_week(current: Counts, previous: Counts) -> dict[str, Any]:
    """Differences to a week before: counts as ``+n``/``-n`` integers, rates in points (0..1)."""
    keys = ("total", "completed", "finished", "long_term", "overdue", "due_soon", "stagnating")
    delta: dict[str, Any] = {k: getattr(current, k) - getattr(previous, k) for k in keys}
    delta["completion_rate"] = round(current.completion_rate - previous.completion_rate, 6)
    cur_on, prev_on = current.on_time_rate, previous.on_time_rate
    delta["on_time_rate"] = (None if cur_on is None or prev_on is None
                             else round(cur_on - prev_on, 6))
    return delta


# ------------------------------------------------------------------ official wording


def percent(part: int, whole: int) -> str:
    """"89.7%": one decimal, rounded half up as people round by hand."""
    if not whole:
        return "0%"
    value = (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    return f"{value}%"


def source_words(campaign_title: str | None) -> str:
    """Whose feedback the campaign rectifies, for the headline."""
    title = campaign_title or ""
    if "审计" in title:
        return "审计反馈"
    if "专项" in title:
        return "专项治理查摆"
    return "巡察反馈"


def official_summary(counts: Counts, areas: int, problems: int,
                     campaign_title: str | None = None) -> str:
    """The headline in official wording, e.g. "针对巡察反馈的3个方面、5个问题、7项整改措施，
    目前已整改完成5项，占比71.4%；长期坚持2项，占比28.6%。" """
    total = counts.total
    head = f"针对{source_words(campaign_title)}的{areas}个方面、{problems}个问题、{total}项整改措施"
    if not total:
        return f"{head}，目前尚无整改措施。"
    parts = [f"目前已整改完成{counts.finished}项，占比{percent(counts.finished, total)}"]
    if counts.long_term:
        parts.append(f"长期坚持{counts.long_term}项，占比{percent(counts.long_term, total)}")
    if counts.unfinished:
        parts.append(f"正在整改{counts.unfinished}项，占比{percent(counts.unfinished, total)}")
    sentence = f"{head}，{'；'.join(parts)}。"
    if counts.overdue:
        sentence += f"其中逾期未完成{counts.overdue}项。"
    return sentence
