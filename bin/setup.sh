# Shared by bin/run and bin/test (sourced, not executed).

# Create .venv and install the project with the exact versions CI tested (requirements.lock);
# skipped when nothing changed since the last install. $1: extras, e.g. "[test]".
ensure_venv() {
  local extras="${1:-}" python="${PYTHON:-python3.11}"
  command -v "$python" >/dev/null || python=python3
  if [ ! -x .venv/bin/python ]; then
    echo "Creating .venv with $($python --version)"
    "$python" -m venv .venv
  fi
  local stamp=".venv/.installed-$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)${extras}"
  if [ ! -f "$stamp" ]; then
    echo "Installing dependencies into .venv (pinned by requirements.lock)..."
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c requirements.lock -e ".${extras}"
    touch "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for_port() {  # $1 port, $2 name
  for _ in $(seq 1 30); do port_open "$1" && return 0; sleep 1; done
  echo "$2 did not start listening on 127.0.0.1:$1" >&2
  return 1
}

ensure_postgres() {
  port_open 5432 && return 0
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    echo "Starting PostgreSQL..."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
    wait_for_port 5432 PostgreSQL
  else
    echo "PostgreSQL is not running on 127.0.0.1:5432 and is not installed here." >&2
    echo "Install it (Debian: apt-get install postgresql) or set TEST_DATABASE_URL." >&2
    return 1
  fi
}

ensure_redis() {  # $1 port, default 6379
  local port="${1:-6379}"
  port_open "$port" && return 0
  if command -v redis-server >/dev/null; then
    echo "Starting Redis on port $port..."
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no
    wait_for_port "$port" Redis
  else
    echo "Redis is not running on 127.0.0.1:$port and is not installed here." >&2
    echo "Install it (Debian: apt-get install redis-server)." >&2
    return 1
  fi
}

# The browser tests drive Debian's Chromium with Playwright (Playwright's own browser download is
# not used). Installed with apt-get when missing and running as root (CI); otherwise say so, and
# those tests skip with the reason. Exports CHROMIUM_PATH when there is one.
ensure_chromium() {
  local found
  found="$(command -v chromium || command -v chromium-browser || true)"
  if [ -z "$found" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing Chromium for the browser tests (apt-get install chromium)..."
    if apt-get install -y -qq chromium >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; then
      found="$(command -v chromium || true)"
    else
      echo "Could not install Chromium with apt-get." >&2
      return 1
    fi
  fi
  if [ -n "$found" ]; then
    export CHROMIUM_PATH="$found"
  else
    echo "Chromium is not installed and this is not root: the browser tests will be skipped" \
      "(install it: apt-get install chromium, or set CHROMIUM_PATH)." >&2
  fi
}
