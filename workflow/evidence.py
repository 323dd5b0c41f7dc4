"""Evidence files (佐证材料): checked for size and type, stored by SHA-256 under one folder."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


class EvidenceStore:
    """Writes evidence files into ``root``; the same content is stored once."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._created: list[Path] = []  # files this store added, newest last

    @contextmanager
    def removed_on_error(self) -> Iterator[EvidenceStore]:
        """Files first stored inside the block are deleted again if the block fails: the rows that
        would have pointed at them were rolled back. Files that already existed are kept."""
        start = len(self._created)
        try:
            yield self
        except BaseException:
            for path in self._created[start:]:
                path.unlink(missing_ok=True)
            del self._created[start:]
            raise

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
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                os.unlink(tmp_name)
            else:
                os.replace(tmp_name, target)
                self._created.append(target)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
        return StoredFile(filename, content_type, size, sha, relative)

    def path_of(self, stored_path: str) -> Path:
        return self.root / stored_path
