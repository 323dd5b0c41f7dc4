"""Building the configured channels from settings (the runtime calls this once per process)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from notifications.channels import wecom
from notifications.channels.base import Channel
from notifications.channels.email import EmailChannel
from notifications.channels.file import FileChannel
from workflow.lifecycle import ChannelName


def build_channels(settings: Settings, sessions: sessionmaker[Session]) -> dict[str, Channel]:
    """The channels settings configure; bad settings are refused here, at start. ``sessions``
    reach the database where WeCom's access token is shared between workers."""
    channels: dict[str, Channel] = {}
    if settings.smtp_configured:
        channels[ChannelName.EMAIL] = EmailChannel.from_settings(settings)
    if (settings.wecom_corp_id or settings.wecom_secret or settings.wecom_agent_id
            or settings.wecom_webhook_key):  # half a WeCom configuration is refused, not ignored
        channels.update(wecom.channels_from_settings(settings, sessions))
    channels[ChannelName.FILE] = FileChannel(settings.outbox_dir,
                                   sender=settings.smtp_sender or "rectiflow@localhost")
    return channels
