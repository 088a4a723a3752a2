# Shared set-up for scripts/run and scripts/test: a virtualenv with the pinned packages,
# and PostgreSQL + Redis (the ones named by DATABASE_URL/REDIS_URL, else the embedded ones).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$ROOT/var/run}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

ensure_venv() {
    # $1: requirements.lock (run) or requirements-dev.lock (test, a superset at the same
    # versions): the lock files scripts/lock makes from requirements*.txt, every package pinned
    # with its hashes. Installed again whenever a lock file changes: a stamp in .venv names the
    # sha256 of the lock files it was installed from.
    local lock="$1"
    if [ ! -x .venv/bin/python ]; then
        echo "engage: creating .venv with $PY" >&2
        "$PY" -m venv .venv
    fi
    local runtime_stamp=".venv/.installed-run-$(sha256sum requirements.lock | cut -c1-16)"
    local dev_stamp=".venv/.installed-dev-$(cat requirements.lock requirements-dev.lock | sha256sum | cut -c1-16)"
    if [ -f "$dev_stamp" ] || { [ "$lock" = requirements.lock ] && [ -f "$runtime_stamp" ]; }; then
        return 0
    fi
    echo "engage: installing $lock into .venv" >&2
    .venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r "$lock"
    if [ "$lock" = requirements.lock ]; then
        rm -f .venv/.installed-run-*; touch "$runtime_stamp"
    else
        rm -f .venv/.installed-*; touch "$dev_stamp"
    fi
}

ensure_services() {
    # The URLs from the environment or .env, else the embedded servers under ./var/ (started
    # if needed); keys from the environment or .env, else the ones kept under ./var/ (made on
    # the first start). engage/embedded.py says which on stderr.
    local exports
    exports="$(.venv/bin/python -m engage.embedded env)"
    eval "$exports"
    export DATABASE_URL REDIS_URL
}

# The value of NAME from the environment, else from .env (its last line setting it), else $2.
# For the settings only scripts read (ports, web workers): Django reads .env itself.
env_or_dotenv() {
    local name="$1" value
    if [ -n "${!name:-}" ]; then echo "${!name}"; return; fi
    value="$(grep -E "^[[:space:]]*(export[[:space:]]+)?$name=" .env 2>/dev/null | tail -1 | sed -E "s/^[^=]*=//; s/[[:space:]]+#.*$//; s/^[\"']//; s/[\"']$//")"
    echo "${value:-$2}"
}

# Export NAME=VALUE unless the environment or .env sets NAME: a script's default never
# overrides what the user configured.
env_default() {
    local name="$1" value="$2"
    if [ -z "${!name:-}" ] && ! grep -Eq "^[[:space:]]*(export[[:space:]]+)?$name=[^[:space:]#]" .env 2>/dev/null; then
        export "$name=$value"
    fi
}
