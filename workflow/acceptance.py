"""三方验收 (several acceptors): who the acceptors of a campaign are and which of them a
verification fills. Pure: the measure service reads the history and calls these.

A campaign's ``acceptors`` list holds person ids and relation names (``reviewer``: anyone of
the 整改办, ``leader``: the measure's 责任领导, ``first_responsible``). Each entry is one party
that must verify a submission; a person fills the first party they stand for that has not
verified it yet, and a person who has verified the submission already may not again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from workflow.errors import AlreadyAccepted
from workflow.lifecycle import ACCEPTOR_RELATIONS, Relation


def party_key(entry: int | str) -> str:
    """The stored key of one acceptor entry: ``person:12`` or ``relation:reviewer``."""
    return f"person:{entry}" if isinstance(entry, int) else f"relation:{entry}"


def parties(acceptors: Iterable[int | str] | None) -> list[str]:
    """The keys of a campaign's acceptors, in order, each once."""
    return list(dict.fromkeys(party_key(e) for e in acceptors or ()))


def party_label(key: str, names: Mapping[int, str]) -> str:
    """How a party is shown: the person's name, or the relation's Chinese label."""
    kind, _, value = key.partition(":")
    if kind == "person":
        return names.get(int(value), f"人员 {value}")
    try:
        return Relation(value).label
    except ValueError:
        return value


def parties_of(person_id: int, relations: Iterable[Relation], keys: Sequence[str]) -> list[str]:
    """The parties among ``keys`` a person stands for: named, or through a relation."""
    rels = set(relations)
    return [k for k in keys if k == f"person:{person_id}"
            or (k.startswith("relation:") and _relation(k) in rels)]


def _relation(key: str) -> Relation | None:
    try:
        relation = Relation(key.partition(":")[2])
    except ValueError:
        return None
    return relation if relation in ACCEPTOR_RELATIONS else None


@dataclass(frozen=True)
class Acceptance:
    """One verification of the current submission: the party it filled, by whom."""

    party: str
    by_id: int
    at: str


def next_party(measure_id: int, person_id: int, person_name: str, relations: Iterable[Relation],
               keys: Sequence[str], done: Sequence[Acceptance],
               names: Mapping[int, str]) -> tuple[str, list[str]]:
    """The party ``person`` fills now and the parties still to verify after it; raise
    ``AlreadyAccepted`` for a second verification by the same person or party."""
    accepted = {a.party: a for a in done}
    mine = parties_of(person_id, relations, keys)
    for acceptance in done:
        if acceptance.by_id == person_id:
            raise AlreadyAccepted(measure_id, party_label(acceptance.party, names), person_name)
    open_ = [k for k in mine if k not in accepted]
    if not open_:
        first = accepted[mine[0]]
        raise AlreadyAccepted(measure_id, party_label(first.party, names),
                              names.get(first.by_id, "他人"))
    party = open_[0]
    remaining = [k for k in keys if k not in accepted and k != party]
    return party, remaining
