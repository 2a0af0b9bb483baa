"""Settings are declared once (server/graphrun_server/settings.py): `serve --help`, the README's
table, `Settings.from_env`, `--print-config` and `--workers`' hand-over all follow from it."""

from __future__ import annotations

import dataclasses
import pathlib
import re

import pytest

import graphrun_server.app
from graphrun.cli import main
from graphrun_server import settings as declared
from graphrun_server.app import Settings

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_table_is_the_declared_one():
    text = README.read_text()
    start = text.index("| Option (`graphrun serve`) |")
    table = text[start:text.index("\n\n", start)]
    assert table == declared.markdown_table(), "run `python -m graphrun_server.settings` and paste its table"


def test_every_settings_field_is_declared():
    fields = {f.name for f in dataclasses.fields(Settings)} - {"auth"}
    auth_fields = {f.name for f in dataclasses.fields(Settings().auth) if not f.name.startswith("_")}
    declared_fields = {s.field for s in declared.SETTINGS if s.field}
    assert fields | {f"auth.{name}" for name in auth_fields} == declared_fields


def test_serve_help_lists_every_setting_with_its_variable_and_default(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    shown = re.sub(r"\s+", " ", capsys.readouterr().out)
    for setting in declared.SETTINGS:
        assert setting.flag in shown
        assert f"env {setting.env}, default " in shown


def test_an_option_wins_over_its_variable_which_wins_over_the_default(monkeypatch):
    seen = []
    monkeypatch.setattr(graphrun_server.app, "serve", seen.append)
    monkeypatch.setenv("GRAPHRUN_LEASE_SECONDS", "12")
    monkeypatch.setenv("GRAPHRUN_POOL_SIZE", "7")
    monkeypatch.setenv("GRAPHRUN_AUTH_HEALTH", "required")
    assert main(["serve", "--pool-size", "9", "--jwt-secret", "s", "--allow-unauthenticated",
                 "--log-level", "debug"]) == 0
    [settings] = seen
    assert (settings.lease_seconds, settings.pool_size, settings.max_attempts) == (12.0, 9, 3)
    assert (settings.auth.jwt_secret, settings.auth.open_health) == ("s", False)
    assert (settings.allow_unauthenticated, settings.log_level) == (True, "DEBUG")


def test_print_config_shows_the_settings_in_effect_with_secrets_masked(monkeypatch, capsys):
    monkeypatch.setenv("GRAPHRUN_METRICS_PORT", "9464")
    assert main(["serve", "--print-config", "--jwt-secret", "hush-hush",
                 "--database-url", "postgresql://app:pa55word@db.internal:5432/graphrun"]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split("=", 1) for line in out.splitlines())
    assert lines["GRAPHRUN_JWT_SECRET"] == "***"
    assert lines["GRAPHRUN_DATABASE_URL"] == "postgresql://app:***@db.internal:5432/graphrun"
    assert lines["GRAPHRUN_METRICS_PORT"] == "9464"
    assert lines["GRAPHRUN_PORT"] == "50051"
    assert "hush-hush" not in out and "pa55word" not in out
    assert set(lines) == {s.env for s in declared.SETTINGS}


def test_a_bad_option_or_variable_is_one_line_naming_it(monkeypatch, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["serve", "--port", "fifty"])
    assert stopped.value.code == 2
    assert "--port: must be an integer, not 'fifty'" in capsys.readouterr().err
    monkeypatch.setenv("GRAPHRUN_LOG_FORMAT", "xml")
    with pytest.raises(SystemExit) as stopped:
        Settings.from_env()
    assert str(stopped.value) == "GRAPHRUN_LOG_FORMAT must be one of text, json, not 'xml'"


def test_workers_get_every_setting_back_from_their_variables(monkeypatch):
    given = Settings(port=7001, pool_size=4, lease_seconds=9.5, allow_unauthenticated=True,
                     log_format="json", metrics_port=9100)
    given.auth.jwt_secret, given.auth.open_health = "s", False
    for name, value in given.to_env().items():
        monkeypatch.setenv(name, value)
    assert dataclasses.asdict(Settings.from_env()) == dataclasses.asdict(given)
