#!/usr/bin/env bash
# The k3d path of scripts/setup.sh: the same options, with --provider k3d. The k3d details live in lib/k3d.sh.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  printf 'Usage: scripts/setup-k3d.sh [setup.sh options]\nRuns scripts/setup.sh --provider k3d with the same options; see scripts/setup.sh --help.\n'
  exit 0
fi
exec "$(dirname "${BASH_SOURCE[0]}")/setup.sh" --provider k3d "$@"
