#!/usr/bin/env bash
# Quick start: `bash scripts/serve.sh [harborpy serve args]` sets up a virtualenv in .venv,
# installs harborpy into it and runs the registry on 127.0.0.1:5000 with everything
# under ./var (SQLite, blobs on disk, no Redis). Ready for `docker push 127.0.0.1:5000/library/app:1`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e .
exec .venv/bin/harborpy serve "$@"
