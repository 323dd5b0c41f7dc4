"""Evidence files (佐证材料): checked for size and type, stored by SHA-256 under one folder.

Content addressing means two uploads of the same file share one stored file, so a failed upload
must not simply delete "its" file: another request (in this process or another web process) may
be about to record it, or may already have. Storing and cleaning up therefore take a lock on the
file's folder (``flock`` on ``xx/.lock``): a writer holds it shared from placing the file until
its transaction has ended; a cleaner takes it exclusively without waiting, and deletes only when
no writer is in flight and no committed record points at the file (``is_referenced``). When
either is not so, the file stays: an orphan at worst, never a record without its file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from workflow.errors import EvidenceRejected

#: Allowed extensions → (content type, magic prefixes; empty means not sniffed).
ALLOWED_TYPES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    ".pdf": ("application/pdf", (b"%PDF",)),
    ".png": ("image/png", (b"\x89PNG\r\n\x1a\n",)),
    ".jpg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".jpeg": ("image/jpeg", (b"\xff\xd8\xff",)),
    ".gif": ("image/gif", (b"GIF87a", b"GIF89a")),
    ".webp": ("image/webp", (b"RIFF",)),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
              (b"PK\x03\x04",)),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
              (b"PK\x03\x04",)),
    ".pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation",
              (b"PK\x03\x04",)),
    ".doc": ("application/msword", (b"\xd0\xcf\x11\xe0",)),
    ".xls": ("application/vnd.ms-excel", (b"\xd0\xcf\x11\xe0",)),
    ".ppt": ("application/vnd.ms-powerpoint", (b"\xd0\xcf\x11\xe0",)),
    ".wps": ("application/vnd.ms-works", (b"\xd0\xcf\x11\xe0",)),
    ".ofd": ("application/ofd", (b"PK\x03\x04",)),
    ".zip": ("application/zip", (b"PK\x03\x04",)),
    ".txt": ("text/plain", ()),
    ".csv": ("text/csv", ()),
}
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredFile:
    filename: str
    content_type: str
    size: int
    sha256: str
    stored_path: str  # relative to the evidence folder


def _size_text(size: int) -> str:
    """1048576 → "1 MB", 1536 → "1.5 KB": a limit a person can read."""
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{round(size / scale, 1):g} {unit}"
    return f"{size} 字节"


LOCK_NAME = ".lock"  # a dot file: backups and archives leave it out


@dataclass
class _Batch:
    """The files one unit of work stored: the shared locks it holds, the files it created."""

    locks: dict[Path, int] = field(default_factory=dict)  # folder → open lock file
    created: list[str] = field(default_factory=list)  # relative paths, newest last


_current: ContextVar[_Batch | None] = ContextVar("rectiflow_evidence_batch", default=None)


class EvidenceStore:
    """Writes evidence files into ``root``; the same content is stored once.

    ``is_referenced(stored_path)`` answers whether a committed record points at a file (the
    runtime asks the database); without it, a file is never deleted.
    """

    def __init__(self, root: Path, max_bytes: int,
                 is_referenced: Callable[[str], bool] | None = None) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.is_referenced = is_referenced

    @contextmanager
    def removed_on_error(self) -> Iterator[EvidenceStore]:
        """Files first stored inside the block are deleted again if the block fails, unless
        another writer is still in flight with them or a record points at them. Put the
        database transaction inside the block: the locks are held until it has ended."""
        batch = _Batch()
        token = _current.set(batch)
        try:
            yield self
        except BaseException:
            self._release(batch)
            for relative in reversed(batch.created):
                self.discard_if_unreferenced(relative)
            raise
        else:
            self._release(batch)
        finally:
            _current.reset(token)

    def discard_if_unreferenced(self, relative: str) -> bool:
        """Delete a stored file that no writer is using and no record points at; say whether it
        was deleted. Never waits: a busy folder means someone may be recording the file."""
        if self.is_referenced is None:
            return False
        target = self.root / relative
        fd = self._open_lock(target.parent)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            if self.is_referenced(relative):
                return False
            target.unlink(missing_ok=True)
            return True
        finally:
            os.close(fd)  # closing releases the lock

    def _open_lock(self, folder: Path) -> int:
        folder.mkdir(parents=True, exist_ok=True)
        return os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o640)

    def _hold(self, folder: Path, batch: _Batch | None) -> int | None:
        """A shared lock on ``folder`` for the batch (kept until it ends), or for the caller to
        release right after placing the file when there is no batch."""
        if batch is not None and folder in batch.locks:
            return None
        fd = self._open_lock(folder)
        fcntl.flock(fd, fcntl.LOCK_SH)
        if batch is not None:
            batch.locks[folder] = fd
            return None
        return fd

    @staticmethod
    def _release(batch: _Batch) -> None:
        for fd in batch.locks.values():
            os.close(fd)
        batch.locks.clear()

    def check_name(self, filename: str) -> tuple[str, tuple[bytes, ...]]:
        ext = Path(filename).suffix.lower()
        if ext not in ALLOWED_TYPES:
            allowed = " ".join(sorted(ALLOWED_TYPES))
            raise EvidenceRejected(filename, f"不支持的文件类型「{ext or '无扩展名'}」；允许：{allowed}")
        return ALLOWED_TYPES[ext]

    def store(self, filename: str, stream: BinaryIO) -> StoredFile:
        """Check and store one file; raise EvidenceRejected and leave nothing behind if bad."""
        filename = Path(filename).name
        content_type, magics = self.check_name(filename)
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        head = b""
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                while chunk := stream.read(CHUNK):
                    if not head:
                        head = chunk[:16]
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise EvidenceRejected(filename, f"超过大小上限 {_size_text(self.max_bytes)}")
                    digest.update(chunk)
                    tmp.write(chunk)
            if size == 0:
                raise EvidenceRejected(filename, "文件为空")
            if magics and not head.startswith(magics):
                raise EvidenceRejected(filename, "文件内容与扩展名不符")
            sha = digest.hexdigest()
            relative = f"{sha[:2]}/{sha}{Path(filename).suffix.lower()}"
            target = self.root / relative
            batch = _current.get()
            unheld = self._hold(target.parent, batch)
            try:
                if target.exists():
                    os.unlink(tmp_name)
                else:
                    os.replace(tmp_name, target)
                    if batch is not None:
                        batch.created.append(relative)
            finally:
                if unheld is not None:
                    os.close(unheld)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
        return StoredFile(filename, content_type, size, sha, relative)

    def path_of(self, stored_path: str) -> Path:
        return self.root / stored_path
