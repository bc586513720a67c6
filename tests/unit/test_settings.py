"""Settings are checked before anything starts: one line per problem, naming the variable, the
value and what is allowed; an ORDERGATE_* variable that is no setting is a problem too."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordergate_server.config import Settings, SettingsError


def problems(environ: dict[str, str], **overrides: object) -> list[str]:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(environ, **overrides)
    return refused.value.problems


def test_defaults_need_no_variables() -> None:
    settings = Settings.from_env({})
    assert settings.database_url == "sqlite:///ordergate.sqlite3"
    assert settings.log_format == "text"


def test_values_are_read_typed_and_case_insensitive_where_words() -> None:
    settings = Settings.from_env(
        {
            "ORDERGATE_WORKERS": "3",
            "ORDERGATE_RATE_LIMIT_PER_SECOND": "2.5",
            "ORDERGATE_LOG_LEVEL": "debug",
            "ORDERGATE_LOG_FORMAT": "JSON",
            "ORDERGATE_ACCESS_LOG": "false",
        }
    )
    assert (settings.workers, settings.rate_limit_per_second) == (3, 2.5)
    assert (settings.log_level, settings.log_format, settings.access_log) == (
        "DEBUG",
        "json",
        False,
    )


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("ORDERGATE_LOG_LEVEL", "verbose", "'DEBUG', 'INFO', 'WARNING', 'ERROR' or 'CRITICAL'"),
        ("ORDERGATE_LOG_FORMAT", "xml", "'text' or 'json'"),
        ("ORDERGATE_WORKERS", "many", "a valid integer"),
        ("ORDERGATE_WORKERS", "-1", "greater than or equal to 0"),
        ("ORDERGATE_AUTH_CACHE_SECONDS", "10", "less than or equal to 1"),
        ("ORDERGATE_METRICS_LISTEN", "9100", "host:port"),
        ("ORDERGATE_LISTEN", "localhost:http", "host:port"),
        ("ORDERGATE_DATABASE_URL", "mysql://db/orders", "sqlite:///path or postgresql"),
        ("ORDERGATE_DATABASE_URL", "sqlite://", "a SQLite URL names a file"),
        ("ORDERGATE_DATABASE_URL", "not a url", "a URL"),
        ("ORDERGATE_DATABASE_URL", "postgresql+asyncpg://db/o", "use postgresql+psycopg://"),
        ("ORDERGATE_ACCESS_LOG", "sometimes", "a valid boolean"),
        ("ORDERGATE_TLS_CERT_FILE", "/no/such.pem", "a readable PEM file"),
        ("ORDERGATE_STUCK_PICKING_HOURS", "0", "greater than 0"),
    ],
)
def test_a_bad_value_is_one_line_with_the_variable_value_and_what_is_allowed(
    name: str, value: str, allowed: str
) -> None:
    [line] = problems({name: value})
    assert line.startswith(f"{name}={value!r} is not allowed: ")
    assert allowed in line
    assert "\n" not in line


def test_an_unknown_variable_is_refused_with_the_nearest_name() -> None:
    [line] = problems({"ORDERGATE_DATABSE_URL": "postgresql+psycopg://db/orders"})
    assert line == ("ORDERGATE_DATABSE_URL is not a setting (did you mean ORDERGATE_DATABASE_URL?)")
    [line] = problems({"ORDERGATE_SOMETHING_ELSE": "1"})
    assert line == "ORDERGATE_SOMETHING_ELSE is not a setting"


def test_the_clients_and_the_test_suites_variables_are_not_refused() -> None:
    Settings.from_env(
        {"ORDERGATE_TARGET": "h:1", "ORDERGATE_API_KEY": "k", "ORDERGATE_TEST_POSTGRES_URL": "x"}
    )


def test_every_problem_is_reported_at_once() -> None:
    found = problems({"ORDERGATE_WORKERS": "x", "ORDERGATE_LOG_LEVEL": "y", "ORDERGATE_NOPE": ""})
    assert len(found) == 3


def test_a_command_line_flag_is_named_as_the_flag() -> None:
    [line] = problems({}, listen="nowhere")
    assert line.startswith("--listen='nowhere' is not allowed: host:port")


def test_the_pii_key_is_checked_and_never_shown() -> None:
    [line] = problems({"ORDERGATE_PII_KEY": "c2hvcnQ="})  # base64, but 5 bytes
    assert line == (
        "ORDERGATE_PII_KEY='****' is not allowed: base64 of 32 random bytes "
        "(openssl rand -base64 32)"
    )
    key = base64.b64encode(bytes(range(32))).decode()
    shown = Settings.from_env(
        {
            "ORDERGATE_PII_KEY": key,
            "ORDERGATE_DATABASE_URL": "postgresql+psycopg://app:s3cret@db/orders",
        }
    ).shown()
    assert "ORDERGATE_PII_KEY=****" in shown
    assert "ORDERGATE_DATABASE_URL=postgresql+psycopg://app:***@db/orders" in shown
    assert not any(key in line or "s3cret" in line for line in shown)
    assert len(shown) == len(Settings.model_fields)


def test_tls_needs_certificate_and_key_together() -> None:
    [line] = problems({"ORDERGATE_TLS_KEY_FILE": __file__})
    assert line == "TLS needs both ORDERGATE_TLS_CERT_FILE and ORDERGATE_TLS_KEY_FILE"
    [line] = problems({"ORDERGATE_TLS_CLIENT_CA_FILE": __file__})
    assert line == "ORDERGATE_TLS_CLIENT_CA_FILE needs a server certificate and key"


def _documented_defaults() -> dict[str, str]:
    """Variable -> default, from the settings tables of docs/configuration.md and
    docs/file-drop.md (rows of one variable, or of several with as many defaults)."""
    root = Path(__file__).resolve().parents[2]
    found: dict[str, str] = {}
    for doc in ("docs/configuration.md", "docs/file-drop.md"):
        for row in (root / doc).read_text().splitlines():
            cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
            names = [c for c in cells if re.fullmatch(r"(`ORDERGATE_\w+`(, )?)+", c)]
            if not names:
                continue
            variables = re.findall(r"`(ORDERGATE_\w+)`", names[0])
            default = cells[cells.index(names[0]) + 1]
            defaults = re.findall(r"`([^`]*)`", default) or [default]
            if len(defaults) == len(variables):
                found.update(zip(variables, defaults, strict=True))
            else:
                found.update(dict.fromkeys(variables, default))
    return found


def test_every_setting_is_documented_with_its_default() -> None:
    documented = _documented_defaults()
    for name, field in Settings.model_fields.items():
        variable = f"ORDERGATE_{name.upper()}"
        assert variable in documented, f"{variable} is not in docs/configuration.md"
        default = documented[variable]
        if default.startswith("*("):  # *(off)*, *(plaintext)*: an empty default
            assert field.default in ("", None, ()), variable
            continue
        value = field.default
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        assert default in (shown, shown.removesuffix(".0")), (variable, default, value)


@pytest.mark.parametrize(
    "url", ["postgres://db/orders", "postgresql+nosuch://db/orders", "mysql+pymysql://db/o"]
)
def test_a_database_url_of_an_unknown_kind_or_driver_is_one_line(url: str) -> None:
    [line] = problems({"ORDERGATE_DATABASE_URL": url})
    assert line.startswith(f"ORDERGATE_DATABASE_URL={url!r} is not allowed: ")


@given(
    name=st.sampled_from(sorted(Settings.model_fields)),
    value=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=40),
)
@settings(max_examples=300, deadline=None)
def test_any_value_of_any_setting_is_taken_or_refused_in_one_line(name: str, value: str) -> None:
    variable = f"ORDERGATE_{name.upper()}"
    try:
        Settings.from_env({variable: value})
    except SettingsError as refused:
        [line] = refused.problems
        assert line.startswith(f"{variable}=") or variable in line
        assert "\n" not in line
