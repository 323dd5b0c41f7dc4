"""Uploaded files kept on the server between a preview and its confirmation, so a file is never
lost on a validation error: the clerk fixes what the preview names (adds a person, say) and
confirms without uploading again. Each upload is a folder named by a random token, holding the
file under its own name and who uploaded it for what; only that person may use it, and folders
older than a day are removed."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from workflow.errors import InputError, NotFound

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
KEEP_SECONDS = 24 * 3600
CHUNK = 1024 * 1024
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_META = "upload.json"


@dataclass(frozen=True)
class Upload:
    """One kept upload: its token, the file's path, and what it was uploaded for."""

    token: str
    path: Path
    purpose: str
    person_id: int
    campaign_id: int | None

    @property
    def filename(self) -> str:
        return self.path.name


def _safe_name(filename: str) -> str:
    name = Path(filename.replace("\\", "/")).name.strip().lstrip(".")
    if not name or name == _META:
        raise InputError("请选择要上传的文件", field="file")
    return name[:200]


class UploadStore:
    """Uploads under ``root`` (beside the evidence folder)."""

    def __init__(self, root: Path, max_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def save(self, filename: str, stream: BinaryIO, *, purpose: str, person_id: int,
             campaign_id: int | None = None) -> Upload:
        name = _safe_name(filename)
        self.purge()
        token = secrets.token_urlsafe(24)
        folder = self.root / token
        folder.mkdir(parents=True)
        size = 0
        try:
            with open(folder / name, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise InputError(f"文件「{name}」超过 {self.max_bytes // (1024 * 1024)} MB",
                                         field="file")
                    out.write(chunk)
            if size == 0:
                raise InputError(f"文件「{name}」是空的", field="file")
            (folder / _META).write_text(json.dumps(
                {"file": name, "purpose": purpose, "person": person_id,
                 "campaign": campaign_id}), encoding="utf-8")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return Upload(token, folder / name, purpose, person_id, campaign_id)

    def get(self, token: str, *, purpose: str, person_id: int,
            campaign_id: int | None = None) -> Upload:
        """The upload if it exists and was made by this person for this purpose; otherwise
        NotFound (an expired, altered or someone else's token look alike)."""
        gone = NotFound("上传的文件（可能已超过一天被清理，请重新上传）", "")
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise gone
        meta_path = self.root / token / _META
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise gone from None
        if (meta.get("purpose"), meta.get("person"), meta.get("campaign")) != (
                purpose, person_id, campaign_id):
            raise gone
        path = self.root / token / str(meta["file"])
        if not path.is_file():
            raise gone
        return Upload(token, path, purpose, person_id, campaign_id)

    def discard(self, upload: Upload) -> None:
        shutil.rmtree(self.root / upload.token, ignore_errors=True)

    def purge(self, now: float | None = None) -> None:
        """Remove uploads older than a day (never confirmed)."""
        if not self.root.is_dir():
            return
        limit = (now if now is not None else time.time()) - KEEP_SECONDS
        for folder in self.root.iterdir():
            try:
                if folder.is_dir() and folder.stat().st_mtime < limit:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue
