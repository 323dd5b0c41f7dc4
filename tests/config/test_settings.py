"""Settings from ``RECTIFLOW_*`` environment variables: defaults, parsing, refusals, masking."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from config.settings import DEFAULT_WECOM_API_BASE, Settings, SettingsError, load_settings


def test_defaults_with_an_empty_environment():
    # Given no RECTIFLOW_* variable at all
    settings = load_settings({})
    # Then the embedded default is used: a SQLite file here, no broker, no channels configured
    assert settings.database_url == "sqlite:///rectiflow.db"
    assert settings.broker_url is None
    assert settings.smtp_host is None and settings.smtp_port == 25
    assert (settings.smtp_ssl, settings.smtp_starttls) == (False, False)
    assert settings.wecom_api_base == DEFAULT_WECOM_API_BASE == "https://qyapi.weixin.qq.com"
    assert settings.wecom_agent_id is None
    assert settings.evidence_dir == Path("evidence")
    assert settings.evidence_max_bytes == 20 * 1024 * 1024
    assert settings.config_file is None
    assert settings.now is None
    assert not settings.smtp_configured
    assert not settings.wecom_configured


def test_reads_os_environ_when_given_nothing(monkeypatch):
    monkeypatch.setenv("RECTIFLOW_DATABASE_URL", "sqlite:////var/lib/rectiflow/ledger.db")
    assert load_settings().database_url == "sqlite:////var/lib/rectiflow/ledger.db"


def test_values_are_read_and_typed():
    settings = load_settings({
        "RECTIFLOW_DATABASE_URL": "postgresql+psycopg://rectiflow@db.example.edu.cn/rectiflow",
        "RECTIFLOW_BROKER_URL": "redis://127.0.0.1:6379/0",
        "RECTIFLOW_SMTP_HOST": "smtp.example.edu.cn",
        "RECTIFLOW_SMTP_PORT": "465",
        "RECTIFLOW_SMTP_SENDER": "整改办 <zgb@example.edu.cn>",
        "RECTIFLOW_WECOM_CORP_ID": "ww0123456789",
        "RECTIFLOW_WECOM_SECRET": "s3cr3t",
        "RECTIFLOW_WECOM_AGENT_ID": "1000002",
        "RECTIFLOW_EVIDENCE_DIR": "/srv/rectiflow/evidence",
        "RECTIFLOW_EVIDENCE_MAX_BYTES": "1048576",
        "RECTIFLOW_BASE_URL": "https://zg.example.edu.cn/",
        "RECTIFLOW_CONFIG": "/etc/rectiflow/policy.toml",
        "RECTIFLOW_NOW": "2026-12-07T09:30:00+08:00",
    })
    assert settings.smtp_port == 465
    assert settings.wecom_agent_id == 1000002
    assert settings.evidence_dir == Path("/srv/rectiflow/evidence")
    assert settings.evidence_max_bytes == 1048576
    assert settings.config_file == Path("/etc/rectiflow/policy.toml")
    assert settings.base_url == "https://zg.example.edu.cn"  # no trailing slash in links
    assert settings.now is not None and settings.now.utcoffset() == timedelta(hours=8)
    assert settings.now == datetime.fromisoformat("2026-12-07T01:30:00+00:00")
    assert settings.smtp_configured and settings.wecom_configured


def test_an_empty_variable_counts_as_unset():
    settings = load_settings({"RECTIFLOW_SMTP_HOST": "", "RECTIFLOW_SMTP_SSL": "",
                              "RECTIFLOW_SMTP_PORT": ""})
    assert (settings.smtp_host, settings.smtp_ssl, settings.smtp_port) == (None, False, 25)


@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("0", False), ("true", True), ("false", False),
    ("TRUE", True), ("False", False), (" true ", True),
])
@pytest.mark.parametrize("name", ["RECTIFLOW_SMTP_SSL", "RECTIFLOW_SMTP_STARTTLS"])
def test_switches_take_1_0_true_false(name, value, expected):
    settings = load_settings({name: value})
    attribute = name.removeprefix("RECTIFLOW_").lower()
    assert getattr(settings, attribute) is expected


#: (variable, bad value, words of the reason).
BAD_VALUES = [
    ("RECTIFLOW_SMTP_SSL", "2", "应为 1/0 或 true/false"),
    ("RECTIFLOW_SMTP_SSL", "是", "应为 1/0 或 true/false"),
    ("RECTIFLOW_SMTP_STARTTLS", "enabled", "应为 1/0 或 true/false"),
    ("RECTIFLOW_SMTP_PORT", "smtp", "应为整数"),
    ("RECTIFLOW_SMTP_PORT", "25.5", "应为整数"),
    ("RECTIFLOW_WECOM_AGENT_ID", "app-1", "应为整数"),
    ("RECTIFLOW_EVIDENCE_MAX_BYTES", "20MB", "应为整数"),
    ("RECTIFLOW_NOW", "tomorrow", "ISO 8601"),
    ("RECTIFLOW_NOW", "2026-12-07T09:30:00", "缺少时区偏移"),
]


@pytest.mark.parametrize(("name", "value", "reason"), BAD_VALUES,
                         ids=[f"{n}={v}" for n, v, _ in BAD_VALUES])
def test_bad_values_name_the_variable(name, value, reason):
    with pytest.raises(SettingsError, match=reason) as caught:
        load_settings({name: value})
    assert caught.value.name == name
    assert caught.value.value == value
    assert name in str(caught.value)


def test_settings_errors_are_value_errors():
    """Code that validates configuration generically can catch ValueError."""
    assert issubclass(SettingsError, ValueError)


SECRETS = {
    "RECTIFLOW_SMTP_PASSWORD": "smtp-pa55word",
    "RECTIFLOW_WECOM_SECRET": "wecom-s3cr3t",
    "RECTIFLOW_WECOM_WEBHOOK_KEY": "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa",
}


def test_secrets_are_masked_in_repr():
    # Given every secret is set
    settings = load_settings({**SECRETS, "RECTIFLOW_SMTP_USER": "zgb@example.edu.cn"})
    # Then none appears in repr() or str(), but the fields are shown as set
    for shown in (repr(settings), str(settings), f"{settings}", f"{settings!r}"):
        for secret in SECRETS.values():
            assert secret not in shown
        assert "smtp_password='***'" in shown
        assert "wecom_secret='***'" in shown
        assert "wecom_webhook_key='***'" in shown
        assert "zgb@example.edu.cn" in shown  # the user name is not a secret
    # And the values themselves are intact for the code that needs them
    assert settings.smtp_password == "smtp-pa55word"


def test_unset_secrets_show_as_none():
    assert "smtp_password=None" in repr(Settings())


@pytest.mark.parametrize(("name", "url", "password"), [
    ("RECTIFLOW_DATABASE_URL", "postgresql+psycopg://rectiflow:Db-Pa55@db.example.edu.cn/rf",
     "Db-Pa55"),
    ("RECTIFLOW_BROKER_URL", "redis://:Redis-Pa55@127.0.0.1:6379/0", "Redis-Pa55"),
    ("RECTIFLOW_BROKER_URL", "amqp://rectiflow:Mq%40Pa55@mq.example.edu.cn:5672//", "Mq%40Pa55"),
])
def test_passwords_inside_urls_are_masked_in_repr(name, url, password):
    # Given a connection URL carrying a password
    settings = load_settings({name: url})
    # Then repr() shows where it connects but not the password
    shown = repr(settings)
    assert password not in shown
    assert "***" in shown
    host = url.rsplit("@", 1)[1]
    assert host in shown
    # And the URL itself is unchanged
    assert url in (settings.database_url, settings.broker_url)


@pytest.mark.parametrize("url", [
    "sqlite:///rectiflow.db",
    "sqlite:////var/lib/rectiflow/ledger.db",
    "redis://127.0.0.1:6379/0",
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
])
def test_urls_without_a_password_are_shown_as_they_are(url):
    assert f"database_url={url!r}" in repr(load_settings({"RECTIFLOW_DATABASE_URL": url}))


def test_logging_and_metrics_settings():
    # Given nothing: text logs, the level chosen per process, no metrics port or token
    default = load_settings({})
    assert (default.log_format, default.log_level) == ("text", None)
    assert (default.metrics_port, default.metrics_token) == (None, None)
    # When they are set
    settings = load_settings({"RECTIFLOW_LOG_FORMAT": "JSON", "RECTIFLOW_LOG_LEVEL": "debug",
                              "RECTIFLOW_METRICS_PORT": "9464",
                              "RECTIFLOW_METRICS_TOKEN": "scrape-t0ken"})
    # Then they are read, normalised, and the token is a secret
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    assert settings.metrics_port == 9464
    assert "scrape-t0ken" not in repr(settings) and "metrics_token='***'" in repr(settings)


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("RECTIFLOW_LOG_FORMAT", "yaml", "应为 text 或 json"),
    ("RECTIFLOW_LOG_LEVEL", "LOUD", "应为 DEBUG、INFO"),
    ("RECTIFLOW_METRICS_PORT", "70000", "端口号"),
    ("RECTIFLOW_METRICS_PORT", "metrics", "应为整数"),
])
def test_bad_logging_and_metrics_settings_are_refused(name, value, reason):
    with pytest.raises(SettingsError, match=reason) as caught:
        load_settings({name: value})
    assert caught.value.name == name
