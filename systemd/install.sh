#!/usr/bin/env bash
# Install or upgrade edgetally from an unpacked `edge bundle` (run as root on the board):
#   tar xzf edgetally-rpi5.tar.gz && sudo ./edgetally-bundle/install.sh
# Idempotent: running it again (same or newer bundle) upgrades in place. It never touches the
# state directory (/var/lib/edgetally: MQTT outbox, persisted counters) and keeps a config.yaml
# you edited (the bundle's copy then lands beside it as config.yaml.new).
#
# Layout: PREFIX/venvs/<id> and PREFIX/models/<id>, with PREFIX/venv and PREFIX/model symlinks
# switched atomically; the previous venv/model stay for a rollback (re-point the links).
#
# Environment (for staging and tests): DESTDIR (install under this root; systemd is then only
# told via `systemctl --root`), PREFIX (/opt/edgetally), CONFDIR (/etc/edgetally), UNITDIR
# (/etc/systemd/system), PYTHON (python3), SYSTEMCTL (systemctl), NO_START=1 (enable, don't start).
set -euo pipefail

BUNDLE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/opt/edgetally}
CONFDIR=${CONFDIR:-/etc/edgetally}
UNITDIR=${UNITDIR:-/etc/systemd/system}
PYTHON=${PYTHON:-python3}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
NO_START=${NO_START:-}
UNIT=edgetally.service

log() { printf 'edgetally install: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# 1. Verify before reading anything. Every file this script uses must be listed in SHA256SUMS
#    (a line removed from it must not skip a file's check) and match.
verify_bundle() {
  [ -f "$BUNDLE/SHA256SUMS" ] || die "SHA256SUMS missing: not a complete bundle, re-copy it"
  local f
  for f in bundle.env config.yaml install.sh uninstall.sh systemd/edgetally.service; do
    grep -qxE "[0-9a-f]{64}  $f" "$BUNDLE/SHA256SUMS" || die "SHA256SUMS does not list $f: re-copy the bundle"
  done
  (cd "$BUNDLE" && sha256sum --check --quiet --strict SHA256SUMS) || die "bundle checksums do not match: re-copy it"
}

# 2. bundle.env is data, never executed: KEY='value' lines with known keys and checked values.
read_bundle_env() {
  local line key value n=0
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    case "$line" in ''|'#'*) continue ;; esac
    [[ "$line" =~ ^([A-Z_]+)=\'([^\']*)\'$ ]] || die "bundle.env:$n: expected KEY='value', got: ${line:0:80}"
    key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
    case "$key" in
      PROFILE|VERSION) [[ "$value" =~ ^[A-Za-z0-9._+-]+$ ]] ;;
      EXTRA) [[ "$value" =~ ^[a-z0-9_-]+$ ]] ;;
      DROPINS) [[ "$value" =~ ^[a-z0-9_\ -]*$ ]] ;;
      WHEEL) [[ "$value" =~ ^[A-Za-z0-9._+-]+\.whl$ ]] ;;
      SYSTEM_SITE_PACKAGES|OFFLINE) [[ "$value" =~ ^[01]$ ]] ;;
      *) die "bundle.env:$n: unknown key $key" ;;
    esac || die "bundle.env:$n: bad value for $key: ${value:0:80}"
    printf -v "$key" '%s' "$value"
  done < "$BUNDLE/bundle.env"
  for key in PROFILE EXTRA DROPINS SYSTEM_SITE_PACKAGES VERSION WHEEL OFFLINE; do
    [ -n "${!key+set}" ] || die "bundle.env: $key missing"
  done
}

verify_bundle
read_bundle_env
[ -n "$DESTDIR" ] || [ "$(id -u)" = 0 ] || die "run as root (or set DESTDIR to stage into a directory)"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (apt install python3 python3-venv)"
ID="$VERSION-$(sha256sum "$BUNDLE/SHA256SUMS" | cut -c1-12)"
ROOT="$DESTDIR$PREFIX"
VENV="$ROOT/venvs/$ID"
install -d -m 0755 "$ROOT/venvs" "$ROOT/models" "$ROOT/share" "$DESTDIR$CONFDIR" "$DESTDIR$UNITDIR"

make_venv() {
  # A venv that finished installing has .edgetally-complete: re-running the same bundle reuses it.
  [ -f "$VENV/.edgetally-complete" ] && { log "venv $ID already installed"; return; }
  rm -rf "$VENV"
  local site=()
  [ "$SYSTEM_SITE_PACKAGES" = 1 ] && site=(--system-site-packages)  # Picamera2 from apt
  log "creating venv $VENV (${site[*]:-isolated}) with edgetally[$EXTRA]"
  "$PYTHON" -m venv "${site[@]}" "$VENV" || die "python3 -m venv failed (apt install python3-venv)"
  local pip=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input install --quiet
             --find-links "$BUNDLE/wheels" -c "$BUNDLE/constraints.txt")
  [ "$OFFLINE" = 1 ] && pip+=(--no-index)
  "${pip[@]}" "$BUNDLE/wheels/$WHEEL[$EXTRA]" || die "pip install failed"
  touch "$VENV/.edgetally-complete"
}

switch_link() {  # switch_link NAME TARGET: atomic symlink replacement
  ln -sfn "$2" "$ROOT/.$1.new"
  mv -T "$ROOT/.$1.new" "$ROOT/$1"
}

prune() {  # keep the current and the previous entry of venvs/ or models/
  local dir=$1 current=$2 previous=$3
  for entry in "$ROOT/$dir"/*; do
    [ -e "$entry" ] || continue
    case "$(basename "$entry")" in "$current"|"$previous") ;; *) rm -rf "$entry" ;; esac
  done
}

install_model() {
  local target="$ROOT/models/$ID"
  if [ ! -f "$target/manifest.json" ]; then
    rm -rf "$target.tmp" && cp -r "$BUNDLE/artifact" "$target.tmp" && mv -T "$target.tmp" "$target"
  fi
}

install_config() {
  local conf="$DESTDIR$CONFDIR/config.yaml" dist="$ROOT/share/config.yaml.dist"
  if [ ! -f "$conf" ] || { [ -f "$dist" ] && cmp -s "$conf" "$dist"; }; then
    install -m 0644 "$BUNDLE/config.yaml" "$conf"
    rm -f "$conf.new"
  elif ! cmp -s "$conf" "$BUNDLE/config.yaml"; then
    install -m 0644 "$BUNDLE/config.yaml" "$conf.new"
    log "kept your edited $CONFDIR/config.yaml; the bundle's version is config.yaml.new"
  fi
  install -m 0644 "$BUNDLE/config.yaml" "$dist"
  # LoadCredential= fails the start when the file is missing: an empty one means "no password".
  [ -f "$DESTDIR$CONFDIR/mqtt-password" ] || install -m 0600 /dev/null "$DESTDIR$CONFDIR/mqtt-password"
}

install_units() {
  sed -e "s#/opt/edgetally#$PREFIX#g" -e "s#/etc/edgetally#$CONFDIR#g" "$BUNDLE/systemd/$UNIT" > "$DESTDIR$UNITDIR/.$UNIT.new"
  chmod 0644 "$DESTDIR$UNITDIR/.$UNIT.new"
  mv -f "$DESTDIR$UNITDIR/.$UNIT.new" "$DESTDIR$UNITDIR/$UNIT"
  local dropdir="$DESTDIR$UNITDIR/$UNIT.d"
  install -d -m 0755 "$dropdir"
  rm -f "$dropdir"/board-*.conf  # the previous bundle's board; local overrides (override.conf) stay
  for name in $DROPINS; do
    install -m 0644 "$BUNDLE/systemd/dropins/$name.conf" "$dropdir/board-$name.conf"
  done
  install -m 0755 "$BUNDLE/uninstall.sh" "$ROOT/share/uninstall.sh"
  [ -f "$BUNDLE/deployment.md" ] && install -m 0644 "$BUNDLE/deployment.md" "$ROOT/share/deployment.md"
  return 0
}

enable_and_start() {
  if [ -n "$DESTDIR" ] && [ "$SYSTEMCTL" = systemctl ]; then
    systemctl --root="$DESTDIR" enable "$UNIT" >/dev/null 2>&1 || log "could not enable in $DESTDIR"
    return
  fi
  "$SYSTEMCTL" daemon-reload
  "$SYSTEMCTL" enable "$UNIT"
  if [ -n "$NO_START" ]; then
    log "enabled; not started (NO_START)"
  elif "$SYSTEMCTL" is-active --quiet "$UNIT"; then
    log "restarting the running service (upgrade)"
    "$SYSTEMCTL" restart "$UNIT"
  else
    "$SYSTEMCTL" start "$UNIT" || log "start failed: journalctl -u $UNIT; $PREFIX/venv/bin/edge doctor"
  fi
}

previous_venv=$(basename "$(readlink "$ROOT/venv" 2>/dev/null || echo none)")
previous_model=$(basename "$(readlink "$ROOT/model" 2>/dev/null || echo none)")
make_venv
install_model
install_config
switch_link venv "venvs/$ID"  # relative links: also right under DESTDIR
switch_link model "models/$ID"
prune venvs "$ID" "$previous_venv"
prune models "$ID" "$previous_model"
install_units
enable_and_start
echo "$ID" > "$ROOT/share/installed"
log "installed $ID (profile $PROFILE, runtime extra $EXTRA)"
