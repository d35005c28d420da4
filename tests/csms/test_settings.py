"""Settings precedence: flags > OCPPKIT_* environment > TOML file > defaults (design.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocppkit.csms.settings import (
    CsmsSettings,
    SettingsError,
    StationPolicy,
    TagPolicy,
    load_settings,
)


def test_defaults_of_a_plain_local_start() -> None:
    settings = load_settings(environ={})
    assert (settings.host, settings.port, settings.api_port) == ("127.0.0.1", 9000, 8080)
    assert settings.database == "sqlite+aiosqlite:///ocppkit.sqlite3"
    assert settings.station_policy is StationPolicy.ACCEPT
    assert settings.tag_policy is TagPolicy.ACCEPT


def test_secured_defaults_reject_unknowns() -> None:
    settings = CsmsSettings(security_profile=1)
    assert settings.station_policy is StationPolicy.REJECT
    assert settings.tag_policy is TagPolicy.REJECT


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "csms.toml"
    config.write_text('[csms]\nport = 9100\nheartbeat_interval = 60\nhost = "0.0.0.0"\n')
    environ = {"OCPPKIT_PORT": "9200", "OCPPKIT_UNKNOWN_STATIONS": "pending", "OTHER": "x"}
    settings = load_settings(
        config_file=config, environ=environ, flags={"port": 9300, "host": None}
    )
    assert settings.port == 9300  # flag wins
    assert settings.unknown_stations is StationPolicy.PENDING  # environment
    assert settings.heartbeat_interval == 60 and settings.host == "0.0.0.0"  # file
    assert load_settings(config_file=config, environ=environ).port == 9200


def test_top_level_toml_without_table(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("port = 9001\n")
    assert load_settings(config_file=config, environ={}).port == 9001


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 1\ncolour = 2\n", "unknown setting 'colour'"),
        ("port = [", "is not valid TOML"),
        ('port = "9000"\n', "invalid port from config file"),
        ('unknown_id_tags = "maybe"\n', "invalid unknown_id_tags"),
    ],
)
def test_bad_file(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_settings(config_file=config, environ={})


def test_bad_environment_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="invalid OCPPKIT_HEARTBEAT_INTERVAL='0'"):
        load_settings(environ={"OCPPKIT_HEARTBEAT_INTERVAL": "0"})


def test_security_profiles_need_their_files() -> None:
    """Profiles 2/3 cannot run without TLS files (A00.FR.312), 3 without a client CA."""
    assert load_settings(environ={"OCPPKIT_SECURITY_PROFILE": "1"}).security_profile == 1
    with pytest.raises(SettingsError, match="security_profile 2 needs tls_cert and tls_key"):
        load_settings(environ={"OCPPKIT_SECURITY_PROFILE": "2"})
    with pytest.raises(SettingsError, match="security_profile 3 needs tls_client_ca"):
        load_settings(
            environ={
                "OCPPKIT_SECURITY_PROFILE": "3",
                "OCPPKIT_TLS_CERT": "c.pem",
                "OCPPKIT_TLS_KEY": "k.pem",
            }
        )


def test_api_stays_on_localhost_without_authentication() -> None:
    """Issue: without an API token the API listens on localhost only."""
    with pytest.raises(SettingsError, match="set api_token"):
        load_settings(environ={"OCPPKIT_API_HOST": "0.0.0.0"})
    assert load_settings(environ={"OCPPKIT_API_HOST": "::1"}).api_host == "::1"
    exposed = load_settings(environ={"OCPPKIT_API_HOST": "0.0.0.0", "OCPPKIT_API_TOKEN": "x" * 16})
    assert exposed.api_host == "0.0.0.0"


def test_short_api_token_is_refused() -> None:
    with pytest.raises(SettingsError, match="at least 16 characters"):
        load_settings(environ={"OCPPKIT_API_TOKEN": "short"})
