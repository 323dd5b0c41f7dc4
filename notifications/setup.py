"""Building the configured channels and the deliverer from settings (entry points call this)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from notifications.channels import wecom
from notifications.channels.base import Channel
from notifications.channels.email import EmailChannel
from notifications.channels.file import FileChannel
from notifications.deliverer import Deliverer
from notifications.render import LinkMaker
from workflow.services.approvals import make_link_maker
from workflow.timeutil import system_now


def build_channels(settings: Settings,
                   sessions: sessionmaker[Session] | None = None) -> dict[str, Channel]:
    """The channels settings configure; bad settings are refused here, at start. ``sessions``
    reach the database where WeCom's access token is shared between workers."""
    channels: dict[str, Channel] = {}
    if settings.smtp_configured:
        channels["email"] = EmailChannel.from_settings(settings)
    if (settings.wecom_corp_id or settings.wecom_secret or settings.wecom_agent_id
            or settings.wecom_webhook_key):  # half a WeCom configuration is refused, not ignored
        channels.update(wecom.channels_from_settings(settings, sessions))
    channels["file"] = FileChannel(settings.outbox_dir,
                                   sender=settings.smtp_sender or "rectiflow@localhost")
    return channels


def approval_link_maker(settings: Settings,
                        now: Callable[[], datetime] | None = None) -> LinkMaker:
    """Mints a one-time approval link, at send time, for items that ask the recipient to act
    (a verified measure's ``to_close``); valid ``settings.approval_link_hours``."""
    return make_link_maker(settings.base_url, timedelta(hours=settings.approval_link_hours),
                           now or (lambda: settings.now or system_now()))


def build_deliverer(settings: Settings, sessions: sessionmaker[Session],
                    send_window: Callable[[datetime], datetime] | None = None,
                    link_maker: LinkMaker | None = None) -> Deliverer:
    """The deliverer over the configured channels; approval links are minted by
    ``approval_link_maker(settings)`` unless another ``link_maker`` is given."""
    link_maker = link_maker or approval_link_maker(settings)
    return Deliverer(sessions, build_channels(settings, sessions), base_url=settings.base_url,
                     send_window=send_window, link_maker=link_maker)
