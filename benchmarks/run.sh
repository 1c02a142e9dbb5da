#!/usr/bin/env bash
# Reproduce a recorded benchmark: the full run (about half an hour) or the quick one.
#
#   benchmarks/run.sh            # full run -> benchmarks/results/DATE-full.{json,md}
#   benchmarks/run.sh --quick    # under a minute -> benchmarks/results/DATE-quick.{json,md}
#
# Needs: the bench extra (pip install -e '.[bench]'), wrk (apt-get install wrk; without it
# a slower Python load generator is used and the report says so), and for the Redis and
# PostgreSQL rows the local servers of .ci/run (redis://127.0.0.1:6379, postgresql://
# postgres@127.0.0.1:5432/test). Everything targets 127.0.0.1 and stops by itself; the
# bench writes only to its own temporary SQLite file, Redis key prefix and PostgreSQL
# schema, and removes them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
size=full
if [ "${1:-}" = "--quick" ]; then size=quick; shift; fi
command -v wrk >/dev/null 2>&1 || echo "note: wrk not found, using the Python load generator" >&2
mkdir -p benchmarks/results
out="benchmarks/results/$(date -u +%Y-%m-%d)-$size"
.venv/bin/authstate bench "--$size" --json "$out.json" --markdown "$out.md" "$@"
echo "wrote $out.json and $out.md" >&2
