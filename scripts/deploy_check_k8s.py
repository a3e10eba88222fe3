"""The Kubernetes checks of scripts/deploy-check.sh: every kustomization
under deploy/kubernetes rendered (or built file by file without kustomize)
and validated against the Kubernetes schemas, its env names against the
binary's, credentials read as files (`*_FILE` env into a mounted Secret)
against the Secret's keys, LISTEN_ADDR, pod hardening and the wiring of
Service, ServiceMonitor, PDB, NetworkPolicy and ConfigMaps."""
import glob
import os
import re
import subprocess

import yaml
import kubernetes_validate as kv
from kubernetes_validate import utils as kvu

from deploy_check_common import CRDS, ENV_NAMES, K8S_DIR, K8S_VERSIONS, KUSTOMIZE, check, rel

def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def kustomization_of(d):
    for n in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if os.path.exists(os.path.join(d, n)):
            return os.path.join(d, n)
    return None


def generator_files(gen):
    out = []
    envs = gen.get("envs") or []
    if gen.get("env"):
        envs = envs + [gen["env"]]
    out += [("envs", e) for e in envs]
    for f in gen.get("files") or []:
        out.append(("files", f.split("=", 1)[1] if "=" in f else f))
    return out


def check_kustomization(d):
    k = kustomization_of(d)
    if not k:
        return [f"{rel(d)}: no kustomization.yaml"]
    spec = yaml.safe_load(open(k)) or {}
    problems = []
    for field in ("resources", "bases", "components"):
        for r in spec.get(field) or []:
            if "://" in r or r.startswith("github.com/"):
                problems.append(f"{rel(k)}: {field}: remote `{r}` (must be local)")
                continue
            p = os.path.normpath(os.path.join(d, r))
            if os.path.isdir(p):
                if not kustomization_of(p):
                    problems.append(f"{rel(k)}: {field}: `{r}` is a directory without kustomization.yaml")
            elif not os.path.isfile(p):
                problems.append(f"{rel(k)}: {field}: `{r}` does not exist")
    for field in ("configMapGenerator", "secretGenerator"):
        for gen in spec.get(field) or []:
            for _, f in generator_files(gen):
                if not os.path.isfile(os.path.join(d, f)):
                    problems.append(f"{rel(k)}: {field} {gen.get('name')}: `{f}` does not exist")
    for field in ("patchesStrategicMerge",):
        for p in spec.get(field) or []:
            if not os.path.isfile(os.path.join(d, p)):
                problems.append(f"{rel(k)}: {field}: `{p}` does not exist")
    for p in spec.get("patches") or []:
        if isinstance(p, dict) and p.get("path") and not os.path.isfile(os.path.join(d, p["path"])):
            problems.append(f"{rel(k)}: patches: `{p['path']}` does not exist")
    return problems


def parse_env_file(path):
    data = {}
    for line in open(path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        data[key.strip()] = value
    return data


def build_without_kustomize(d):
    """Every resource file on its own, plus the generators' ConfigMaps and
    Secrets (unhashed names, merge/replace applied); no other transformer."""
    spec = yaml.safe_load(open(kustomization_of(d))) or {}
    out = []
    for r in (spec.get("resources") or []) + (spec.get("bases") or []):
        p = os.path.normpath(os.path.join(d, r))
        if os.path.isdir(p):
            out += build_without_kustomize(p)
        else:
            for doc in load_yaml_docs(p):
                out.append((rel(p), doc))
    for field, kind in (("configMapGenerator", "ConfigMap"), ("secretGenerator", "Secret")):
        for gen in spec.get(field) or []:
            data = {}
            for how, f in generator_files(gen):
                path = os.path.join(d, f)
                if how == "envs":
                    data.update(parse_env_file(path))
            for f in gen.get("files") or []:
                key, _, path = f.partition("=") if "=" in f else (os.path.basename(f), "", f)
                data[key] = open(os.path.join(d, path)).read()
            for lit in gen.get("literals") or []:
                key, _, value = lit.partition("=")
                data[key] = value
            name = gen["name"]
            existing = [x for x in out if x[1].get("kind") == kind and x[1]["metadata"]["name"] == name]
            behavior = gen.get("behavior", "create")
            if existing and behavior == "merge":
                existing[0][1].setdefault("data", {}).update(data)
            elif existing and behavior == "replace":
                existing[0][1]["data"] = data
            else:
                obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, "data": data}
                if kind == "Secret":
                    obj["stringData"] = obj.pop("data")
                out.append((f"{rel(kustomization_of(d))} ({field})", obj))
    return out


def pod_specs(resources):
    for _, r in resources:
        kind = r.get("kind")
        if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            yield r, r["spec"]["template"]
        elif kind == "CronJob":
            yield r, r["spec"]["jobTemplate"]["spec"]["template"]


def find(resources, kind, name):
    for _, r in resources:
        if r.get("kind") == kind and r.get("metadata", {}).get("name") == name:
            return r
    return None


def config_value(resources, container, env_name):
    for e in container.get("env") or []:
        if e.get("name") == env_name and "value" in e:
            return e["value"]
    for src in container.get("envFrom") or []:
        ref = src.get("configMapRef")
        if ref:
            cm = find(resources, "ConfigMap", ref["name"])
            if cm and env_name in (cm.get("data") or {}):
                return cm["data"][env_name]
    return None


def check_schema(where, r):
    def run():
        key = (r.get("apiVersion"), r.get("kind"))
        if not r.get("apiVersion") or not r.get("kind") or not (r.get("metadata") or {}).get("name"):
            return [f"{where}: apiVersion, kind and metadata.name are required"]
        if key in CRDS:
            spec = r.get("spec") or {}
            problems = []
            if not isinstance(spec.get("selector"), dict):
                problems.append("spec.selector must be a label selector")
            eps = spec.get("endpoints")
            if not isinstance(eps, list) or not eps or not all(isinstance(e, dict) and (e.get("port") or e.get("targetPort")) for e in eps):
                problems.append("spec.endpoints must list endpoints with a port")
            return problems
        problems = []
        for v in K8S_VERSIONS:
            try:
                kv.validate(r, v, strict=True)
            except kvu.SchemaNotFoundError as e:
                problems.append(f"{e.message} (not a CRD this check knows)")
            except kv.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                problems.append(f"Kubernetes {v}: {path or '(root)'}: {e.message}")
        return problems
    kind = r.get("kind", "?")
    name = (r.get("metadata") or {}).get("name", "?")
    note = "YAML shape only (CRD)" if (r.get("apiVersion"), kind) in CRDS else f"schemas {', '.join(K8S_VERSIONS)}, strict"
    check(f"schema {where}: {kind}/{name} ({note})", run)


def check_env_names(label, resources):
    def run():
        problems = []
        used = {}  # env name -> where
        read_secret_keys = {}
        for w, pod in pod_specs(resources):
            for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", []):
                cw = f"{w['kind']}/{w['metadata']['name']} container {c['name']}"
                names = set()  # this container's env names
                for e in c.get("env") or []:
                    names.add(e["name"])
                    used.setdefault(e["name"], f"{cw} env")
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        read_secret_keys.setdefault(ref["name"], set()).add(ref["key"])
                for src in c.get("envFrom") or []:
                    prefix = src.get("prefix", "")
                    for kind, field in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                        ref = src.get(field)
                        if not ref:
                            continue
                        obj = find(resources, kind, ref["name"])
                        if obj is None:
                            if not ref.get("optional"):
                                problems.append(f"{cw}: envFrom {kind} `{ref['name']}` is not in the manifests, so its env names cannot be checked")
                            continue
                        keys = set((obj.get("data") or {})) | set((obj.get("stringData") or {}))
                        if kind == "Secret":
                            read_secret_keys.setdefault(ref["name"], set()).update(keys)
                        for k in keys:
                            names.add(prefix + k)
                            used.setdefault(prefix + k, f"{cw} envFrom {kind} {ref['name']}")
                for name in sorted(n for n in names & ENV_NAMES if n.endswith("_FILE") and n[: -len("_FILE")] in names):
                    problems.append(f"{cw}: both `{name[: -len('_FILE')]}` and `{name}` are set (the binary refuses to start: set one)")
        # Keys read as files: a *_FILE env pointing into a mounted Secret.
        for ref in secret_files(resources):
            for secret, key in ref["candidates"]:
                read_secret_keys.setdefault(secret, set()).add(key)
        if not used:
            problems.append("no container sets any env")
        for name in sorted(used):
            if name not in ENV_NAMES:
                hint = ""
                if name.endswith("_FILE") and name[: -len("_FILE")] in ENV_NAMES:
                    hint = f"; the binary takes `{name[: -len('_FILE')]}` only as a value, not from a file"
                problems.append(f"env `{name}` ({used[name]}) is not an env the binary accepts (no clap `env = \"{name}\"` in src/, api/, controller/, core/, cli/{hint})")
        for _, r in resources:
            if r.get("kind") == "Secret" and r["metadata"]["name"] in read_secret_keys:
                keys = set((r.get("data") or {})) | set((r.get("stringData") or {}))
                for k in sorted(keys - read_secret_keys[r["metadata"]["name"]]):
                    problems.append(f"Secret {r['metadata']['name']}: key `{k}` is read by no container (typo?)")
        return problems
    check(f"env names {label}: every env the manifests set (*_FILE too) is one the binary accepts, every Secret key is read", run)


# --- credentials as files: *_FILE env pointing into a mounted Secret -----
EXAMPLE_DIR = os.path.join(K8S_DIR, "overlays/example")


def secret_sources(volume):
    """[(Secret name, {file -> key}, or None when every key is a file of its
    own name)] that a volume shows: a secret volume, or the secret sources
    of a projected one; [] for any other volume."""
    def items(s):
        return {i["path"]: i["key"] for i in s["items"]} if s.get("items") else None
    if volume.get("secret"):
        return [(volume["secret"].get("secretName"), items(volume["secret"]))]
    sources = (volume.get("projected") or {}).get("sources") or []
    return [(x["secret"].get("name"), items(x["secret"])) for x in sources if x.get("secret")]


def file_envs(resources, c):
    """[(name, path, how)] of the container's *_FILE env with a literal
    value: its env, and its envFrom ConfigMaps where env does not override."""
    out = [(e["name"], e["value"], "env") for e in c.get("env") or [] if e["name"].endswith("_FILE") and "value" in e]
    own = {e["name"] for e in c.get("env") or []}
    for src in c.get("envFrom") or []:
        ref = src.get("configMapRef")
        cm = find(resources, "ConfigMap", ref["name"]) if ref else None
        for k, v in sorted(((cm or {}).get("data") or {}).items()):
            name = src.get("prefix", "") + k
            if name.endswith("_FILE") and name not in own:
                out.append((name, v, f"envFrom ConfigMap {ref['name']}"))
    return out


def secret_files(resources):
    """Where every *_FILE env of every container points, as dicts: where,
    env, path, candidates [(Secret, key)] (the keys that file can be; [] if
    it is no key of a mounted Secret) and problem (None, or why the file is
    wrong). Files in volumes other than Secrets are left alone."""
    out = []
    for w, pod in pod_specs(resources):
        volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
        for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", []):
            cw = f"{w['kind']}/{w['metadata']['name']} container {c['name']}"
            for name, path, how in file_envs(resources, c):
                ref = {"where": f"{cw} {how}", "env": name, "path": path, "candidates": [], "problem": None}
                out.append(ref)
                mounts = [m for m in c.get("volumeMounts") or []
                          if path == m["mountPath"].rstrip("/") or path.startswith(m["mountPath"].rstrip("/") + "/")]
                if not mounts:
                    ref["problem"] = "is under no volume mount of the container (the image holds no credentials)"
                    continue
                m = max(mounts, key=lambda m: len(m["mountPath"].rstrip("/")))
                sources = secret_sources(volumes.get(m["name"]) or {})
                if not sources:
                    continue
                rest = path[len(m["mountPath"].rstrip("/")):].strip("/")
                sub = m.get("subPath") or m.get("subPathExpr") or ""
                file = "/".join(x for x in (sub, rest) if x)
                if sub:
                    ref["problem"] = (f"is in a subPath mount of volume {m['name']}: kubelet does not update those when the "
                                      "Secret changes, so a rotation is never seen (mount the volume as a directory)")
                for secret, items in sources:
                    if items is None and file and "/" not in file:
                        ref["candidates"].append((secret, file))
                    elif items is not None and file in items:
                        ref["candidates"].append((secret, items[file]))
                if not ref["candidates"]:
                    ref["problem"] = (f"is no file of the Secret {', '.join(f'`{s}`' for s, _ in sources)} mounted at "
                                      f"{m['mountPath']} (volume {m['name']}): the file name must be a key"
                                      + (" or an item's path" if any(i is not None for _, i in sources) else ""))
    return out


def check_secret_files(label, resources):
    """Every *_FILE env pointing into a mounted Secret names a key that
    Secret defines: the one in these manifests, else the example overlay's
    (the base has none). A missing key is a missing file, which fails the
    start whenever that system's URL is set."""
    def run():
        problems = []
        for ref in secret_files(resources):
            head = f"{ref['where']}: {ref['env']}={ref['path']}"
            if ref["problem"]:
                problems.append(f"{head} {ref['problem']}")
            missing = []
            for secret, key in ref["candidates"]:
                obj, origin = find(resources, "Secret", secret), label
                if obj is None and kustomization_of(EXAMPLE_DIR):
                    obj, origin = find(load(EXAMPLE_DIR)[0], "Secret", secret), rel(EXAMPLE_DIR)
                if obj is None:
                    missing.append(f"Secret `{secret}` is neither in {label} nor in {rel(EXAMPLE_DIR)}, so its keys cannot be checked")
                    continue
                keys = set((obj.get("data") or {})) | set((obj.get("stringData") or {}))
                if key in keys:
                    missing = []
                    break
                missing.append(f"key `{key}` is not in Secret {secret} of {origin} (it has: {', '.join(sorted(keys)) or 'none'})")
            problems += [f"{head}: {m}" for m in missing]
        return problems
    check(f"secret files {label}: every *_FILE into a mounted Secret names a key of it (no subPath)", run)


def check_listen_addr(label, resources):
    def run():
        problems = []
        for w, pod in pod_specs(resources):
            for c in pod["spec"]["containers"]:
                value = config_value(resources, c, "LISTEN_ADDR")
                ports = {str(p["containerPort"]) for p in c.get("ports") or []}
                where = f"{w['kind']}/{w['metadata']['name']} container {c['name']}"
                if value is None:
                    problems.append(f"{where}: LISTEN_ADDR unset (the default 127.0.0.1:3000 is unreachable in a pod)")
                elif not re.fullmatch(r"0\.0\.0\.0:(\d+)", value) or value.split(":")[1] not in ports:
                    problems.append(f"{where}: LISTEN_ADDR={value}: must be 0.0.0.0:<a containerPort> (ports {sorted(ports)})")
        return problems
    check(f"LISTEN_ADDR {label}: 0.0.0.0 on the container port", run)


def check_pod_hardening(label, resources):
    def run():
        problems = []
        for w, pod in pod_specs(resources):
            ps = pod["spec"]
            psc = ps.get("securityContext") or {}
            for c in ps["containers"]:
                where = f"{w['kind']}/{w['metadata']['name']} container {c['name']}"
                sc = c.get("securityContext") or {}
                def need(cond, what):
                    if not cond:
                        problems.append(f"{where}: needs {what}")
                need(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, "runAsNonRoot: true")
                need(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem: true")
                need(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
                need("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), "capabilities.drop: [ALL]")
                seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
                need(seccomp in ("RuntimeDefault", "Localhost"), "seccompProfile RuntimeDefault")
                need(((c.get("livenessProbe") or {}).get("httpGet") or {}).get("path") == "/healthz", "livenessProbe GET /healthz")
                need(((c.get("readinessProbe") or {}).get("httpGet") or {}).get("path") == "/readyz", "readinessProbe GET /readyz")
                res = c.get("resources") or {}
                for part in ("requests", "limits"):
                    for what in ("cpu", "memory"):
                        need(what in (res.get(part) or {}), f"resources.{part}.{what}")
                names = {p.get("name") for p in c.get("ports") or []} | {p.get("containerPort") for p in c.get("ports") or []}
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                    if port is not None and port not in names:
                        problems.append(f"{where}: {probe} port `{port}` is not a container port")
        if not list(pod_specs(resources)):
            problems.append("no workload")
        return problems
    check(f"pod security {label}: restricted securityContext, probes, requests and limits", run)


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def check_wiring(label, resources):
    def run():
        problems = []
        pods = [(w, p) for w, p in pod_specs(resources)]
        def pods_selected(sel):
            return [w for w, p in pods if matches(sel, (p.get("metadata") or {}).get("labels") or {})]
        def container_ports(w):
            pod = w["spec"]["template"]
            out = set()
            for c in pod["spec"]["containers"]:
                for p in c.get("ports") or []:
                    out |= {p.get("name"), p.get("containerPort")}
            return out
        services = [r for _, r in resources if r.get("kind") == "Service"]
        for s in services:
            selected = pods_selected(s["spec"].get("selector"))
            if not selected:
                problems.append(f"Service/{s['metadata']['name']}: selects no pod")
            for p in s["spec"].get("ports") or []:
                for w in selected:
                    if p.get("targetPort", p.get("port")) not in container_ports(w):
                        problems.append(f"Service/{s['metadata']['name']}: targetPort `{p.get('targetPort')}` is no port of {w['kind']}/{w['metadata']['name']}")
        for _, r in resources:
            kind, name = r.get("kind"), r.get("metadata", {}).get("name")
            if kind == "ServiceMonitor":
                sel = (r["spec"].get("selector") or {}).get("matchLabels")
                svcs = [s for s in services if matches(sel, s["metadata"].get("labels") or {})]
                if not svcs:
                    problems.append(f"ServiceMonitor/{name}: selects no Service")
                for e in r["spec"].get("endpoints") or []:
                    for s in svcs:
                        if e.get("port") and e["port"] not in {p.get("name") for p in s["spec"].get("ports") or []}:
                            problems.append(f"ServiceMonitor/{name}: port `{e['port']}` is no port name of Service/{s['metadata']['name']}")
            elif kind == "PodDisruptionBudget":
                if not pods_selected((r["spec"].get("selector") or {}).get("matchLabels")):
                    problems.append(f"PodDisruptionBudget/{name}: selects no pod")
            elif kind == "NetworkPolicy":
                selected = pods_selected((r["spec"].get("podSelector") or {}).get("matchLabels"))
                if not selected:
                    problems.append(f"NetworkPolicy/{name}: selects no pod")
                for rule in r["spec"].get("ingress") or []:
                    for p in rule.get("ports") or []:
                        for w in selected:
                            if p.get("port") not in container_ports(w):
                                problems.append(f"NetworkPolicy/{name}: ingress port `{p.get('port')}` is no port of {w['kind']}/{w['metadata']['name']}")
        for w, pod in pods:
            where = f"{w['kind']}/{w['metadata']['name']}"
            for v in pod["spec"].get("volumes") or []:
                cm = v.get("configMap")
                if cm and not cm.get("optional") and not find(resources, "ConfigMap", cm["name"]):
                    problems.append(f"{where}: volume {v['name']}: ConfigMap `{cm['name']}` is not in the manifests")
            for c in pod["spec"]["containers"]:
                for src in c.get("envFrom") or []:
                    ref = src.get("configMapRef")
                    if ref and not ref.get("optional") and not find(resources, "ConfigMap", ref["name"]):
                        problems.append(f"{where}: envFrom ConfigMap `{ref['name']}` is not in the manifests")
                mounts = {m["name"] for m in c.get("volumeMounts") or []}
                for m in mounts - {v["name"] for v in pod["spec"].get("volumes") or []}:
                    problems.append(f"{where}: volumeMount `{m}` has no volume")
            for c in pod["spec"]["containers"]:
                ca = config_value(resources, c, "EXTRA_CA_CERTS")
                if ca is None:
                    continue
                mount = next((m for m in c.get("volumeMounts") or [] if ca.startswith(m["mountPath"].rstrip("/") + "/")), None)
                volume = next((v for v in pod["spec"].get("volumes") or [] if mount and v["name"] == mount["name"]), None)
                cm = find(resources, "ConfigMap", (volume or {}).get("configMap", {}).get("name"))
                key = ca[len(mount["mountPath"].rstrip("/")) + 1:] if mount else None
                if cm is None or key not in (cm.get("data") or {}):
                    problems.append(f"{where}: EXTRA_CA_CERTS={ca} is no key of a ConfigMap mounted at its directory")
            sa = pod["spec"].get("serviceAccountName")
            if sa and not find(resources, "ServiceAccount", sa):
                problems.append(f"{where}: ServiceAccount `{sa}` is not in the manifests")
        return problems
    check(f"wiring {label}: Service, ServiceMonitor, PDB, NetworkPolicy, ConfigMaps, volumes and EXTRA_CA_CERTS fit the pods", run)


LOADED = {}  # kustomization directory -> (resources, problems)


def load(d):
    """([(where, resource)], problems) of the kustomization in d, rendered
    by kustomize if there is one, else built file by file; once per d (the
    base's checks also read the example overlay's Secret)."""
    if d not in LOADED:
        label = rel(d)
        if KUSTOMIZE:
            p = subprocess.run(KUSTOMIZE + [d], capture_output=True, text=True)
            if p.returncode != 0:
                LOADED[d] = ([], [line for line in (p.stderr or p.stdout).strip().splitlines()[-20:]])
            else:
                docs = [x for x in yaml.safe_load_all(p.stdout) if x]
                LOADED[d] = ([(f"{label} (rendered)", r) for r in docs], [] if docs else ["renders nothing"])
        else:
            LOADED[d] = (build_without_kustomize(d), [])
    return LOADED[d]


def run():
    """Every kustomization directory, each check once."""
    kustomize_dirs = [os.path.join(K8S_DIR, "base")] + sorted(
        d for d in glob.glob(os.path.join(K8S_DIR, "overlays/*")) if kustomization_of(d))
    for d in kustomize_dirs:
        label = rel(d)
        check(f"kustomization {label}: referenced resources and generator files exist", lambda d=d: check_kustomization(d))
        if KUSTOMIZE:
            check(f"render {label} ({' '.join(KUSTOMIZE)})", lambda d=d: load(d)[1])
        else:
            check(f"load {label} (each file on its own; no kustomize)", lambda d=d: load(d)[1])
        resources = LOADED.get(d, ([], []))[0]
        for where, r in resources:
            check_schema(where, r)
        if resources:
            check_env_names(label, resources)
            check_secret_files(label, resources)
            check_listen_addr(label, resources)
            check_pod_hardening(label, resources)
            check_wiring(label, resources)
