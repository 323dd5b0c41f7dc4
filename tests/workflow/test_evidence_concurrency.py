"""Two writers and cleaners of the same evidence file never delete a file a record points to.

Evidence is stored by content, so two uploads of one PDF share one stored file. Each scenario
runs two stores over one folder (as two web processes would; flock locks are per open file, so
two stores in one process behave as two processes do), with the real database deciding whether
a record points at the file; one scenario puts the second writer in a real subprocess."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from config.settings import Settings
from workflow import db
from workflow.evidence import EvidenceStore
from workflow.models import Evidence, Measure, Person
from workflow.runtime import Runtime
from workflow.services.measures import add_progress
from workflow.timeutil import SHANGHAI

PDF = b"%PDF-1.4\n% the same revised regulation, uploaded twice\n%%EOF\n"
ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 12, 7, 10, 0, tzinfo=SHANGHAI)


class Failed(Exception):
    """The request failed after storing its file (a bad form field, a conflict)."""


@pytest.fixture
def stores(database, tmp_path) -> tuple[EvidenceStore, EvidenceStore, Runtime]:
    runtime = Runtime(Settings(database_url=database.url, evidence_dir=tmp_path / "evidence"),
                      engine=database.engine)
    first = runtime.evidence
    second = EvidenceStore(first.root, first.max_bytes, is_referenced=first.is_referenced)
    return first, second, runtime


def record(runtime: Runtime, cast, stored) -> None:
    with db.transaction(runtime.sessions) as session:
        measure = session.get(Measure, cast.measure.id)
        author = session.get(Person, cast.owner.id)
        add_progress(session, measure, author, "已印发修订后的采购管理办法", [stored], AT)


def referenced_paths(runtime: Runtime) -> list[str]:
    with db.transaction(runtime.sessions) as session:
        return list(session.scalars(select(Evidence.stored_path)))


def test_a_lone_failed_upload_leaves_nothing_behind(stores, cast):
    first, _, runtime = stores
    with pytest.raises(Failed), first.removed_on_error():
        stored = first.store("办法.pdf", io.BytesIO(PDF))
        assert first.path_of(stored.stored_path).exists()
        raise Failed
    assert not first.path_of(stored.stored_path).exists()


def test_the_creator_fails_after_another_writer_recorded_the_file(stores, cast):
    first, second, runtime = stores
    # Given A stores a new file, and B stores the same content and commits its record
    with pytest.raises(Failed), first.removed_on_error():
        stored = first.store("办法.pdf", io.BytesIO(PDF))
        with second.removed_on_error():
            again = second.store("办法（修订稿）.pdf", io.BytesIO(PDF))
            record(runtime, cast, again)
        # When A's request fails afterwards
        raise Failed
    # Then the file B's record points at is still there
    assert referenced_paths(runtime) == [stored.stored_path]
    assert first.path_of(stored.stored_path).read_bytes() == PDF


def test_the_creator_fails_while_another_writer_is_still_in_flight(stores, cast):
    first, second, runtime = stores
    b_stored = threading.Event()
    a_failed = threading.Event()
    outcome: dict[str, object] = {}

    def writer_b() -> None:
        with second.removed_on_error():
            outcome["stored"] = second.store("办法.pdf", io.BytesIO(PDF))
            b_stored.set()
            assert a_failed.wait(20)
            # B's transaction commits only after A has failed and cleaned up
            record(runtime, cast, outcome["stored"])

    with pytest.raises(Failed), first.removed_on_error():
        stored = first.store("办法.pdf", io.BytesIO(PDF))
        thread = threading.Thread(target=writer_b)
        thread.start()
        assert b_stored.wait(20)
        raise Failed
    # A could not take the folder's lock while B held it: the file stays
    assert first.path_of(stored.stored_path).exists()
    a_failed.set()
    thread.join(20)
    assert referenced_paths(runtime) == [stored.stored_path]
    assert first.path_of(stored.stored_path).read_bytes() == PDF


def test_when_both_fail_the_last_one_out_removes_the_file(stores, cast):
    first, second, runtime = stores
    with pytest.raises(Failed), first.removed_on_error():
        stored = first.store("办法.pdf", io.BytesIO(PDF))
        with pytest.raises(Failed), second.removed_on_error():
            second.store("办法.pdf", io.BytesIO(PDF))
            raise Failed  # B (a reuser) fails: not its file to remove
        assert first.path_of(stored.stored_path).exists()
        raise Failed
    assert not first.path_of(stored.stored_path).exists()
    assert referenced_paths(runtime) == []


def test_a_cleaner_never_removes_a_recorded_file(stores, cast):
    first, _, runtime = stores
    with first.removed_on_error():
        stored = first.store("办法.pdf", io.BytesIO(PDF))
        record(runtime, cast, stored)
    assert first.discard_if_unreferenced(stored.stored_path) is False
    assert first.path_of(stored.stored_path).exists()


WRITER = """
import io, sys, time
from pathlib import Path
from workflow.evidence import EvidenceStore
root, ready, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
store = EvidenceStore(root, 1 << 20, is_referenced=lambda path: False)
with store.removed_on_error():
    store.store("办法.pdf", io.BytesIO(sys.stdin.buffer.read()))
    ready.touch()
    while not go.exists():
        time.sleep(0.05)
"""


def test_a_writer_in_another_process_holds_the_file(stores, cast, tmp_path):
    first, _, runtime = stores
    ready, go = tmp_path / "ready", tmp_path / "go"
    with pytest.raises(Failed), first.removed_on_error():
        stored = first.store("办法.pdf", io.BytesIO(PDF))
        # Another web process stores the same file and is still inside its transaction
        process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(first.root), str(ready), str(go)],
            stdin=subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert process.stdin is not None
        process.stdin.write(PDF)
        process.stdin.close()
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists()
        raise Failed
    # Then this process did not delete the file the other one is about to record
    assert first.path_of(stored.stored_path).exists()
    go.touch()
    assert process.wait(30) == 0
    assert first.path_of(stored.stored_path).exists()
