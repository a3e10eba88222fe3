"""The live monitoring check of scripts/deploy-check.sh: a real Prometheus
(Debian's package) scrapes a running provisioner and answers every query of
deploy/monitoring/dashboard.json and every alert of alerts.yaml.

The stack: `provisioner simulate` (the three simulators on free ports),
`provisioner serve` pointed at them (its embedded mongod in a temporary
directory, RESYNC_INTERVAL 2s), with Authentik reached through a small
proxy in this process that can answer `429` with `Retry-After`, and
`prometheus` scraping `/metrics` every second as job `dezky-provisioner`
(the job the rules and the dashboard select) with alerts.yaml as its rule
file, evaluated every second.

Before querying, what the panels show is made to happen, through the
product's own paths: tenants are created through the API (passes, upstream
requests, snapshots, the change stream, the API's own requests), one
Authentik group create is answered `429` (a 429 status, a pause, a failed
step and its retry), and a tenant's Authentik group is renamed in the
simulator (a drift correction); each is awaited in the binary's /metrics.
Counters of failures with a fixed set of labels (upstream_rejected_total,
upstream_pauses_total, snapshot_lists_total) the binary exports at 0 from
the start, so they need no failure here. Then it waits until Prometheus has
scraped twice more, so every counter has the two samples a `rate()` needs.

The rule, one check per panel and per alert:
- a dashboard panel passes when each of its queries (Grafana's
  `$__rate_interval`, `$__interval` and `$__range` as `5m`, other variables
  as their current value) is accepted by Prometheus and returns at least
  one series: an empty one is a "No data" panel;
- an alert passes when its expression is accepted and every selector in it
  matches a series the binary exported during the run. The expression
  itself is not required to return anything: an alert condition is empty
  in a healthy system by design (`... > 0.1`, `absent(...)`).
A failure names each selector without series (the metric or label value the
binary did not export). Besides: the target is up, and Prometheus loaded
alerts.yaml with every alert and evaluated each without error.

Both processes (and simulate) are stopped at the end, also on failure."""
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

from deploy_check_common import MON_DIR, check, promql_selectors

PROMETHEUS = os.environ["PROMETHEUS"]
PROVISIONER = os.environ["PROVISIONER_BIN"]
MONGOD = os.environ["MONGOD_BIN"]
JOB = "dezky-provisioner"
SCRAPE_INTERVAL = 1  # seconds
# Grafana's built-in variables: any window that holds the run's samples.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "5m", "$__range": "5m"}
# Longest wait for one step (a start, a tenant converging, scrapes).
STEP = 60
# Retry-After of the injected 429: long enough for a retry to be refused.
PAUSE_SECONDS = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exited(RuntimeError):
    """A process of the stack exited: waiting longer is pointless."""


def until(what, probe, limit=STEP, every=0.1):
    """probe()'s first truthy value within `limit` seconds (other exceptions
    than Exited count as not yet), else TimeoutError naming `what`."""
    deadline = time.monotonic() + limit
    last = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except Exited:
            raise
        except Exception as e:  # not up yet: retry until the deadline
            last = e
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {limit}s waiting for {what}" + (f" (last: {last})" if last else ""))
        time.sleep(every)


def request(url, method="GET", body=None, headers=None, timeout=10):
    """(status, parsed JSON or text) of one HTTP request; never raises on a status."""
    data = None if body is None else json.dumps(body).encode()
    h = dict(headers or {})
    if data is not None:
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


# --- a throttling proxy in front of one upstream ---------------------------
class ThrottlingProxy(http.server.ThreadingHTTPServer):
    """Forwards every request to `upstream`, except that the next `n` after
    throttle_next(n) are answered `429` with `Retry-After` (what a
    rate-limited Authentik answers), without reaching it."""

    daemon_threads = True

    def __init__(self, upstream):
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        target = urllib.parse.urlsplit(upstream)
        self.target = (target.hostname, target.port)
        self.lock = threading.Lock()
        self.to_throttle = (0, None)
        self.throttled = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"

    def throttle_next(self, n, method):
        """Answers the next n `method` requests with 429."""
        with self.lock:
            self.to_throttle = (n, method)

    def take_throttle(self, method):
        with self.lock:
            n, throttled_method = self.to_throttle
            if n <= 0 or method != throttled_method:
                return False
            self.to_throttle = (n - 1, throttled_method)
            self.throttled += 1
            return True


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    def forward(self):
        if self.server.take_throttle(self.command):
            body = b'{"detail": "Request was throttled."}'
            self.send_response(429)
            self.send_header("Retry-After", str(PAUSE_SECONDS))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        upstream = http.client.HTTPConnection(*self.server.target, timeout=30)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            payload = answer.read()
            self.send_response(answer.status)
            for k, v in answer.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        finally:
            upstream.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = forward

    def log_message(self, *args):
        pass


# --- the processes ----------------------------------------------------------
class Process:
    """A started command with its output in a file (shown on failure); its
    own process group, so stopping it also stops what it started (serve's
    mongod) if it does not exit on SIGTERM."""

    def __init__(self, name, args, env, workdir):
        self.name = name
        self.log_path = os.path.join(workdir, f"{name}.log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, cwd=workdir)

    def output(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        if self.proc.poll() is not None:
            raise Exited(f"{self.name} exited with {self.proc.returncode}")
        return True

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def tail(text, lines=20):
    return "\n".join(text.splitlines()[-lines:])


class Stack:
    """simulate, the proxy, serve and prometheus. stop() stops whatever
    start() got to start."""

    def __init__(self):
        self.workdir = tempfile.mkdtemp(prefix="deploy-check-prometheus-")
        self.processes = []
        self.proxy = None

    def stop(self):
        for p in reversed(self.processes):
            p.stop()
        self.processes = []
        if self.proxy:
            self.proxy.shutdown()
            self.proxy.server_close()
            self.proxy = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def logs(self):
        """For a failure's report: the last lines of serve (warnings and
        errors only) and of every process that exited."""
        out = []
        for p in self.processes:
            if p.name == "serve" or p.proc.poll() is not None:
                out.append(f"--- {p.name} (last lines)")
                out += tail(p.output()).splitlines()
        return out

    def spawn(self, name, args, env=None):
        p = Process(name, args, env or {}, self.workdir)
        self.processes.append(p)
        return p

    def start(self):
        api_port, mongod_port, prom_port = free_port(), free_port(), free_port()
        listen = f"127.0.0.1:{api_port}"
        self.api = f"http://{listen}"
        self.prometheus = f"http://127.0.0.1:{prom_port}"
        sims = self.spawn("simulate", [PROVISIONER, "simulate", "--authentik-port", "0", "--stalwart-port", "0",
                                       "--ocis-port", "0", "--listen-addr", listen])
        out = until("simulate to print its settings",
                    lambda: sims.alive() and "export TOKEN=" in sims.output() and sims.output())
        self.sims = dict(re.findall(r"^export ([A-Z_]+)=(.*)$", out, re.M))
        self.token = self.sims["TOKEN"]
        self.proxy = ThrottlingProxy(self.sims["AUTHENTIK_API_URL"])
        threading.Thread(target=self.proxy.serve_forever, daemon=True).start()
        env = {k: v for k, v in self.sims.items() if k != "TOKEN"}
        env.update({
            "AUTHENTIK_API_URL": self.proxy.url,
            "LISTEN_ADDR": listen,
            "MONGOD_BIN": MONGOD,
            "MONGOD_DATA_DIR": os.path.join(self.workdir, "mongo"),
            "MONGOD_PORT": str(mongod_port),
            "RESYNC_INTERVAL": "2s",
            "RUST_LOG": "warn",
            "RUST_BACKTRACE": "0",  # a failure's report shows the error, not its frames
        })
        serve = self.spawn("serve", [PROVISIONER, "serve"], env)
        until("serve to be ready (/readyz)", lambda: serve.alive() and request(f"{self.api}/readyz", timeout=2)[0] == 200,
              limit=90)
        config = {
            "global": {"scrape_interval": f"{SCRAPE_INTERVAL}s", "scrape_timeout": f"{SCRAPE_INTERVAL}s",
                       "evaluation_interval": f"{SCRAPE_INTERVAL}s"},
            "rule_files": [os.path.join(MON_DIR, "alerts.yaml")],
            "scrape_configs": [{"job_name": JOB, "metrics_path": "/metrics",
                                "static_configs": [{"targets": [listen]}]}],
        }
        config_path = os.path.join(self.workdir, "prometheus.yml")
        with open(config_path, "w") as f:
            yaml.safe_dump(config, f)
        prom = self.spawn("prometheus", [PROMETHEUS, f"--config.file={config_path}",
                                         f"--storage.tsdb.path={os.path.join(self.workdir, 'tsdb')}",
                                         f"--web.listen-address=127.0.0.1:{prom_port}"])
        until("prometheus to be ready (/-/ready)",
              lambda: prom.alive() and request(f"{self.prometheus}/-/ready", timeout=2)[0] == 200)
        self.started_at = time.time()

    # --- the provisioner's API and metrics ---
    def call(self, method, route, body=None):
        return request(f"{self.api}{route}", method, body, {"Authorization": f"Bearer {self.token}"})

    def metric(self, name, **labels):
        """Sum of the binary's own /metrics samples of `name` with `labels`."""
        _, text = request(f"{self.api}/metrics")
        total = 0.0
        for line in text.splitlines():
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
            if m and m.group(1) == name:
                have = dict(re.findall(r'(\w+)="((?:\\.|[^"\\])*)"', m.group(2) or ""))
                if all(have.get(k) == v for k, v in labels.items()):
                    total += float(m.group(3))
        return total

    # --- prometheus ---
    def query(self, expr):
        """Prometheus' answer to the instant query expr: (error or None, result)."""
        status, body = request(f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else body
            return f"HTTP {status}: {error}", None
        return None, body["data"]["result"]

    def series(self, selector):
        """The series matching selector scraped since the stack started."""
        q = urllib.parse.urlencode({"match[]": selector, "start": f"{self.started_at - 60:.3f}"})
        status, body = request(f"{self.prometheus}/api/v1/series?{q}")
        if not isinstance(body, dict) or body.get("status") != "success":
            raise RuntimeError(f"series {selector}: HTTP {status}: {body}")
        return body["data"]


# --- what the panels show, made to happen -----------------------------------
def converge(stack, slugs):
    def active():
        for slug in slugs:
            status, tenant = stack.call("GET", f"/tenants/{slug}")
            if status != 200 or (tenant.get("status") or {}).get("phase") != "active":
                return False
        return True
    until(f"tenants {', '.join(slugs)} to become active", active)


def make_activity(stack):
    """Creates tenants (one Authentik request answered 429 on the way) and
    corrects a renamed Authentik group; returns when the binary exported
    all of it."""
    status, body = stack.call("GET", "/users/me")
    if status != 200:
        raise RuntimeError(f"GET /users/me answered {status}: {body}")
    stack.proxy.throttle_next(1, "POST")
    tenants = [
        {"slug": "metrics-one", "name": "Metrics One", "plan": "team", "domains": ["metrics-one.test"]},
        {"slug": "metrics-two", "name": "Metrics Two", "plan": "team"},
    ]
    for t in tenants:
        status, body = stack.call("POST", "/tenants", t)
        if status != 201:
            raise RuntimeError(f"POST /tenants {t['slug']} answered {status}: {body}")
    # The group's create answered 429: the step fails, the pass is retried.
    until("the injected 429 to be answered", lambda: stack.proxy.throttled >= 1)
    until("the binary to count the 429, the pause, the failed step and its retry",
          lambda: stack.metric("upstream_requests_total", system="authentik", status="429") >= 1
          and stack.metric("upstream_pauses_total", system="authentik") >= 1
          and stack.metric("reconciles_total", system="authentik", result="error") >= 1
          and stack.metric("reconcile_retries_total") >= 1)
    converge(stack, [t["slug"] for t in tenants])
    # Out-of-band change, as an operator in Authentik's UI would make it.
    authentik = stack.sims["AUTHENTIK_API_URL"]
    auth = {"Authorization": f"Bearer {stack.sims['AUTHENTIK_TOKEN']}"}
    status, page = request(f"{authentik}/api/v3/core/groups/?name=tenant-metrics-two", headers=auth)
    groups = page.get("results") if isinstance(page, dict) else None
    if status != 200 or not groups:
        raise RuntimeError(f"Authentik has no group tenant-metrics-two: {status} {page}")
    status, body = request(f"{authentik}/api/v3/core/groups/{groups[0]['pk']}/", "PATCH",
                           {"name": "metrics-two-renamed-by-hand"}, auth)
    if status != 200:
        raise RuntimeError(f"renaming the group answered {status}: {body}")
    until("the renamed group to be corrected (drift_corrections_total)",
          lambda: stack.metric("drift_corrections_total", system="authentik") >= 1)


def wait_for_scrapes(stack):
    """Until Prometheus has a few scrapes, the last two after the activity."""
    after = time.time() + 2 * SCRAPE_INTERVAL

    def scraped():
        # timestamp() of a plain selector: when the last scrape happened.
        error, result = stack.query(f'timestamp(up{{job="{JOB}"}})')
        if error or not result or float(result[0]["value"][1]) < after:
            return False
        error, result = stack.query(f'sum(count_over_time(up{{job="{JOB}"}}[1h]))')
        return not error and result and float(result[0]["value"][1]) >= 3
    until("Prometheus to scrape the binary after the activity", scraped)


# --- the checks ------------------------------------------------------------
def dashboard_panels():
    """[(panel name, [(refId, expr)])] and the dashboard's variables."""
    dash = json.load(open(os.path.join(MON_DIR, "dashboard.json")))
    variables = dict(GRAFANA_VARIABLES)
    for v in (dash.get("templating") or {}).get("list", []):
        current = (v.get("current") or {}).get("value")
        value = current if isinstance(current, str) and current else v.get("query")
        if v.get("type") in ("textbox", "constant", "custom") and isinstance(value, str):
            variables["$" + v["name"]] = value
    panels = []

    def walk(items):
        for p in items or []:
            targets = [(t.get("refId"), t["expr"]) for t in p.get("targets") or [] if t.get("expr")]
            if targets:
                panels.append((f"panel {p.get('id')} \"{p.get('title')}\"", targets))
            walk(p.get("panels"))
    walk(dash.get("panels"))
    return panels, variables


def substitute(expr, variables):
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${" + name[1:] + "}", variables[name]).replace(name, variables[name])
    return expr


def empty_selectors(stack, expr):
    """The selectors of expr that match no series scraped during the run."""
    out = []
    for _, _, selector in promql_selectors(expr):
        if selector not in out and not stack.series(selector):
            out.append(selector)
    return out


def check_panel(stack, targets, variables):
    problems = []
    for ref, expr in targets:
        expr = substitute(expr, variables)
        error, result = stack.query(expr)
        if error:
            problems.append(f"{ref}: Prometheus refuses `{expr}`: {error}")
        elif not result:
            missing = empty_selectors(stack, expr)
            why = ", ".join(f"no series for `{s}`" for s in missing) or "every selector has series, the operators leave none"
            problems.append(f"{ref}: `{expr}` returns no series ({why})")
    return problems


def check_alert(stack, rule):
    error, _ = stack.query(rule["expr"])
    if error:
        return [f"Prometheus refuses the expression: {error}"]
    return [f"no series for `{s}` (the binary did not export it)" for s in empty_selectors(stack, rule["expr"])]


def check_rules_loaded(stack, alerts):
    def evaluated():
        status, body = request(f"{stack.prometheus}/api/v1/rules?type=alert")
        rules = {r["name"]: r for g in body["data"]["groups"] for r in g["rules"]}
        if any(rules.get(a["alert"], {}).get("health") == "unknown" for a in alerts):
            return None
        return rules
    rules = until("Prometheus to evaluate the rules", evaluated)
    problems = []
    for a in alerts:
        r = rules.get(a["alert"])
        if r is None:
            problems.append(f"{a['alert']} is not loaded")
        elif r.get("health") != "ok":
            problems.append(f"{a['alert']}: health {r.get('health')}: {r.get('lastError')}")
    return problems


def run():
    alerts = [r for g in yaml.safe_load(open(os.path.join(MON_DIR, "alerts.yaml")))["groups"]
              for r in g["rules"] if "alert" in r]
    panels, variables = dashboard_panels()
    started = time.monotonic()
    stack = Stack()
    ready = False

    def start():
        nonlocal ready
        try:
            stack.start()
            make_activity(stack)
            wait_for_scrapes(stack)
        except Exception as e:
            return [f"{type(e).__name__}: {e}"] + stack.logs()
        ready = True
        return []

    try:
        check("live: simulate, serve and prometheus start; tenants converge past a 429 and a drift; scraped", start)
        if not ready:
            return
        check(f"live: Prometheus scrapes the binary as job=\"{JOB}\" (target up)",
              lambda: [] if stack.query(f'up{{job="{JOB}"}} == 1')[1] else ["the target is not up"])
        check("live: Prometheus loaded alerts.yaml (every alert, evaluated without error)",
              lambda: check_rules_loaded(stack, alerts))
        for name, targets in panels:
            check(f"live: dashboard {name} returns series", lambda t=targets: check_panel(stack, t, variables))
        for rule in alerts:
            check(f"live: alert {rule['alert']} parses and its selectors have series", lambda r=rule: check_alert(stack, r))
    finally:
        stack.stop()
        print(f"       live check: {len(panels)} panels, {len(alerts)} alerts, {time.monotonic() - started:.1f}s")
