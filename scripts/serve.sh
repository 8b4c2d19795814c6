#!/usr/bin/env bash
# Quick start: `bash scripts/serve.sh [harborpy serve args]` sets up a virtualenv in .venv,
# installs harborpy into it and runs the registry on 127.0.0.1:5000 with everything
# under ./var (SQLite, blobs on disk, no Redis). The first start prints the password of the
# system admin `admin`: `docker login 127.0.0.1:5000 -u admin`, then push to library/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
# python-ldap (LDAP logins) builds from source: it needs a compiler and the LDAP and SASL headers.
missing=()
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
for p in gcc libldap2-dev libsasl2-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})) && command -v apt-get >/dev/null; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e .
exec .venv/bin/harborpy serve "$@"
