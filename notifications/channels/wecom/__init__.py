"""WeCom (企业微信): application messages to members (``app``), and group-robot webhooks
(``robot``), both sending through one API client (``api``)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from notifications.channels.base import Channel
from notifications.channels.wecom.api import TokenStore
from notifications.channels.wecom.app import WeComAppChannel
from notifications.channels.wecom.robot import WeComRobotChannel
from workflow.lifecycle import ChannelName


def channels_from_settings(settings: Settings,
                           sessions: sessionmaker[Session]) -> dict[str, Channel]:
    """The WeCom channels the settings ask for; half a configuration is refused, naming what is
    missing. The access token is shared through ``sessions`` (the runtime's)."""
    channels: dict[str, Channel] = {}
    if settings.wecom_corp_id or settings.wecom_secret or settings.wecom_agent_id:
        channels[ChannelName.WECOM] = WeComAppChannel.from_settings(settings,
                                                                    TokenStore(sessions))
    if settings.wecom_webhook_key:
        channels[ChannelName.WECOM_ROBOT] = WeComRobotChannel.from_settings(settings)
    return channels
