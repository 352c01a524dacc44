#!/usr/bin/env bash
# `make package-test`: install the .deb as a user's machine would, use it, remove it.
#
# Root only (dpkg). Everything the programs write goes to a scratch HOME and workspace,
# so the machine's own Tierkeeper data is never touched; the workspace must survive
# `dpkg -r`, while /opt/tierkeeper, the launchers and the desktop files must not.
# The window's screenshot is kept in packaging/dist/package-test/ to be looked at.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
VENV_PY=$ROOT/.venv/bin/python
FIXTURES=${TIERKEEPER_FIXTURES:-$ROOT/../shared/fixtures/claude-code}
OUT=$HERE/dist/package-test
started=$SECONDS

step() { printf '\n== %s\n' "$*"; }
fail() { echo "package-test FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "it installs a .deb: run it as root"
deb=$(ls -t "$HERE"/dist/tierkeeper_*.deb 2>/dev/null | head -n1 || true)
[ -n "$deb" ] || fail "no .deb in packaging/dist: run make package first"
if dpkg-query -W -f='${Status}' tierkeeper 2>/dev/null | grep -q 'install ok installed'; then
  fail "tierkeeper is installed already; this test would remove it (dpkg -r tierkeeper first)"
fi

scratch=$(mktemp -d /tmp/tierkeeper-package-test.XXXXXX)
ws=$scratch/ws
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if dpkg-query -W -f='${Status}' tierkeeper 2>/dev/null | grep -q 'install ok installed'; then
    dpkg -r tierkeeper >/dev/null || true  # a failed run must not leave the package behind
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT
export HOME=$scratch/home XDG_RUNTIME_DIR=$scratch/run QT_QPA_PLATFORM=offscreen
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" "$OUT"
chmod 700 "$XDG_RUNTIME_DIR"
unset TIERKEEPER_HOME AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

step "install $(basename "$deb") ($(du -m "$deb" | cut -f1) MB)"
if ! dpkg -i "$deb"; then
  step "dpkg -i left dependencies missing: apt-get -f install"
  apt-get install -f -y -qq
fi
dpkg -L tierkeeper >"$scratch/files"

step "every bundled library finds what it links against (Depends is complete)"
internal=/opt/tierkeeper/_internal
unresolved=$(find "$internal" -name '*.so*' -type f -print0 |
  LD_LIBRARY_PATH=$internal:$internal/PySide6/Qt/lib xargs -0 -n1 ldd 2>/dev/null |
  grep 'not found' | sort -u || true)
[ -z "$unresolved" ] || fail "libraries not found: $unresolved"
echo "$(find "$internal" -name '*.so*' -type f | wc -l) libraries, all resolved"

step "the launcher is on PATH"
[ "$(command -v tierkeeper)" = /usr/bin/tierkeeper ] || fail "tierkeeper is $(command -v tierkeeper)"
version=$(tierkeeper --version)
echo "$version"
[[ $version =~ ^tierkeeper\ [0-9] ]] || fail "--version said: $version"

step "status on a new workspace"
tierkeeper init -w "$ws" >/dev/null
tierkeeper status -w "$ws"

step "Claude Code's hook: hook install writes tierkeeper-hook; it and tierkeeper hook record"
settings=$scratch/claude/settings.json
tierkeeper hook install --settings "$settings" >/dev/null
hook_cmd=$("$VENV_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["hooks"]["PreToolUse"][0]["hooks"][0]["command"])' "$settings")
[ "$hook_cmd" = /opt/tierkeeper/tierkeeper-hook ] || fail "hook install wrote: $hook_cmd"
event() { printf '{"session_id":"pkgtest","hook_event_name":"%s","tool_name":"Bash","tool_use_id":"toolu_pkg","tool_input":{"command":"ls"}}' "$1"; }
# shellcheck disable=SC2086 # the hook command is a command line, as Claude Code runs it
event PreToolUse | TIERKEEPER_HOME=$scratch/hook-ws $hook_cmd
event PostToolUse | TIERKEEPER_HOME=$scratch/hook-ws tierkeeper hook
activity=$scratch/hook-ws/logs/session_pkgtest.jsonl
[ "$(wc -l <"$activity")" -eq 2 ] || fail "the hooks recorded $(wc -l <"$activity") of 2 events"
"$VENV_PY" - "$activity" <<'PY' || fail "the hook programs' events do not pair up"
import json, sys
pre, post = (json.loads(line) for line in open(sys.argv[1]))
assert (pre["type"], post["type"]) == ("PreToolUse", "PostToolUse")
assert post["duration_ms"] is not None  # the marker tierkeeper-hook left, found by tierkeeper hook
PY
[ ! -e "$scratch/hook-ws/fallback" ] || fail "a hook event went to fallback"
tierkeeper hook uninstall --settings "$settings" >/dev/null
echo "$hook_cmd recorded; tierkeeper hook paired its end with it"

if [ -d "$FIXTURES" ]; then
  step "import, then the phase review (its charts are drawn by matplotlib)"
  tierkeeper phase new p1 -w "$ws" >/dev/null
  tierkeeper import -w "$ws" "$FIXTURES" >/dev/null
  sessions=$(tierkeeper status -w "$ws" --json | "$VENV_PY" -c 'import json,sys; print(json.load(sys.stdin)["sessions"])')
  echo "imported $sessions sessions"
  [ "$sessions" -gt 0 ] || fail "nothing imported from $FIXTURES"
  folder=$(tierkeeper review p1 -w "$ws" --json | "$VENV_PY" -c 'import json,sys; print(json.load(sys.stdin)["result"]["folder"])')
  ls "$folder"
  [ -s "$folder/phase_insights.md" ] || fail "no phase_insights.md in $folder"
  compgen -G "$folder/charts/*.png" >/dev/null || fail "the review drew no charts (matplotlib)"
else
  echo "(no fixtures at $FIXTURES: import and review skipped)"
fi

step "an S3 target (boto3, botocore's S3 model) against a local moto server"
# This machine has no desktop keyring; a stand-in comes in through keyring's own config
# file, as a user would configure one: secrets in a JSON file in the scratch HOME.
mkdir -p "$scratch/keyring" "$HOME/.config/python_keyring"
cat >"$scratch/keyring/scratch_keyring.py" <<'PY'
import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend


class ScratchKeyring(KeyringBackend):
    priority = 1

    @property
    def _file(self) -> Path:
        return Path(os.environ["HOME"]) / "keyring.json"

    def _load(self) -> dict:
        return json.loads(self._file.read_text()) if self._file.exists() else {}

    def get_password(self, service, username):
        return self._load().get(f"{service}/{username}")

    def set_password(self, service, username, password):
        data = self._load()
        data[f"{service}/{username}"] = password
        self._file.write_text(json.dumps(data))

    def delete_password(self, service, username):
        data = self._load()
        data.pop(f"{service}/{username}", None)
        self._file.write_text(json.dumps(data))
PY
printf '[backend]\ndefault-keyring=scratch_keyring.ScratchKeyring\nkeyring-path=%s\n' \
  "$scratch/keyring" >"$HOME/.config/python_keyring/keyringrc.cfg"
port=$("$VENV_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$scratch/moto.log" 2>&1 &
pids+=($!)
mkdir -p "$HOME/.aws"
printf '[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n' >"$HOME/.aws/credentials"
for _ in $(seq 100); do
  "$VENV_PY" - "$port" <<'EOF' 2>/dev/null && break
import sys, boto3
boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
             aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket="archive")
EOF
  sleep 0.2
done
tierkeeper target add s3 archive --bucket archive --endpoint "http://127.0.0.1:$port" \
  --region us-east-1 --addressing path -w "$ws"

step "the daemon serves the workspace (aiohttp on a Unix socket)"
tierkeeper daemon -w "$ws" >"$scratch/daemon.log" 2>&1 &
daemon=$!
pids+=("$daemon")
for _ in $(seq 100); do
  tierkeeper status -w "$ws" --json 2>/dev/null | grep -q '"daemon_pid": *[0-9]' && break
  sleep 0.2
done
tierkeeper status -w "$ws" --json | grep -q '"daemon_pid": *[0-9]' || fail "status did not reach the daemon"
tierkeeper status -w "$ws" | grep -i "served by"
kill -TERM "$daemon"
wait "$daemon" || fail "the daemon exited with $? on SIGTERM"

step "the window, started by the desktop entry's command"
desktop=/usr/share/applications/tierkeeper.desktop
exec_line=$(sed -n 's/^Exec=//p' "$desktop" | head -n1 | sed 's/ *%[fFuUick]//g')
echo "Exec=$exec_line"
shot=$OUT/installed-window.png
rm -f "$shot"
# shellcheck disable=SC2086 # the Exec line is a command line
timeout 120 $exec_line --workspace "$ws" --screenshot "$shot"
[ -s "$shot" ] || fail "no screenshot"
echo "screenshot: $shot ($(du -k "$shot" | cut -f1) KiB)"
timeout 60 $exec_line --workspace "$ws" --time-to-window
# `tierkeeper gui` starts the window as `<program> -m gui`; the frozen program answers that
timeout 60 /opt/tierkeeper/tierkeeper -m gui --workspace "$ws" --time-to-window

step "dpkg -r"
dpkg -r tierkeeper
left=()
while read -r path; do
  [ -f "$path" ] || [ -L "$path" ] && left+=("$path")
done <"$scratch/files"
[ ${#left[@]} -eq 0 ] || fail "left behind: ${left[*]:0:10}"
for path in /opt/tierkeeper /usr/bin/tierkeeper /usr/bin/tierkeeper-gui "$desktop"; do
  [ ! -e "$path" ] && [ ! -L "$path" ] || fail "$path is still there"
done
[ -f "$ws/config.toml" ] || fail "the workspace went with the package"
echo "workspace kept: $(ls "$ws" | tr '\n' ' ')"
dpkg -P tierkeeper >/dev/null  # its record in dpkg's database ("rc": postrm kept for purge)

echo
echo "package-test passed in $((SECONDS - started)) s"
