"""The checks of scripts/deploy-check.sh, which installs what they need and
runs this with the environment it sets (ROOT, PROMTOOL, PROMETHEUS,
KUSTOMIZE, K8S_VERSIONS, MONGOD_BIN, PROVISIONER_BIN): the Kubernetes
manifests (deploy_check_k8s), docker-compose.yml and .env.example
(deploy_check_compose), the Prometheus rules and their unit tests, and the
Grafana dashboard, whose metric names are checked against the Rust sources
(deploy_check_common), then the same rules and dashboard against a real
Prometheus scraping the running binary (deploy_check_prometheus; with the
argument `live`, only that). Ends with one line
`deploy-check: N passed, M failed`."""
import json
import os
import re
import subprocess
import sys
import tempfile

import yaml

import deploy_check_common as common
import deploy_check_compose
import deploy_check_k8s
import deploy_check_prometheus
from deploy_check_common import MON_DIR, PROMTOOL, SERIES, check, unknown_metrics


def summary():
    print(f"deploy-check: {common.passed} passed, {common.failed} failed")
    sys.exit(1 if common.failed else 0)


if sys.argv[1:] == ["live"]:
    deploy_check_prometheus.run()
    summary()

deploy_check_k8s.run()
deploy_check_compose.run()

# --- Prometheus rules -----------------------------------------------------
alerts_path = os.path.join(MON_DIR, "alerts.yaml")
tests_path = os.path.join(MON_DIR, "alerts_test.yaml")
dashboard_path = os.path.join(MON_DIR, "dashboard.json")


def promtool(*args):
    p = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=MON_DIR)
    if p.returncode != 0:
        return [line for line in (p.stdout + p.stderr).splitlines() if line.strip()][-40:]
    return []


check("promtool check rules alerts.yaml", lambda: promtool("check", "rules", "alerts.yaml"))
check("promtool test rules alerts_test.yaml", lambda: promtool("test", "rules", "alerts_test.yaml"))

alert_rules = [r for g in (yaml.safe_load(open(alerts_path)) or {}).get("groups", []) for r in g.get("rules", []) if "alert" in r]
alert_tests = [t for test in (yaml.safe_load(open(tests_path)) or {}).get("tests", []) for t in test.get("alert_rule_test", [])]
for rule in alert_rules:
    def run(rule=rule):
        problems = []
        ann = rule.get("annotations") or {}
        for a in ("summary", "runbook"):
            if not str(ann.get(a, "")).strip():
                problems.append(f"annotations.{a} is missing")
        if not (rule.get("labels") or {}).get("severity"):
            problems.append("labels.severity is missing")
        cases = [t for t in alert_tests if t.get("alertname") == rule["alert"]]
        if not any(t.get("exp_alerts") for t in cases):
            problems.append("no test case where it fires (alerts_test.yaml)")
        if not any(not t.get("exp_alerts") for t in cases):
            problems.append("no test case where it does not fire (alerts_test.yaml)")
        return problems
    check(f"alert {rule['alert']}: summary, runbook, severity, a firing and a not-firing test", run)

check("metrics in alerts.yaml are exported by the binary",
      lambda: unknown_metrics([(r.get("alert") or r.get("record"), r["expr"]) for g in yaml.safe_load(open(alerts_path))["groups"] for r in g["rules"]]))
check("metrics in alerts_test.yaml input series are exported by the binary",
      lambda: unknown_metrics([("input series", s["series"]) for t in yaml.safe_load(open(tests_path))["tests"] for s in t.get("input_series", [])]))


# --- Grafana dashboard ----------------------------------------------------
def json_tool():
    p = subprocess.run([sys.executable, "-m", "json.tool", dashboard_path], capture_output=True, text=True)
    return [p.stderr.strip()] if p.returncode != 0 else []


check("dashboard.json parses (python3 -m json.tool)", json_tool)


def dashboard_exprs():
    dash = json.load(open(dashboard_path))
    out = []
    def walk(panels):
        for p in panels or []:
            for t in p.get("targets") or []:
                if t.get("expr"):
                    out.append((f"panel {p.get('id')} \"{p.get('title')}\" {t.get('refId')}", t["expr"]))
            walk(p.get("panels"))
    walk(dash.get("panels"))
    for v in (dash.get("templating") or {}).get("list", []):
        q = v.get("query")
        if v.get("type") == "query" and isinstance(q, (str, dict)):
            q = q.get("query") if isinstance(q, dict) else q
            m = re.fullmatch(r"\s*label_values\(\s*(.*?)\s*(?:,\s*\w+\s*)?\)\s*", q or "")
            out.append((f"variable {v.get('name')}", m.group(1) if m else q))
    return out


def dashboard_promql():
    exprs = dashboard_exprs()
    if not exprs:
        return ["no queries"]
    variables = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
    rules = []
    for i, (where, e) in enumerate(exprs):
        for k, v in variables.items():
            e = e.replace(k, v)
        e = re.sub(r"\$\{?(\w+)\}?", "dezky-provisioner", e)
        rules.append({"record": f"dashboard:query_{i}", "expr": e})
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
    try:
        problems = promtool("check", "rules", f.name)
    finally:
        os.unlink(f.name)
    return problems


check("dashboard queries parse as PromQL (promtool check rules)", dashboard_promql)
check("metrics in dashboard.json are exported by the binary", lambda: unknown_metrics(dashboard_exprs()))


def missing_doc():
    text = open(os.path.join(MON_DIR, "MISSING_METRICS.md")).read()
    names = re.findall(r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|", text, re.M)
    if not names:
        return ["lists no metric"]
    return [f"`{n}` is exported now: move its alert/panel into alerts.yaml/dashboard.json (with tests) and drop it from MISSING_METRICS.md"
            for n in names if n in SERIES]


check("MISSING_METRICS.md lists only metrics not exported yet", missing_doc)

# --- the same against a real Prometheus and the running binary -------------
deploy_check_prometheus.run()
summary()
