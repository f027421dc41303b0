#!/usr/bin/env python3
"""Checks airsync's deployment and operations files without Docker.

- every YAML file under deploy/ and docker-compose.yml parses (duplicate keys
  refused), and every JSON file under deploy/;
- the alert rules: required alerts present, each with a severity, a summary,
  a description and a runbook_url that points at an existing file (and
  heading); every metric in an expression is one airsync exposes; every
  alert has a promtool unit test;
- the Prometheus configuration scrapes airsync and loads the rules;
- the Grafana dashboard: a Prometheus datasource variable, unique panel ids,
  every metric known, every metric family on some panel;
- docker-compose.yml: PostgreSQL 16 with a volume and a health check, the
  one-shot migrate, serve without its worker, a separate worker, .env, and
  depends_on conditions that can be met;
- the Dockerfile and .dockerignore: multi-stage, slim non-root runtime,
  entrypoint, command and health check; the build's inputs reach the build
  context and secrets and build output do not;
- the runbooks: one per required situation, each with its signal, fix and
  verification, every link resolves, every metric, alert and variable they
  name exists, and every alert is named in its runbook;
- promtool check rules / check config / test rules, when promtool is there.
  Without it the promtool check is skipped with a notice, unless CI is set
  or --install is given: then Debian's prometheus package is installed.

Exits 1 when any check fails. Needs PyYAML (scripts/check-deploy.sh
provides it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover - the wrapper script installs it
    sys.exit("deploy/check.py needs PyYAML: run scripts/check-deploy.sh, which provides it")

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RUNBOOKS = ROOT / "docs" / "runbooks"

# The metric families airsync exposes at /metrics (`airsync serve`, and the
# worker's families also `airsync worker --metrics-listen`). The test
# `metrics_after_a_sync_show_every_family_with_plausible_values`
# (crates/airsync/tests/serve.rs) checks each name here, and each one the
# rules, the dashboard and the runbooks use, against a real scrape.
COUNTERS = {
    "airsync_http_requests_total",
    "airsync_outbox_events_sent_total",
    "airsync_outbox_events_retried_total",
    "airsync_outbox_events_dead_lettered_total",
    "airsync_outbox_events_deferred_total",
    "airsync_outbox_batches_total",
    "airsync_airtable_requests_total",
    "airsync_airtable_rate_limited_total",
    "airsync_airtable_retries_total",
    "airsync_airtable_token_waits_total",
    "airsync_airtable_token_wait_seconds_total",
    "airsync_shadow_reads_compared_total",
    "airsync_shadow_read_differences_total",
    "airsync_inbound_payloads_applied_total",
    "airsync_inbound_conflicts_total",
    "airsync_inbound_echoes_suppressed_total",
    "airsync_reconcile_records_seen_total",
    "airsync_airtable_rate_limit_episodes_total",
}
GAUGES = {
    "airsync_database_up",
    "airsync_outbox_pending",
    "airsync_outbox_oldest_pending_seconds",
    "airsync_dead_letters",
    "airsync_airtable_requests_in_flight",
    "airsync_airtable_base_paused_seconds",
    "airsync_airtable_rate_share_ratio",
    "airsync_airtable_rate_budget_ratio",
    "airsync_inbound_lag_seconds",
    "airsync_reconcile_running",
}
HISTOGRAMS = {
    "airsync_http_request_duration_seconds",
    "airsync_airtable_request_duration_seconds",
    "airsync_user_provisioning_seconds",
}
FAMILIES = COUNTERS | GAUGES | HISTOGRAMS
# Series names that may appear in expressions.
SERIES = (
    COUNTERS
    | GAUGES
    | {f"{h}{suffix}" for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)
# Made by Prometheus itself for every scrape target: the only way to see
# that a target does not answer at all.
PROMETHEUS_SERIES = {"up"}

# The situations issue 8 asks alerts for, by alert name.
REQUIRED_ALERTS = {
    "AirsyncWorkerDown",
    "AirsyncWorkerUnreachable",
    "AirsyncOutboxDelayed",
    "AirsyncOutboxBacklogGrowing",
    "AirsyncDeadLetters",
    "AirsyncAirtableRateLimited",
    "AirsyncAirtableBasePaused",
    "AirsyncDatabaseDown",
    "AirsyncApiLatencyHigh",
    "AirsyncApiErrorRateHigh",
    "AirsyncInboundLagHigh",
    "AirsyncUserProvisioningSlow",
}
SEVERITIES = {"critical", "warning", "info"}

REQUIRED_FILES = [
    "Dockerfile",
    ".dockerignore",
    "docker-compose.yml",
    "deploy/prometheus/prometheus.yml",
    "deploy/prometheus/alerts.yml",
    "deploy/prometheus/alerts.test.yml",
    "deploy/grafana/airsync-dashboard.json",
]

# The situations issue 8 asks runbooks for.
REQUIRED_RUNBOOKS = {
    "worker-down.md",
    "outbox-backlog.md",
    "dead-letters.md",
    "airtable-outage.md",
    "webhook-expired-or-failing.md",
    "user-provisioning-slo.md",
    "rollback-to-airtable-only.md",
    "postgres-restore.md",
}

# Top-level subcommands of the airsync binary (including those being added).
AIRSYNC_COMMANDS = {
    "serve", "worker", "migrate", "config", "sync", "dead-letter", "airtable",
    "users", "validate-backfill", "demo", "--help", "help",
}

# Prefixes of airsync's configuration variables (.env.example lists them).
VARIABLE_PREFIXES = (
    "DATABASE_", "AIRTABLE_", "DATA_BACKEND_", "JWT_", "SYNC_", "WORKER_",
    "USER_", "FULL_", "AIRSYNC_",
)

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan", "atan2",
}


# --------------------------------------------------------------------------
# Reporting


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def result(self, name: str, problems: list[str], detail: str = "") -> None:
        if problems:
            self.failed += 1
            print(f"FAIL  {name}")
            for problem in problems:
                print(f"        - {problem}")
        else:
            self.passed += 1
            print(f"ok    {name}{': ' + detail if detail else ''}")

    def skip(self, name: str, notice: str) -> None:
        self.skipped += 1
        print(f"skip  {name}: {notice}")

    def summary(self) -> int:
        print(f"deploy-check: {self.passed} passed, {self.failed} failed, {self.skipped} skipped")
        return 1 if self.failed else 0


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------
# Parsing


class StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (Compose
    and Prometheus do too, while plain PyYAML keeps the last one)."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    loader.flatten_mapping(node)
    return dict(loader.construct_pairs(node, deep=deep))


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse_all() -> tuple[dict[Path, object], list[str]]:
    files = sorted(
        [p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml", ".json") and p.is_file()]
    )
    files.append(ROOT / "docker-compose.yml")
    parsed: dict[Path, object] = {}
    problems: list[str] = []
    for path in files:
        if not path.exists():
            problems.append(f"{rel(path)} is missing")
            continue
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix == ".json":
                parsed[path] = json.loads(text)
            else:
                parsed[path] = yaml.load(text, Loader=StrictLoader)
        except (yaml.YAMLError, json.JSONDecodeError) as err:
            problems.append(f"{rel(path)}: {err}")
    return parsed, problems


# --------------------------------------------------------------------------
# PromQL


def metric_names(expr: str) -> set[str]:
    """The series names an expression selects (a tokenizer, not a parser:
    enough for the expressions of these files)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    s = re.sub(r"\$\{[^}]*\}|\$\w+", "1", s)  # Grafana variables
    s = re.sub(r"\{[^{}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # ranges and subqueries
    s = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        name = match.group(0)
        start, end = match.span()
        if start > 0 and (s[start - 1].isdigit() or s[start - 1] == "."):
            continue  # a unit of a duration or an exponent: 10m, 1e3
        if re.match(r"\s*\(", s[end:]):
            continue  # a function or an aggregation
        if name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def unknown_metrics(expr: str, where: str) -> list[str]:
    return [
        f"{where}: unknown metric {name!r}"
        for name in sorted(metric_names(expr))
        if name not in SERIES and name not in PROMETHEUS_SERIES
    ]


def families_used(expr: str) -> set[str]:
    used = set()
    for name in metric_names(expr):
        for family in FAMILIES:
            if name == family or (family in HISTOGRAMS and name.startswith(family + "_")):
                used.add(family)
    return used


# --------------------------------------------------------------------------
# Links


def github_slug(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(path: Path) -> set[str]:
    slugs = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            slugs.add(github_slug(line.lstrip("#")))
    return slugs


def check_target(target: str, base: Path, where: str) -> list[str]:
    """A relative link (path#anchor) resolves to a file and, with an
    anchor, to a heading of that file."""
    path_part, _, anchor = target.partition("#")
    path = (base / path_part).resolve() if path_part else None
    if path is None or not path.is_file():
        return [f"{where}: {target!r} does not point at a file"]
    if anchor and path.suffix == ".md" and anchor not in headings(path):
        return [f"{where}: {rel(path)} has no heading for #{anchor}"]
    return []


def runbook_target(url: str) -> str | None:
    """The repository path of a runbook_url: a path from the root, or a web
    address whose path contains it."""
    index = url.find("docs/runbooks/")
    return url[index:] if index >= 0 else None


# --------------------------------------------------------------------------
# Checks


def check_alerts(doc, tests_doc) -> tuple[list[str], str]:
    problems: list[str] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
        return ["alerts.yml has no list of groups"], ""
    names: list[str] = []
    for group in doc["groups"]:
        for rule in group.get("rules", []):
            if "record" in rule:
                problems += unknown_metrics(str(rule.get("expr", "")), f"record {rule['record']}")
                continue
            name = rule.get("alert")
            if not name:
                problems.append(f"group {group.get('name')}: a rule without alert or record")
                continue
            names.append(name)
            where = f"alert {name}"
            expr = str(rule.get("expr", ""))
            if not expr.strip():
                problems.append(f"{where}: no expr")
            problems += unknown_metrics(expr, where)
            severity = (rule.get("labels") or {}).get("severity")
            if severity not in SEVERITIES:
                problems.append(f"{where}: severity {severity!r} is not one of {sorted(SEVERITIES)}")
            annotations = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not annotations.get(key):
                    problems.append(f"{where}: no {key} annotation")
            url = annotations.get("runbook_url")
            if url:
                target = runbook_target(url)
                if target is None:
                    problems.append(f"{where}: runbook_url {url!r} is not under docs/runbooks/")
                else:
                    link_problems = check_target(target, ROOT, where)
                    problems += link_problems
                    page = ROOT / target.partition("#")[0]
                    if not link_problems and name not in page.read_text(encoding="utf-8"):
                        problems.append(f"{where}: its runbook {target} does not name the alert")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"alerts defined twice: {duplicates}")
    missing = sorted(REQUIRED_ALERTS - set(names))
    if missing:
        problems.append(f"required alerts missing: {missing}")
    if tests_doc is None:
        problems.append("deploy/prometheus/alerts.test.yml is missing")
    else:
        tested = {
            case.get("alertname")
            for test in tests_doc.get("tests", [])
            for case in test.get("alert_rule_test", [])
        }
        untested = sorted(set(names) - tested)
        if untested:
            problems.append(f"alerts without a promtool test in alerts.test.yml: {untested}")
        if "alerts.yml" not in (tests_doc.get("rule_files") or []):
            problems.append("alerts.test.yml does not load alerts.yml")
    return problems, f"{len(names)} alerts, each with a runbook that exists"


def check_prometheus_config(doc) -> list[str]:
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["prometheus.yml is not a mapping"]
    for rule_file in doc.get("rule_files") or []:
        if not (DEPLOY / "prometheus" / rule_file).is_file():
            problems.append(f"rule file {rule_file!r} does not exist next to prometheus.yml")
    if "alerts.yml" not in (doc.get("rule_files") or []):
        problems.append("prometheus.yml does not load alerts.yml")
    jobs = {c.get("job_name"): c for c in doc.get("scrape_configs") or []}
    job = jobs.get("airsync")
    if job is None:
        problems.append("no scrape job named airsync (the alert rules select job=\"airsync\")")
    else:
        if job.get("metrics_path", "/metrics") != "/metrics":
            problems.append("the airsync job does not scrape /metrics")
        targets = [t for sc in job.get("static_configs") or [] for t in sc.get("targets") or []]
        if not targets:
            problems.append("the airsync job has no targets")
        problems += scrape_authorization("airsync", job)
    worker = jobs.get("airsync-worker")
    if worker is None:
        problems.append("no scrape job named airsync-worker (the separate worker's /metrics)")
    else:
        if worker.get("metrics_path", "/metrics") != "/metrics":
            problems.append("the airsync-worker job does not scrape /metrics")
        found = [n for sd in worker.get("dns_sd_configs") or [] for n in sd.get("names") or []]
        found += [t for sc in worker.get("static_configs") or [] for t in sc.get("targets") or []]
        if not found:
            problems.append("the airsync-worker job has no targets")
        problems += scrape_authorization("airsync-worker", worker)
    return problems


def scrape_authorization(name: str, job: dict) -> list[str]:
    """airsync answers /metrics only to a bearer of METRICS_TOKEN."""
    authorization = job.get("authorization") or {}
    if authorization.get("type", "Bearer") != "Bearer" or not (
        authorization.get("credentials_file") or authorization.get("credentials")
    ):
        return [f"the {name} job gives no bearer token (METRICS_TOKEN) with authorization"]
    return []


def check_dashboard(doc) -> tuple[list[str], str]:
    problems: list[str] = []
    if not isinstance(doc, dict):
        return ["the dashboard is not a JSON object"], ""
    for key in ("title", "uid", "schemaVersion", "panels", "templating"):
        if key not in doc:
            problems.append(f"no {key!r}")
    variables = {v.get("name"): v for v in (doc.get("templating") or {}).get("list", [])}
    datasource_vars = [
        v for v in variables.values() if v.get("type") == "datasource" and v.get("query") == "prometheus"
    ]
    if not datasource_vars:
        problems.append("no datasource variable of type prometheus")
    ds_names = {v["name"] for v in datasource_vars}
    used: set[str] = set()

    def check_datasource(ds, where: str) -> None:
        uid = ds.get("uid") if isinstance(ds, dict) else ds
        if not isinstance(uid, str) or not any(uid in (f"${n}", f"${{{n}}}") for n in ds_names):
            problems.append(f"{where}: datasource {ds!r} is not the datasource variable")

    for name, var in variables.items():
        if var.get("type") != "query":
            continue
        check_datasource(var.get("datasource"), f"variable {name}")
        query = var.get("query")
        query = query.get("query", "") if isinstance(query, dict) else str(query or "")
        match = re.match(r"\s*label_values\((.*),\s*\w+\s*\)\s*$", query)
        expr = match.group(1) if match else query
        problems += unknown_metrics(expr, f"variable {name}")

    ids: list[int] = []
    panels = list(doc.get("panels") or [])
    for panel in list(panels):
        panels += panel.get("panels") or []  # panels inside collapsed rows
    for panel in panels:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        ids.append(panel.get("id"))
        if "gridPos" not in panel:
            problems.append(f"{where}: no gridPos")
        if panel.get("type") == "row":
            continue
        check_datasource(panel.get("datasource"), where)
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        for target in targets:
            expr = target.get("expr", "")
            if not expr:
                problems.append(f"{where}: a target without expr")
            problems += unknown_metrics(expr, where)
            used |= families_used(expr)
            if "datasource" in target:
                check_datasource(target["datasource"], where)
    duplicates = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    if duplicates:
        problems.append(f"panel ids used twice: {duplicates}")
    uncovered = sorted(FAMILIES - used)
    if uncovered:
        problems.append(f"metric families on no panel: {uncovered}")
    return problems, f"{len(panels)} panels, all {len(FAMILIES)} metric families shown"


def env_example_variables() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*#?\s*([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def unknown_variables(text: str, known: set[str], where: str) -> list[str]:
    found = set()
    for match in re.finditer(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", text):
        name = match.group(0)
        if name.startswith(VARIABLE_PREFIXES) and name not in known:
            found.add(name)
    return [f"{where}: {name} is not a variable of .env.example" for name in sorted(found)]


def dockerfile_healthchecks() -> bool:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    return re.search(r"^HEALTHCHECK\s+(?!NONE)", dockerfile, re.M) is not None


def check_compose(doc, known_vars: set[str]) -> list[str]:
    problems: list[str] = []
    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        return ["docker-compose.yml has no services"]
    services = doc["services"]
    declared_volumes = set((doc.get("volumes") or {}).keys())
    for needed in ("postgres", "migrate", "serve", "worker"):
        if needed not in services:
            problems.append(f"no {needed} service")
    if problems:
        return problems

    postgres = services["postgres"]
    if not str(postgres.get("image", "")).startswith("postgres:16"):
        problems.append(f"postgres runs {postgres.get('image')!r}, not PostgreSQL 16")
    if not any(
        str(v).split(":")[0] in declared_volumes and str(v).split(":")[1] == "/var/lib/postgresql/data"
        for v in postgres.get("volumes") or []
    ):
        problems.append("postgres keeps /var/lib/postgresql/data in no named volume")
    if not (postgres.get("healthcheck") or {}).get("test"):
        problems.append("postgres has no health check")

    def command(name: str) -> list[str]:
        value = services[name].get("command") or []
        return value.split() if isinstance(value, str) else [str(v) for v in value]

    if command("migrate") != ["migrate"]:
        problems.append(f"migrate runs {command('migrate')}, not ['migrate']")
    serve = command("serve")
    if serve[:1] != ["serve"] or "--no-worker" not in serve:
        problems.append(f"serve runs {serve}: expected `serve ... --no-worker`")
    worker = command("worker")
    if worker[:1] != ["worker"] or "--metrics-listen" not in worker:
        problems.append(f"worker runs {worker}: expected `worker --metrics-listen ADDR`")

    def healthy(name: str) -> bool:
        service = services.get(name) or {}
        check = service.get("healthcheck")
        if check is not None:
            return not check.get("disable") and bool(check.get("test"))
        return "build" in service and dockerfile_healthchecks()

    if "--metrics-listen" in worker and not healthy("worker"):
        problems.append("the worker serves /api/health but has no health check")

    for name, service in services.items():
        where = f"service {name}"
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        for target, spec in depends.items():
            condition = (spec or {}).get("condition", "service_started")
            if target not in services:
                problems.append(f"{where}: depends on unknown service {target}")
            elif condition == "service_healthy" and not healthy(target):
                problems.append(f"{where}: waits for {target} to be healthy, which has no health check")
            elif condition == "service_completed_successfully" and services[target].get("restart") not in (None, "no"):
                problems.append(f"{where}: waits for {target} to complete, but {target} restarts")
            elif condition not in ("service_started", "service_healthy", "service_completed_successfully"):
                problems.append(f"{where}: unknown condition {condition!r}")
        for volume in service.get("volumes") or []:
            source = str(volume).split(":")[0]
            if source.startswith("."):
                if not (ROOT / source).exists():
                    problems.append(f"{where}: mounts {source}, which does not exist")
            elif source not in declared_volumes:
                problems.append(f"{where}: volume {source} is not declared")
        if "build" in service:
            args = [str(a) for a in (service.get("command") or [])]
            if args and args[0] not in AIRSYNC_COMMANDS:
                problems.append(f"{where}: `airsync {args[0]}` is no airsync command")
            env_files = service.get("env_file") or []
            env_files = [env_files] if isinstance(env_files, (str, dict)) else env_files
            paths = [e if isinstance(e, str) else e.get("path") for e in env_files]
            if ".env" not in paths:
                problems.append(f"{where}: its configuration does not come from .env")

    # Variables set in `environment:` or named in comments.
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    problems += unknown_variables(text, known_vars, "docker-compose.yml")

    for name in ("serve", "worker"):
        depends = services[name].get("depends_on") or {}
        if (depends.get("postgres") or {}).get("condition") != "service_healthy":
            problems.append(f"{name} does not wait for postgres to be healthy")
        if (depends.get("migrate") or {}).get("condition") != "service_completed_successfully":
            problems.append(f"{name} does not wait for migrate to complete")
    return problems


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    out: list[tuple[str, str]] = []
    current = ""
    for line in lines:
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    return out


class DockerIgnore:
    """The exclusion rules of .dockerignore: the last matching pattern
    decides, a pattern that matches a folder covers what is inside."""

    def __init__(self, path: Path) -> None:
        self.rules: list[tuple[bool, re.Pattern]] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            pattern = line[1:] if negate else line
            pattern = pattern.strip("/")
            regex = ""
            for part in re.split(r"(\*\*/?|\*|\?)", pattern):
                if part in ("**", "**/"):
                    regex += "(?:.*/)?" if part == "**/" else ".*"
                elif part == "*":
                    regex += "[^/]*"
                elif part == "?":
                    regex += "[^/]"
                else:
                    regex += re.escape(part)
            self.rules.append((negate, re.compile(regex + r"\Z")))

    def excluded(self, path: str) -> bool:
        parts = path.strip("/").split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for negate, regex in self.rules:
            if any(regex.match(p) for p in prefixes):
                result = not negate
        return result


def check_dockerfile(known_vars: set[str]) -> list[str]:
    problems: list[str] = []
    if not (ROOT / "Dockerfile").is_file():
        return ["no Dockerfile"]
    if not (ROOT / ".dockerignore").is_file():
        return ["no .dockerignore"]
    instructions = dockerfile_instructions()
    args: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = []
    for word, rest in instructions:
        if word == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, rest))

    def expand(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), text)

    if len(stages) < 2:
        return [f"{len(stages)} stage(s): expected a builder and a runtime stage"]
    builder_image = expand(stages[0][0][1]).split()[0]
    runtime_image = expand(stages[-1][0][1]).split()[0]
    if not builder_image.startswith("rust:"):
        problems.append(f"the builder is {builder_image!r}, not a rust image")
    if not re.match(r"debian:[\w.-]*slim$", runtime_image):
        problems.append(f"the runtime is {runtime_image!r}, not a Debian slim image")
    builder_text = " ".join(rest for _, rest in stages[0])
    if "--mount=type=cache" not in builder_text and "cargo chef" not in builder_text:
        problems.append("the builder caches no dependencies (cache mounts or cargo-chef)")
    if "--locked" not in builder_text:
        problems.append("the builder does not build --locked")

    runtime = stages[-1]
    runtime_text = " ".join(rest for _, rest in runtime)
    if "ca-certificates" not in runtime_text:
        problems.append("the runtime does not install ca-certificates")
    users = [rest for word, rest in runtime if word == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the runtime runs as root")

    def last(word: str) -> str | None:
        values = [rest for w, rest in runtime if w == word]
        return values[-1] if values else None

    def exec_form(value: str | None):
        try:
            return json.loads(value) if value else None
        except json.JSONDecodeError:
            return value

    if exec_form(last("ENTRYPOINT")) != ["airsync"]:
        problems.append(f"ENTRYPOINT is {last('ENTRYPOINT')!r}, not [\"airsync\"]")
    if exec_form(last("CMD")) != ["serve", "--listen", "0.0.0.0:8080"]:
        problems.append(f"CMD is {last('CMD')!r}, not [\"serve\", \"--listen\", \"0.0.0.0:8080\"]")
    healthcheck = last("HEALTHCHECK") or ""
    probe = healthcheck
    for word, rest in runtime:
        if word == "COPY" and "--from" not in rest:
            *sources, dest = rest.split()
            if Path(dest).name and Path(dest).name in healthcheck:
                probe += " " + " ".join((ROOT / s).read_text(encoding="utf-8") for s in sources if (ROOT / s).is_file())
    if "/api/health" not in probe:
        problems.append("no HEALTHCHECK on /api/health in the runtime stage")

    ignore = DockerIgnore(ROOT / ".dockerignore")
    for stage in stages:
        for word, rest in stage:
            if word not in ("COPY", "ADD") or "--from" in rest:
                continue
            *sources, _ = [t for t in rest.split() if not t.startswith("--")]
            for source in sources:
                if not (ROOT / source).exists():
                    problems.append(f"{word} {source}: no such file in the build context")
                elif ignore.excluded(source):
                    problems.append(f"{word} {source}: excluded by .dockerignore")
    # What the release build reads must reach it; what must not, must not.
    needed = [
        "Cargo.toml", "Cargo.lock", "config/mapping.toml", "crates/db/migrations",
        "crates/airsync/src/server/ops.html", "crates/airsync/src/main.rs",
    ]
    for path in needed:
        if ignore.excluded(path):
            problems.append(f".dockerignore excludes {path}, which the build needs")
    for path in ("target", ".env", ".git"):
        if not ignore.excluded(path):
            problems.append(f".dockerignore lets {path} into the build context")

    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    problems += unknown_variables(text, known_vars, "Dockerfile")
    return problems


def alert_names(doc) -> set[str]:
    if not isinstance(doc, dict):
        return set()
    return {
        rule["alert"]
        for group in doc.get("groups") or []
        for rule in group.get("rules") or []
        if "alert" in rule
    }


def check_runbooks(known_vars: set[str], alerts: set[str]) -> tuple[list[str], str]:
    problems: list[str] = []
    index = RUNBOOKS / "README.md"
    if not index.is_file():
        return ["docs/runbooks/README.md (the index) is missing"], ""
    pages = sorted(p for p in RUNBOOKS.glob("*.md") if p.name != "README.md")
    names = {p.name for p in pages}
    missing = sorted(REQUIRED_RUNBOOKS - names)
    if missing:
        problems.append(f"required runbooks missing: {missing}")
    index_text = index.read_text(encoding="utf-8")
    for page in pages:
        if f"]({page.name})" not in index_text:
            problems.append(f"README.md does not link {page.name}")
    for page in [index, *pages]:
        text = page.read_text(encoding="utf-8")
        where = rel(page)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            problems += check_target(target, page.parent, where)
        named = {m.group(0) for m in re.finditer(r"\bairsync_[a-z0-9_]+\b(?!=)", text)}
        for name in sorted(named - SERIES - FAMILIES):
            problems.append(f"{where}: unknown metric {name!r}")
        problems += unknown_variables(text, known_vars, where)
        for name in sorted(set(re.findall(r"\bAirsync[A-Z][A-Za-z0-9]+\b", text)) - alerts):
            problems.append(f"{where}: {name} is no alert of alerts.yml")
        if page is index:
            continue
        sections = {github_slug(h) for h in re.findall(r"^## (.+)$", text, re.M)}
        for needed in ("signal", "verify"):
            if needed not in sections:
                problems.append(f"{where}: no '## {needed.capitalize()}' section")
        if not any(section.startswith(("fix", "steps")) for section in sections):
            problems.append(f"{where}: no '## Fix' (or '## Steps') section")
        if not any(f in text for f in FAMILIES) and "/api/health" not in text:
            problems.append(f"{where}: names no metric or health field")
    deploy_readme = DEPLOY / "README.md"
    if deploy_readme.is_file():
        problems += unknown_variables(deploy_readme.read_text(encoding="utf-8"), known_vars, rel(deploy_readme))
    return problems, f"{len(pages)} runbooks and the index"


# --------------------------------------------------------------------------
# promtool


def install_promtool() -> str | None:
    print("      installing Debian's prometheus package for promtool ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    for command in (
        sudo + ["apt-get", "update", "-qq"],
        sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stdout[-2000:] + result.stderr[-2000:])
            return None
    return shutil.which("promtool")


def run_promtool(report: Report, install: bool) -> None:
    promtool = shutil.which("promtool")
    if promtool is None and install:
        promtool = install_promtool()
        if promtool is None:
            report.result("promtool", ["could not install Debian's prometheus package"])
            return
    if promtool is None:
        report.skip(
            "promtool",
            "promtool is not installed; the rules were checked above but not by Prometheus itself "
            "(run with --install, or set CI, to install Debian's prometheus package)",
        )
        return
    prometheus = DEPLOY / "prometheus"
    # promtool checks that a scrape job's credentials file exists; the
    # deployment's lives where Compose puts its secret. The configuration is
    # checked as a copy that points at a stand-in file.
    scratch = Path(tempfile.mkdtemp(prefix="airsync-promtool-"))
    for name in ("alerts.yml", "alerts.test.yml"):
        shutil.copy(prometheus / name, scratch / name)
    token = scratch / "metrics_token"
    token.write_text("stand-in-for-METRICS_TOKEN\n")
    config = (prometheus / "prometheus.yml").read_text()
    (scratch / "prometheus.yml").write_text(config.replace("/run/secrets/metrics_token", str(token)))
    for args in (
        ["check", "rules", "alerts.yml"],
        ["check", "config", "prometheus.yml"],
        ["test", "rules", "alerts.test.yml"],
    ):
        result = subprocess.run([promtool, *args], cwd=scratch, capture_output=True, text=True)
        lines = [line.rstrip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        name = f"promtool {' '.join(args)}"
        if result.returncode == 0:
            said = [line.strip() for line in lines if not line.startswith(("Checking", "Unit Testing"))]
            report.result(name, [], "; ".join(said))
        else:
            report.result(name, lines or [f"exit {result.returncode}"])
    shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--install",
        action="store_true",
        help="install promtool (Debian's prometheus package) when it is missing; implied when CI is set",
    )
    options = parser.parse_args()
    report = Report()

    parsed, problems = parse_all()
    for required in REQUIRED_FILES:
        if not (ROOT / required).is_file():
            problems.append(f"{required} is missing")
    report.result("parse YAML and JSON", problems, f"{len(parsed)} files")
    known_vars = env_example_variables()

    def doc(path: Path):
        return parsed.get(path)

    alerts = doc(DEPLOY / "prometheus" / "alerts.yml")
    if alerts is not None:
        problems, detail = check_alerts(alerts, doc(DEPLOY / "prometheus" / "alerts.test.yml"))
        report.result("alert rules", problems, detail)
    config = doc(DEPLOY / "prometheus" / "prometheus.yml")
    if config is not None:
        report.result("prometheus.yml", check_prometheus_config(config),
                      "scrapes jobs airsync and airsync-worker, loads alerts.yml")
    dashboard = doc(DEPLOY / "grafana" / "airsync-dashboard.json")
    if dashboard is not None:
        problems, detail = check_dashboard(dashboard)
        report.result("grafana dashboard", problems, detail)
    compose = doc(ROOT / "docker-compose.yml")
    if compose is not None:
        report.result("docker-compose.yml", check_compose(compose, known_vars),
                      "postgres 16, migrate, serve --no-worker, worker --metrics-listen")
    report.result("Dockerfile and .dockerignore", check_dockerfile(known_vars),
                  "multi-stage, slim non-root runtime, health check")
    problems, detail = check_runbooks(known_vars, alert_names(alerts))
    report.result("runbooks", problems, detail)

    run_promtool(report, options.install or bool(os.environ.get("CI")))
    return report.summary()


if __name__ == "__main__":
    sys.exit(main())
