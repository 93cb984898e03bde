#!/usr/bin/env bash
# Install the Exec Identity Broker on this machine (Debian/Ubuntu with python3 >= 3.11).
#
#   ./install.sh            virtualenv + pinned dependencies + `exec-broker init`
#   ./install.sh --dev      also the test tools, Chromium for the UI tests, xmlsec1 for the
#                           test IdP and the SAML benchmark's comparison run
#   ./install.sh --no-init  install only (images: keys are made at first start, not baked in)
#
# Idempotent: re-running it keeps config/broker.toml, certs/ and the database.
# System packages it may install (only when missing):
#   python3-venv              the venv module (Debian ships python3 without it)
#   chromium chromium-driver  (--dev) headless browser for tests/browser
#   xmlsec1                   (--dev) pysaml2's subprocess backend, measured by bench/ for comparison
set -euo pipefail
cd "$(dirname "$0")"

dev=0
init=1
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --no-init) init=0 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "install.sh: Python 3.11 or newer is needed ($python)" >&2
  exit 1
fi

packages=()
"$python" -c 'import venv, ensurepip' 2>/dev/null || packages+=(python3-venv)
if [ "$dev" = 1 ]; then
  command -v chromium >/dev/null || packages+=(chromium)
  command -v chromedriver >/dev/null || packages+=(chromium-driver)
  command -v xmlsec1 >/dev/null || packages+=(xmlsec1)
fi
if [ ${#packages[@]} -gt 0 ]; then
  echo "install.sh: installing system packages: ${packages[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
lock=requirements.lock
[ "$dev" = 1 ] && lock=requirements-dev.lock
.venv/bin/python -m pip install -q -r "$lock"
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .

[ "$init" = 1 ] && .venv/bin/exec-broker init
exit 0
