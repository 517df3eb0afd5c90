#!/usr/bin/env bash
# Set up a virtual environment with the runner, the converters and the test tools, then run the
# whole test suite. The README's test command and .ci/run both call this script.
#   scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# The MQTT tests run a real broker. Install mosquitto where we can (root + apt); otherwise they skip.
if ! command -v mosquitto >/dev/null 2>&1 && ! [ -x /usr/sbin/mosquitto ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null) \
      || echo "warning: could not install mosquitto; MQTT broker tests will skip" >&2
  else
    echo "warning: mosquitto not found and not root; MQTT broker tests will skip" >&2
  fi
fi

# The dashboard test drives Debian's headless Chromium through selenium; same pattern as mosquitto.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
      || echo "warning: could not install chromium; the dashboard browser test will skip" >&2
  else
    echo "warning: chromium/chromedriver not found and not root; the dashboard browser test will skip" >&2
  fi
fi

# Other system tools some tests drive for real (each test skips with a reason without its tool):
# cloud-init validates `edge provision` output; strace counts the outbox's fsyncs.
for tool in cloud-init:cloud-init strace:strace; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null) \
        || echo "warning: could not install ${tool#*:}; the tests that need it will skip" >&2
    else
      echo "warning: ${tool%%:*} not found and not root; the tests that need it will skip" >&2
    fi
  fi
done

# `edge collect`'s tests run a real PostgreSQL server (initdb + pg_ctl in a temp dir, as an
# unprivileged user); same pattern: install it where we can, otherwise they skip.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
      || echo "warning: could not install postgresql; PostgreSQL collector tests will skip" >&2
  else
    echo "warning: PostgreSQL (initdb) not found and not root; PostgreSQL collector tests will skip" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# torch first, pinned, the CPU build: anything resolved later must find it already satisfied.
bash scripts/install_torch.sh .venv/bin/python
.venv/bin/python -m pip install -q -e ".[ort,convert,dev,broker,bench,torch,convert-tflite,collect]"
# litert-torch / litert-converter / onnx2torch declare pins that break this environment (see the
# convert-tflite extra in pyproject.toml); everything they really import is in that extra.
.venv/bin/python -m pip install -q --no-deps litert-torch==0.10.0 litert-converter==0.5.0 onnx2torch==1.5.15
# The tracking benchmark's peers and scorer declare opencv-python, which would clash with
# opencv-python-headless: install them without their declared dependencies (the bench extra has the rest).
.venv/bin/python -m pip install -q --no-deps trackers==2.6.1 supervision==0.31.2 trackeval==1.3.0

# Static checks first (seconds): lint, the import layers (pyproject [tool.importlinter]) and types
# (pyproject [tool.mypy], with its ratchet list of modules that do not type-check yet).
# EDGE_SKIP_CHECKS=1 skips them (e.g. while iterating on one test).
if [ -z "${EDGE_SKIP_CHECKS:-}" ]; then
  .venv/bin/ruff check .
  .venv/bin/ruff format --check .
  .venv/bin/lint-imports
  .venv/bin/mypy
fi

set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
# pytest exit 5 = no tests collected (e.g. a -k filter that matches nothing): not a failure here.
if [ "$rc" = 5 ]; then rc=0; fi
exit "$rc"
