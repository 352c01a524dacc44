#!/usr/bin/env bash
# Tierkeeper in the peer table: ../shared/bench/peers.sh runs restic, rclone and borg on one
# SeaweedFS server, and these two commands the same way (DATA_DIR, RESTORE_DIR, S3_ENDPOINT,
# S3_BUCKET and the AWS keys come from it). The workspace is a throwaway one; the S3 target is
# written into its config from the environment, keys come from the AWS chain (never a file).
# Usage: tests/benchmarks/peers_tierkeeper.sh   (SIZE_MB, RESULTS_DIR, PEERS_SH to override)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PEERS=${PEERS_SH:-$REPO/../shared/bench/peers.sh}
[ -x "$REPO/.venv/bin/weed" ] && export BENCH_VENV=${BENCH_VENV:-$REPO/.venv}  # weed + boto3 there
TK_BENCH_HOME=$(mktemp -d -t tk-peers.XXXXXX)
trap 'rm -rf "$TK_BENCH_HOME"' EXIT
export TK_BENCH_HOME TK="$REPO/.venv/bin/tierkeeper"
export PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring XDG_DATA_HOME=$TK_BENCH_HOME/xdg
export TIERKEEPER_HOME=$TK_BENCH_HOME/ws
# shellcheck disable=SC2016  # expanded by peers.sh, which sets these variables
export TIERKEEPER_BACKUP='mkdir -p "$TIERKEEPER_HOME" && { [ -f "$TIERKEEPER_HOME/config.toml" ] ||
  printf "[[targets]]\nname = \"bench\"\nkind = \"s3\"\nbucket = \"%s\"\nendpoint_url = \"%s\"\nregion = \"us-east-1\"\naddressing = \"path\"\nstorage_class = \"STANDARD\"\n" \
    "$S3_BUCKET" "$S3_ENDPOINT" >"$TIERKEEPER_HOME/config.toml"; } &&
  "$TK" tree backup "$DATA_DIR" --target bench --label data'
# shellcheck disable=SC2016
export TIERKEEPER_RESTORE='"$TK" tree restore data --target bench --to "$RESTORE_DIR"'
cd "$REPO"
RESULTS_DIR=${RESULTS_DIR:-docs/bench-results} SIZE_MB=${SIZE_MB:-300} bash "$PEERS"
