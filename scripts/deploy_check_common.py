"""What the checks of scripts/deploy-check.sh share: the settings it passes
in the environment (ROOT, PROMTOOL, KUSTOMIZE, K8S_VERSIONS), the
one-line-per-check runner, the env and metric names the binary really has
(clap `env = "..."` and the `metrics::` macros in the Rust sources) and the
PromQL selector reader."""
import glob
import os
import re
import sys


ROOT = os.environ["ROOT"]
PROMTOOL = os.environ["PROMTOOL"]
KUSTOMIZE = os.environ["KUSTOMIZE"].split()
K8S_VERSIONS = os.environ["K8S_VERSIONS"].split()
K8S_DIR = os.path.join(ROOT, "deploy/kubernetes")
MON_DIR = os.path.join(ROOT, "deploy/monitoring")
# Custom resources: no schema in kubernetes-validate; checked for shape only.
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
# Labels Prometheus adds to every scraped series (target labels).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}

passed = failed = 0


def check(name, fn):
    """Runs one check: fn returns a list of problems (empty = passed)."""
    global passed, failed
    try:
        problems = fn() or []
    except Exception as e:  # a crash is a failed check, with its reason
        problems = [f"{type(e).__name__}: {e}"]
    if problems:
        failed += 1
        print(f"FAIL {name}")
        for p in problems:
            print(f"       {p}")
    else:
        passed += 1
        print(f"ok   {name}")
    sys.stdout.flush()


def rel(path):
    return os.path.relpath(path, ROOT)


# --- what the binary has ------------------------------------------------
def rust_sources(dirs):
    files = []
    for d in dirs:
        files += glob.glob(os.path.join(ROOT, d, "**/*.rs"), recursive=True)
    return [f for f in files if "/target/" not in f]


# clap `env = "NAME"` attributes of the crates the issue names.
ENV_NAMES = set()
for f in rust_sources(["src", "api/src", "controller/src", "core/src", "cli/src"]):
    ENV_NAMES |= set(re.findall(r'\benv\s*=\s*"([A-Z][A-Z0-9_]*)"', open(f).read()))

# metrics::counter!/gauge!/histogram!("name", "label" => ..., ...) in every
# crate's src/. Counters are written with their `_total` and the exporter
# (metrics-exporter-prometheus) adds nothing to them; histograms are exported
# as `_bucket` (le) / `_sum` / `_count` when buckets are configured
# (PrometheusBuilder::set_buckets in src/telemetry.rs), else as summaries
# (`name{quantile}`, `_sum`, `_count`).
SERIES = {}  # exported series name -> set of label names
MACRO = re.compile(r'metrics::(counter|gauge|histogram)!\(\s*"([^"]+)"')
crates = ["src"] + [os.path.relpath(d, ROOT) for d in glob.glob(os.path.join(ROOT, "*/src"))]
telemetry = open(os.path.join(ROOT, "src/telemetry.rs")).read()
BUCKETS = "set_buckets(" in telemetry or "set_buckets_for_metric(" in telemetry
for f in rust_sources(crates):
    text = open(f).read()
    for m in MACRO.finditer(text):
        kind, name = m.groups()
        end = text.find(";", m.end())
        segment = text[m.end(): end if end != -1 else len(text)]
        labels = set(re.findall(r'"([A-Za-z_][A-Za-z0-9_]*)"\s*=>', segment))
        if kind == "histogram":
            names = {name + "_sum": labels, name + "_count": labels}
            if BUCKETS:
                names[name + "_bucket"] = labels | {"le"}
            else:
                names[name] = labels | {"quantile"}
        else:
            names = {name: labels}
        for n, ls in names.items():
            SERIES.setdefault(n, set()).update(ls)

# --- PromQL: the metric names and matcher labels of an expression ------
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "atan2", "inf", "nan", "start", "end",
}


def promql_selectors(expr):
    """[(metric, {labels in its matchers}, its text in expr)] of every
    selector in expr (dashboard variables replaced by `5m`). What is not a
    selector is blanked out with as many spaces, so a match's position is
    its position in the text."""
    e = expr
    for var in ("$__rate_interval", "$__interval", "$__range"):
        e = e.replace(var, "5m")
    text = e
    blank = lambda m: " " * len(m.group(0))
    quoted = r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`'
    e = re.sub(quoted, lambda m: m.group(0)[0] + " " * (len(m.group(0)) - 2) + m.group(0)[-1], e)
    e = re.sub(r"\[[^\]]*\]", blank, e)  # ranges and subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", blank, e)
    e = re.sub(r"\boffset\s+-?\w+", blank, e)
    found = []

    def selector(m):
        name, matchers = m.group(1), m.group(2)
        labels = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
        if name and name.lower() not in KEYWORDS:
            found.append((name, labels, text[m.start():m.end()]))
        return blank(m)

    e = re.sub(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}", selector, e)
    e = re.sub(r"(?<![A-Za-z0-9_:.])\d+(\.\d+)?([eE][+-]?\d+)?", blank, e)  # numbers
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", e):
        word = m.group(0)
        if word.lower() in KEYWORDS or re.match(r"\s*\(", e[m.end():]):
            continue  # a keyword or a function / aggregation
        found.append((word, set(), word))
    return found


def unknown_metrics(exprs):
    """Problems for every metric or matcher label the binary does not export."""
    problems = []
    for where, expr in exprs:
        for name, labels, _ in promql_selectors(expr):
            if name not in SERIES:
                hint = ""
                for suffix in ("_bucket", "_sum", "_count"):
                    if name.endswith(suffix) and name[: -len(suffix)] + "_count" not in SERIES:
                        hint = " (no histogram of that name)"
                if name + "_count" in SERIES and name + "_bucket" in SERIES:
                    hint = " (a histogram: use _bucket, _sum or _count)"
                problems.append(f"{where}: metric `{name}` is not exported by the binary{hint}")
                continue
            extra = labels - SERIES[name] - TARGET_LABELS - {"__name__"}
            for label in sorted(extra):
                problems.append(f"{where}: `{name}` has no label `{label}` (it has: {', '.join(sorted(SERIES[name])) or 'none'})")
    return problems

