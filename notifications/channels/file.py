"""The file channel of the embedded default: each message as an .eml file in a folder."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from notifications.channels.base import Channel, DeliveryError, Rendered
from notifications.mime import build_email
from workflow.lifecycle import ChannelName


class FileChannel(Channel):
    """Writes each message to ``folder`` as an .eml file any mail program opens."""

    name = ChannelName.FILE

    def __init__(self, folder: Path, sender: str = "rectiflow@localhost") -> None:
        self.folder = Path(folder)
        self.sender = sender

    def send(self, message: Rendered) -> dict[str, Any]:
        safe = re.sub(r"[^\w.@-]+", "_", message.recipient)
        target = self.folder / f"{message.message_id:06d}-{safe}.eml"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(bytes(build_email(message, self.sender)))
            os.replace(tmp, target)
        except OSError as exc:
            raise DeliveryError(self.name, f"无法写入 {target}：{exc.strerror}",
                                retryable=True) from exc
        return {"file": str(target)}
