"""The cyclic collector is off inside a pause, nested or from several threads, and back as it
was afterwards."""

from __future__ import annotations

import gc
import threading

import pytest

from workflow.gcpause import cyclic_gc_paused


@pytest.fixture(autouse=True)
def _collector_restored():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_a_pause_switches_the_collector_off_and_back_on():
    gc.enable()
    with cyclic_gc_paused():
        assert not gc.isenabled()
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause is still open
    assert gc.isenabled()


def test_a_collector_switched_off_before_stays_off():
    gc.disable()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_the_collector_comes_back_after_an_error():
    gc.enable()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("the sweep failed")
    assert gc.isenabled()


def test_overlapping_pauses_in_two_threads_end_with_the_last():
    gc.enable()
    first_in, second_done = threading.Event(), threading.Event()
    seen: list[bool] = []

    def first() -> None:
        with cyclic_gc_paused():
            first_in.set()
            second_done.wait(5)
            seen.append(gc.isenabled())  # the other thread's pause has ended: still off

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait(5)
    with cyclic_gc_paused():
        pass
    second_done.set()
    thread.join(5)
    assert seen == [False]
    assert gc.isenabled()


def test_as_a_decorator_the_collector_comes_back_once_the_locals_are_freed():
    gc.enable()
    freed: list[str] = []
    seen: list[bool] = []

    class Held:
        """Stands for the sweep's objects, which live until it returns."""

        def __del__(self) -> None:
            freed.append("held")

    @cyclic_gc_paused()
    def work() -> str:
        held = Held()  # noqa: F841  # a local, freed when the function returns
        seen.append(gc.isenabled())
        return "done"

    original_enable = gc.enable
    order: list[str] = []

    def enable() -> None:
        order.append(f"enable after {freed}")
        original_enable()

    gc.enable = enable  # type: ignore[assignment]
    try:
        assert work() == "done"
    finally:
        gc.enable = original_enable  # type: ignore[assignment]
    assert seen == [False]
    assert order == ["enable after ['held']"]  # the local was freed before the collector came back
    assert gc.isenabled()
