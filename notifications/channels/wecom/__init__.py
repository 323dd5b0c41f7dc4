"""WeCom (企业微信): application messages to members (``app``), and group-robot webhooks
(``robot``), both sending through one API client (``api``)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from notifications.channels.base import Channel
from notifications.channels.wecom.api import TokenStore
from notifications.channels.wecom.app import WeComAppChannel
from notifications.channels.wecom.robot import WeComRobotChannel
from workflow import db
from workflow.lifecycle import ChannelName


def channels_from_settings(settings: Settings,
                           sessions: sessionmaker[Session] | None = None) -> dict[str, Channel]:
    """The WeCom channels the settings ask for; half a configuration is refused, naming what is
    missing. The token cache uses ``sessions``, or the settings' database when not given."""
    channels: dict[str, Channel] = {}
    if settings.wecom_corp_id or settings.wecom_secret or settings.wecom_agent_id:
        tokens = TokenStore(sessions if sessions is not None else
                            (lambda: db.session_factory(db.make_engine(settings.database_url))))
        channels[ChannelName.WECOM] = WeComAppChannel.from_settings(settings, tokens)
    if settings.wecom_webhook_key:
        channels[ChannelName.WECOM_ROBOT] = WeComRobotChannel.from_settings(settings)
    return channels
