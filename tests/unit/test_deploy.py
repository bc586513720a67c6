"""What ships under deploy/ and around it is checked like code: the alert rules with promtool
(syntax and their unit tests), the dashboard and the rules against the series a real server
exposes, the container files against what they must do, the lock files against the packages
they pin, and the contract against its last release (buf breaking)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CI = os.environ.get("CI", "").lower() == "true"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool not installed (Debian: apt install prometheus); .ci/run installs it"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_alert_rules_are_valid() -> None:
    done = subprocess.run(
        [_promtool(), "check", "rules", "alerts.yml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_fire_as_their_unit_tests_say() -> None:
    done = subprocess.run(
        [_promtool(), "test", "rules", "alerts_test.yml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_unit_test() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((DEPLOY / "prometheus" / "alerts_test.yml").read_text())
    tested = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")  # a case where it fires
    }
    assert alerts == tested


def test_the_prometheus_config_of_the_compose_file_is_valid() -> None:
    done = subprocess.run(
        [_promtool(), "check", "config", "prometheus.yml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _series_in(expression: str) -> set[str]:
    """The Ordergate series an expression reads (histogram suffixes folded to the family)."""
    names = set(re.findall(r"\bordergate_[a-z_]+", expression))
    return {re.sub(r"_(bucket|count|sum)$", "", name) for name in names}


def _dashboard_expressions() -> dict[str, list[str]]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "ordergate.json").read_text())
    return {
        panel["title"]: [target["expr"] for target in panel["targets"]]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
    }


def test_the_dashboard_shows_what_operators_watch() -> None:
    read = {
        series
        for expressions in _dashboard_expressions().values()
        for expression in expressions
        for series in _series_in(expression)
    }
    # Orders in, held by reason, oldest held, order lag, error rates, database health,
    # file drop: the list, each by the series that carries it.
    assert {
        "ordergate_orders_total",
        "ordergate_exception_queue_depth",
        "ordergate_oldest_held_order_age_seconds",
        "ordergate_order_lag_seconds",
        "ordergate_rpc_requests_total",
        "ordergate_rejected_calls_total",
        "ordergate_database_up",
        "ordergate_file_drop_files_total",
    } <= read


def test_dashboard_and_alerts_read_only_series_the_server_exposes(
    exposed_series: set[str],
) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    used = {
        series
        for group in rules["groups"]
        for rule in group["rules"]
        for series in _series_in(rule["expr"])
    }
    for expressions in _dashboard_expressions().values():
        for expression in expressions:
            used |= _series_in(expression)
    assert used - exposed_series == set()


@pytest.fixture
def exposed_series() -> set[str]:
    """The series names of a real server's /metrics, its counters with their _total."""
    from prometheus_client.parser import text_string_to_metric_families

    from ordergate_server.api.metrics import Metrics
    from ordergate_server.service import monitoring

    # Every family, also those without a sample yet: prometheus_client's own description of
    # the registry (it needs no database for the counters; the gauges come from the database
    # collector, which keeps zeros until it can read one).
    class NoDatabase:
        def __getattr__(self, name: str) -> object:
            raise RuntimeError("no database here")

    metrics = Metrics(NoDatabase(), monitoring.rules(4, 72))  # type: ignore[arg-type]
    from prometheus_client import generate_latest

    names = set()
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        names.add(family.name)
        names.add(f"{family.name}_total" if family.type == "counter" else family.name)
    return names


def test_the_image_is_multi_stage_non_root_and_health_checked() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+", dockerfile, re.M)
    assert len(stages) >= 2
    runtime = dockerfile.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER (?!root\b|0\b)\S+", runtime, re.M)
    assert 'CMD ["ordergate", "health"' in runtime
    assert "COPY --from=build" in runtime
    # Installs from the lock, with its hashes checked, and nothing else from an index.
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-deps ./client_sdk ." in dockerfile


def test_the_compose_file_starts_ordergate_with_postgres_prometheus_and_grafana() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"ordergate", "postgres", "prometheus", "grafana"}
    ordergate = services["ordergate"]
    assert ordergate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert ordergate["environment"]["ORDERGATE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert (DEPLOY / ordergate["build"]["context"] / ordergate["build"]["dockerfile"]).exists()
    for service in services.values():  # every file it mounts is in the repository
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    [job] = scrape["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["ordergate:9464"]  # the image's metrics port
    assert "ORDERGATE_METRICS_LISTEN=0.0.0.0:9464" in (ROOT / "Dockerfile").read_text()


def _pins(lock: Path) -> dict[str, str]:
    return {
        name.lower(): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", lock.read_text(), re.M)
    }


def _declared(pyproject: Path, extra: str | None = None) -> list[Requirement]:
    import tomllib

    project = tomllib.loads(pyproject.read_text())["project"]
    declared = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return [Requirement(text) for text in declared]


@pytest.mark.parametrize(
    ("lock", "extra"), [("requirements.lock", None), ("requirements-dev.lock", "dev")]
)
def test_the_locks_pin_every_declared_dependency_within_its_range(
    lock: str, extra: str | None
) -> None:
    pins = _pins(ROOT / lock)
    declared = _declared(ROOT / "pyproject.toml", extra) + _declared(
        ROOT / "client_sdk" / "pyproject.toml"
    )
    ours = {"ordergate", "ordergate-client"}
    for requirement in declared:
        name = requirement.name.lower()
        if name in ours:
            continue
        assert name in pins, f"{name} is not in {lock}: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]}, outside {requirement}: run `make lock`"
        )
    assert all(
        re.search(r"--hash=sha256:", block) for block in (ROOT / lock).read_text().split("==")[1:]
    )


def test_the_development_environment_is_the_locked_one() -> None:
    """`make` installs from requirements-dev.lock: what runs the tests is what it pins."""
    from importlib.metadata import distributions

    pins = _pins(ROOT / "requirements-dev.lock")
    installed = {d.metadata["Name"].lower().replace("_", "-"): d.version for d in distributions()}
    differ = {
        name: (version, installed.get(name.replace("_", "-")))
        for name, version in pins.items()
        if installed.get(name.replace("_", "-")) != version
    }
    assert differ == {}, f"installed differs from the lock (pinned, installed): {differ}"


def test_the_contract_keeps_compatible_with_its_last_release() -> None:
    released = sorted(
        (ROOT / "protos" / "released").glob("ordergate-v*.binpb"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.stem)],
    )
    assert released, "no released contract image in protos/released"
    buf = Path(sys.executable).parent / "buf"
    done = subprocess.run(
        [str(buf), "breaking", "--against", str(released[-1])],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
