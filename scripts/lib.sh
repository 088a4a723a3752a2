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
    # with its hashes. A stamp in .venv names the sha256 of the lock files it was installed
    # from; while it matches, nothing is done.
    # Any other .venv is replaced by a fresh one: pip, installing into an existing venv, skips the
    # hash check of every package already there at the locked version ("Requirement already
    # satisfied"), so a tampered hash would pass, and it leaves the packages a lock dropped.
    # The fresh venv is made at .venv itself (console scripts and activate hold the venv's
    # absolute path, so one built elsewhere and moved would point at the wrong place); the old
    # one waits in .venv.old and comes back if the install fails.
    local lock="$1"
    local runtime_stamp=".venv/.installed-run-$(sha256sum requirements.lock | cut -c1-16)"
    local dev_stamp=".venv/.installed-dev-$(cat requirements.lock requirements-dev.lock | sha256sum | cut -c1-16)"
    if [ -f "$dev_stamp" ] || { [ "$lock" = requirements.lock ] && [ -f "$runtime_stamp" ]; }; then
        return 0
    fi
    # A dev venv stays one (scripts/run inside a test session must not drop the test tools).
    if [ "$lock" = requirements.lock ] && compgen -G ".venv/.installed-dev-*" >/dev/null; then
        lock=requirements-dev.lock
    fi
    echo "engage: making a fresh .venv with $PY and installing $lock into it" >&2
    rm -rf .venv.old
    if [ -e .venv ] || [ -L .venv ]; then mv .venv .venv.old; fi
    if "$PY" -m venv .venv && .venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r "$lock"; then
        rm -rf .venv.old
    else
        echo "engage: installing $lock failed; the previous .venv is left as it was" >&2
        rm -rf .venv
        if [ -e .venv.old ] || [ -L .venv.old ]; then mv .venv.old .venv; fi
        return 1
    fi
    if [ "$lock" = requirements.lock ]; then touch "$runtime_stamp"; else touch "$dev_stamp"; fi
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
