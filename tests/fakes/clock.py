"""A clock tests can move, shared by the deliverer, the channels and the fake servers."""

from __future__ import annotations

from datetime import datetime, timedelta


class Clock:
    """Callable like ``system_now``; ``advance`` moves it on."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now
