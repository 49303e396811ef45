#!/usr/bin/env bash
# The kind path of scripts/setup.sh: the same options, with --provider kind. The kind details live in lib/kind.sh.
set -euo pipefail

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  printf 'Usage: scripts/setup-kind.sh [setup.sh options]\nRuns scripts/setup.sh --provider kind with the same options; see scripts/setup.sh --help.\n'
  exit 0
fi
exec "$(dirname "${BASH_SOURCE[0]}")/setup.sh" --provider kind "$@"
