"""Progress bars: drawn on a terminal, silent when stderr is not one or with ``--json``."""

from __future__ import annotations

import io
import sys

from dbfixtures import BACKEND
from ops_support import TITLE, build_ledger

from workflow.progress import SILENT, terminal_reporter, wants_progress

PHASES = ("备份数据库", "复制佐证材料", "读取数据", "写入数据表", "打包佐证材料", "校验归档",
          "写入数据", "写入佐证材料", "校验台账", "写入台账", "扫描到期措施")
BAR = "━"


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_bar_only_on_a_terminal_and_never_with_json():
    assert wants_progress(False, Terminal())
    assert not wants_progress(True, Terminal())
    assert not wants_progress(False, io.StringIO())
    with terminal_reporter(False, io.StringIO()) as reporter:
        assert reporter is SILENT
    screen = Terminal()
    with terminal_reporter(False, screen) as reporter:
        reporter.phase("复制佐证材料", total=3)
        for _ in range(3):
            reporter.advance()
    assert "复制佐证材料" in screen.getvalue()
    quiet = Terminal()
    with terminal_reporter(True, quiet) as reporter:
        reporter.phase("复制佐证材料", total=3)
        reporter.advance(3)
    assert quiet.getvalue() == ""


def ledger_csv(tmp_path):  # type: ignore[no-untyped-def]
    rows = ["序号,方面,问题,整改措施,责任领导,责任部门,责任人,完成时限,整改类型"]
    rows += [f"{i},学习传达有差距,组织学习不到位,措施{i},leader@example.edu.cn,后勤处,"
             f"owner@example.edu.cn,2026-12-31,限期整改" for i in range(1, 30)]
    path = tmp_path / "台账.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_long_commands_print_no_progress_noise_off_a_terminal(installations, run, tmp_path):
    # Given an installation with a ledger, driven with stderr captured (not a terminal)
    inst = installations.make(BACKEND, "live")
    build_ledger(inst)
    target = installations.make(BACKEND, "target")
    commands = [
        (inst, ("backup", str(tmp_path / "backup"))),
        (inst, ("export", TITLE, "--out", str(tmp_path / "c.zip"), "--without-passwords")),
        (target, ("import", "archive", str(tmp_path / "c.zip"))),
        (inst, ("import", "ledger", str(ledger_csv(tmp_path)), "--campaign", "新台账")),
        (inst, ("sweep", "--now", "2026-12-30T09:00:00+08:00")),
        (inst, ("restore", str(tmp_path / "backup"), "--force")),
    ]
    for installation, args in commands:
        # When each long operation runs
        result = run(installation, *args)
        # Then it succeeds and its stderr holds no bar and no phase name
        assert result.code == 0, (args, result.err)
        assert BAR not in result.err and not any(p in result.err for p in PHASES), result.err


def test_on_a_terminal_the_bar_goes_to_stderr_and_json_stays_clean(installations, run,
                                                                     monkeypatch, tmp_path):
    inst = installations.make(BACKEND, "live")
    build_ledger(inst)
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    result = run(inst, "backup", str(tmp_path / "one"))
    assert result.code == 0
    assert "复制佐证材料" in screen.getvalue()
    assert BAR not in result.out
    screen.seek(0)
    screen.truncate()
    result = run(inst, "export", TITLE, "--out", str(tmp_path / "c.zip"), "--json")
    assert result.code == 0
    assert screen.getvalue() == ""
    assert result.json()["measures"] == 8
