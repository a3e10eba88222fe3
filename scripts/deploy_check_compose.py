"""The docker-compose checks of scripts/deploy-check.sh (no container engine
needed): docker-compose.yml parses and pins its images, the provisioner's
env names are the binary's, its credentials files are compose secrets,
every `${VAR}` the file interpolates is in .env.example, the provisioner
reaches the upstreams and the issuer by their public hostnames (never a
compose service name: tokens carry the public issuer), those names resolve
inside its container, and EXTRA_CA_CERTS is a file mounted read-only.

Values are checked as compose would see them with .env copied from
.env.example."""
import ipaddress
import os
import re
from urllib.parse import urlsplit

import yaml

from deploy_check_common import ENV_NAMES, ROOT, check, rel

COMPOSE = os.path.join(ROOT, "docker-compose.yml")
ENV_EXAMPLE = os.path.join(ROOT, ".env.example")
SERVICE = "provisioner"
# The upstreams' images and the tag prefix the project is tested against
# (README "What each upstream needs"; MongoDB: scripts/install-mongod.sh).
TESTED = {
    "mongo": "6.0",
    "ghcr.io/goauthentik/server": "2025.12.",
    "stalwartlabs/stalwart": "v0.16.",
    "owncloud/ocis": "7.0.",
}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# --- compose's .env and interpolation -----------------------------------
def parse_dotenv(path):
    """{name: value} of a compose .env file (KEY=VALUE lines, `#` comments,
    optional `export`, optional quotes)."""
    out = {}
    for n, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not NAME.fullmatch(key):
            raise ValueError(f"{rel(path)}:{n}: not a NAME=value line: {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = re.sub(r"\s+#.*$", "", value)
        out[key] = value
    return out


def substitute(s, env, used):
    """s with compose's interpolation applied from env: `$$`, `$NAME`,
    `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?err}`,
    `${NAME?err}`, `${NAME:+alt}`, `${NAME+alt}` (nested in defaults too).
    Every name met, defaults included, is added to used."""
    out, i = [], 0
    while i < len(s):
        if s[i] != "$":
            out.append(s[i])
            i += 1
            continue
        nxt = s[i + 1: i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            depth, j = 1, i + 2
            while j < len(s) and depth:
                depth += {"{": 1, "}": -1}.get(s[j], 0)
                j += 1
            if depth:
                raise ValueError(f"unclosed `${{` in {s!r}")
            body = s[i + 2: j - 1]
            m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", body, re.S)
            if not m:
                raise ValueError(f"invalid interpolation `${{{body}}}` in {s!r}")
            name, op, arg = m.groups()
            used.add(name)
            value = env.get(name)
            ok = bool(value) if op and op.startswith(":") else value is not None
            alt = substitute(arg, env, used) if op else ""
            if op in (":-", "-"):
                out.append(value if ok else alt)
            elif op in (":+", "+"):
                out.append(alt if ok else "")
            else:  # plain, or :? / ? (an unset one is reported by the .env.example check)
                out.append(value or "")
            i = j
        else:
            m = NAME.match(s, i + 1)
            if not m:
                raise ValueError(f"a lone `$` in {s!r} (write `$$` for a literal dollar)")
            used.add(m.group(0))
            out.append(env.get(m.group(0)) or "")
            i = m.end()
    return "".join(out)


def interpolate(node, env, used):
    """The compose document with every string value interpolated (keys are
    left as they are, as compose does)."""
    if isinstance(node, str):
        return substitute(node, env, used)
    if isinstance(node, list):
        return [interpolate(x, env, used) for x in node]
    if isinstance(node, dict):
        return {k: interpolate(v, env, used) for k, v in node.items()}
    return node


# --- the provisioner service as compose runs it -------------------------
def load_raw():
    with open(COMPOSE) as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict):
        raise ValueError(f"{rel(COMPOSE)}: the top level is not a mapping")
    return doc


def load():
    """(compose document interpolated with .env.example, names used)."""
    used = set()
    return interpolate(load_raw(), parse_dotenv(ENV_EXAMPLE), used), used


def service(doc, name=SERVICE):
    svc = (doc.get("services") or {}).get(name)
    if not isinstance(svc, dict):
        raise ValueError(f"no service `{name}` in {rel(COMPOSE)}")
    return svc


def environment(svc):
    """[(name, value or None)] of a service's environment (mapping or list
    form) and its env_file(s), in compose's order (env_file first)."""
    out = []
    files = svc.get("env_file") or []
    for f in [files] if isinstance(files, (str, dict)) else files:
        path = f["path"] if isinstance(f, dict) else f
        full = os.path.join(ROOT, path)
        if os.path.isfile(full):
            out += list(parse_dotenv(full).items())
        elif not (isinstance(f, dict) and f.get("required") is False):
            raise ValueError(f"env_file `{path}` does not exist, so its names cannot be checked")
    env = svc.get("environment") or {}
    if isinstance(env, dict):
        out += [(k, None if v is None else str(v)) for k, v in env.items()]
    else:
        for item in env:
            k, sep, v = str(item).partition("=")
            out.append((k, v if sep else None))
    return out


def env_value(svc, name):
    value = None
    for k, v in environment(svc):
        if k == name:
            value = v
    return value


def mounts(svc):
    """[{target, ro, kind, source, short}] of what a service sees as files
    or directories: volumes (short and long syntax; kind bind, volume or
    tmpfs), secrets and configs (read-only)."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            out.append({"target": v.get("target", ""), "ro": bool(v.get("read_only")), "kind": v.get("type", "volume"),
                        "source": v.get("source", ""), "short": False})
            continue
        parts = str(v).split(":")
        if len(parts) == 1:
            out.append({"target": parts[0], "ro": False, "kind": "volume", "source": "", "short": True})
            continue
        source = parts[0]
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        opts = parts[2].split(",") if len(parts) > 2 else []
        out.append({"target": parts[1], "ro": "ro" in opts, "kind": kind, "source": source, "short": True})
    for field, default_dir in (("secrets", "/run/secrets"), ("configs", "")):
        for ref in svc.get(field) or []:
            source = ref if isinstance(ref, str) else ref.get("source")
            target = source if isinstance(ref, str) else ref.get("target") or source
            if not target.startswith("/"):
                target = f"{default_dir}/{target}"
            out.append({"target": target, "ro": True, "kind": field[:-1], "source": source, "short": isinstance(ref, str)})
    return out


def describe(m):
    return f"{m['kind']} {m['source'] or '(anonymous)'} at {m['target']}"


def mount_of(svc, path):
    """The mount a path is under (the deepest), or None."""
    best = None
    for m in mounts(svc):
        target = m["target"].rstrip("/")
        if target and (path == target or path.startswith(target + "/")):
            if best is None or len(target) > len(best["target"].rstrip("/")):
                best = m
    return best


def internal_names(doc):
    """Hostnames compose's network gives its services: service names,
    container_name, hostname, network aliases and links aliases."""
    names = {}
    for name, svc in (doc.get("services") or {}).items():
        names[name] = f"service `{name}`"
        svc = svc or {}
        for field in ("container_name", "hostname"):
            if svc.get(field):
                names[svc[field]] = f"{field} of service `{name}`"
        nets = svc.get("networks") or {}
        for net in nets.values() if isinstance(nets, dict) else []:
            for alias in (net or {}).get("aliases") or []:
                names[alias] = f"network alias of service `{name}`"
        for link in svc.get("links") or []:
            if ":" in link:
                names[link.split(":", 1)[1]] = f"links alias of service `{name}`"
    return names


def url_envs(svc):
    """[(name, value)] of the provisioner's issuer and upstream URLs."""
    wanted = lambda k: k in ("OIDC_ISSUER", "OIDC_JWKS_URL", "OIDC_TOKEN_URL") or k.endswith("_API_URL")
    return [(k, v) for k, v in environment(svc) if wanted(k)]


def url_host(value):
    return (urlsplit(value or "").hostname or "").lower()


# --- the checks ---------------------------------------------------------
def check_parses():
    doc = load_raw()
    problems = []
    services = doc.get("services")
    if not isinstance(services, dict) or not services:
        return ["no `services` mapping"]
    for name, svc in services.items():
        if not isinstance(svc, dict):
            problems.append(f"service `{name}` is not a mapping")
        elif not svc.get("image") and not svc.get("build"):
            problems.append(f"service `{name}` has neither image nor build")
    if SERVICE not in services:
        problems.append(f"no service `{SERVICE}`")
    for name, svc in services.items():
        for m in mounts(svc or {}):
            if m["kind"] == "volume" and m["source"] and m["source"] not in (doc.get("volumes") or {}):
                problems.append(f"service `{name}`: volume `{m['source']}` is not declared under top-level volumes")
            if m["kind"] in ("secret", "config") and m["source"] not in (doc.get(m["kind"] + "s") or {}):
                problems.append(f"service `{name}`: {m['kind']} `{m['source']}` is not declared under top-level {m['kind']}s")
    return problems


def check_images_pinned():
    problems = []
    for name, svc in (load_raw().get("services") or {}).items():
        image = (svc or {}).get("image")
        if not image:
            continue
        ref = image.split("@", 1)[0]
        repo, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "")
        if "@sha256:" not in image and (not tag or tag == "latest" or "$" in tag):
            problems.append(f"service `{name}`: image `{image}` has no fixed tag")
            continue
        bare = re.sub(r"^(docker\.io/)?(library/)?", "", repo)
        want = TESTED.get(bare)
        if want and not (tag == want or tag.startswith(want)):
            problems.append(f"service `{name}`: image `{image}`: the project is tested against {bare}:{want}{'x' if want.endswith('.') else ''}")
    return problems


def check_env_names():
    doc, _ = load()
    env = environment(service(doc))
    names = [k for k, _ in env]
    problems = []
    if not names:
        return [f"service `{SERVICE}` sets no environment"]
    for k in sorted(set(names)):
        if k not in ENV_NAMES:
            hint = ""
            if k.endswith("_FILE") and k[: -len("_FILE")] in ENV_NAMES:
                hint = f"; the binary takes `{k[: -len('_FILE')]}` only as a value, not from a file"
            problems.append(f"`{k}` is not an env the binary accepts (no clap `env = \"{k}\"` in src/, api/, controller/, core/, cli/{hint})")
        if k.endswith("_FILE") and k[: -len("_FILE")] in names:
            problems.append(f"both `{k[: -len('_FILE')]}` and `{k}` are set (the binary refuses to start: set one)")
    for k, v in env:
        if v is None:
            problems.append(f"`{k}` has no value (it would come from the shell running compose)")
    return problems


def check_secret_files():
    doc, _ = load()
    svc = service(doc)
    declared = doc.get("secrets") or {}
    files = [(k, v) for k, v in environment(svc) if k.endswith("_FILE") and v]
    problems = []
    for k, v in files:
        m = mount_of(svc, v)
        if m is None:
            problems.append(f"{k}={v} is under no secret, config or volume of service `{SERVICE}` (the image holds no credentials)")
        elif m["kind"] != "secret":
            problems.append(f"{k}={v} is in the {describe(m)}, not a compose secret")
        elif m["target"].rstrip("/") != v:
            problems.append(f"{k}={v} is not the file of the {describe(m)}")
        elif not ((declared.get(m["source"]) or {}).get("file") or (declared.get(m["source"]) or {}).get("environment")):
            problems.append(f"{k}={v}: secret `{m['source']}` has no `file` (or `environment`) source; compose without swarm cannot use an external one")
    for m in mounts(svc):
        if m["kind"] == "secret" and not any(v == m["target"] for _, v in files):
            problems.append(f"the {describe(m)} is read by no *_FILE env (typo?)")
    return problems


def check_dotenv():
    defined = parse_dotenv(ENV_EXAMPLE)
    used = set()
    interpolate(load_raw(), defined, used)
    problems = []
    for name in sorted(used):
        if name not in defined:
            problems.append(f"`${{{name}}}` is not defined in .env.example")
        elif not defined[name].strip():
            problems.append(f"`{name}` is empty in .env.example (give a placeholder)")
    for name in sorted(set(defined) - used):
        if not name.startswith("COMPOSE_"):
            problems.append(f"`{name}` in .env.example is used nowhere in {rel(COMPOSE)}")
    return problems


def internal_reason(host, internal):
    """Why host is no public hostname (a name compose's network or the
    container itself gives it), or None."""
    if host in internal:
        return internal[host]
    if host == "localhost" or host.endswith(".localhost"):
        return "the container itself"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return "a loopback or unspecified address (the container itself)" if ip.is_loopback or ip.is_unspecified else None


def check_public_hostnames():
    doc, _ = load()
    svc = service(doc)
    internal = internal_names(doc)
    urls = url_envs(svc)
    problems = []
    if not any(k == "OIDC_ISSUER" for k, _ in urls):
        problems.append("OIDC_ISSUER is not set")
    for k, v in urls:
        host = url_host(v)
        if not host:
            problems.append(f"{k}={v!r}: not an absolute URL with a host")
            continue
        why = internal_reason(host, internal)
        if why:
            problems.append(f"{k}={v}: `{host}` is {why}, a compose-internal hostname; use the public hostname behind the reverse proxy"
                            + (" (tokens carry the public issuer, so the issuer check fails)" if k == "OIDC_ISSUER" else ""))
    return problems


def check_public_hosts_resolve():
    """The public hostnames resolve inside the provisioner's container to
    the reverse proxy: extra_hosts, or a network alias of a service in the
    file (a proxy defined here)."""
    doc, _ = load()
    svc = service(doc)
    extra = svc.get("extra_hosts") or {}
    if isinstance(extra, dict):
        mapped = {str(h).lower(): str(ip) for h, ip in extra.items()}
    else:
        mapped = {}
        for e in extra:
            host, _, ip = re.split(r"([:=])", str(e), maxsplit=1) if re.search(r"[:=]", str(e)) else (str(e), "", "")
            mapped[host.lower()] = ip
    internal = internal_names(doc)
    problems = []
    for k, v in url_envs(svc):
        host = url_host(v)
        if not host or internal_reason(host, internal):
            continue  # reported by the public hostname check
        if host not in mapped:
            problems.append(f"{k}: `{host}` is neither in extra_hosts of service `{SERVICE}` nor a network alias of a proxy in the file")
        elif not mapped[host]:
            problems.append(f"{k}: extra_hosts entry of `{host}` has no address")
    return problems


def check_extra_ca():
    doc, _ = load()
    svc = service(doc)
    ca = env_value(svc, "EXTRA_CA_CERTS")
    if not ca:
        return [f"EXTRA_CA_CERTS is not set on service `{SERVICE}` (the local CA of the reverse proxy)"]
    if not ca.startswith("/"):
        return [f"EXTRA_CA_CERTS={ca} is not an absolute path in the container"]
    m = mount_of(svc, ca)
    if m is None:
        return [f"EXTRA_CA_CERTS={ca} is under no volume, secret or config of service `{SERVICE}` (the image has no such file)"]
    problems = []
    if m["kind"] not in ("bind", "secret", "config"):
        problems.append(f"EXTRA_CA_CERTS={ca} is in the {describe(m)}, not the local CA file (bind-mount it, or a config or secret)")
    if not m["ro"]:
        problems.append(f"EXTRA_CA_CERTS={ca}: the {describe(m)} is not read-only")
    if m["kind"] == "bind" and m["short"] and m["target"].rstrip("/") == ca:
        problems.append(f"EXTRA_CA_CERTS={ca}: a single file in short volume syntax; a missing source is created as a directory (use the long syntax, type: bind)")
    return problems


def run():
    label = rel(COMPOSE)
    check(f"compose {label}: parses as YAML, services have an image or build, references are declared", check_parses)
    try:
        load_raw()
    except Exception:
        return  # reported above
    check(f"compose {label}: every image has a fixed tag, the upstreams at the versions the project is tested against", check_images_pinned)
    check(f"compose {label}: every ${{VAR}} it interpolates is defined in .env.example (and every one there is used)", check_dotenv)
    try:
        service(load()[0])
    except Exception:
        return  # unreadable, or no provisioner service: reported above
    check(f"compose {label}: every env of service {SERVICE} is one the binary accepts (not X and X_FILE both)", check_env_names)
    check(f"compose {label}: every *_FILE of service {SERVICE} is a compose secret it mounts", check_secret_files)
    check(f"compose {label}: OIDC_ISSUER and *_API_URL of service {SERVICE} use public hostnames, not compose-internal ones", check_public_hostnames)
    check(f"compose {label}: those public hostnames resolve inside service {SERVICE} (extra_hosts or a proxy's alias)", check_public_hosts_resolve)
    check(f"compose {label}: EXTRA_CA_CERTS of service {SERVICE} is a file mounted read-only", check_extra_ca)
