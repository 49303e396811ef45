#!/usr/bin/env bash
# Deletes the cluster scripts/setup.sh created, and only that: the cluster must be recorded in
# .kverify/clusters/NAME.env AND still carry the marker setup gave it. Safe to run twice.
set -euo pipefail

SCRIPT_NAME=teardown.sh
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/kind.sh
source "$KVERIFY_ROOT/scripts/lib/kind.sh"
# shellcheck source=lib/k3d.sh
source "$KVERIFY_ROOT/scripts/lib/k3d.sh"

usage() {
  cat <<USAGE
Usage: scripts/teardown.sh [--name NAME] [--dry-run]

Deletes the kind or k3d cluster NAME (default $KVERIFY_DEFAULT_NAME) that scripts/setup.sh created, its
kubeconfig file and its record, .kverify/clusters/NAME.env. It deletes a cluster only when
  - the record exists and was written by setup (KVERIFY_CREATED_BY=$KVERIFY_RECORD_MAGIC), and
  - the cluster still carries setup's marker: for kind the control-plane container setup recorded
    (KVERIFY_NODE_ID), for k3d the docker label $KVERIFY_RUNTIME_LABEL=<KVERIFY_MARKER>.
Otherwise it refuses and says why. A cluster recorded as 'existing' (setup --provider existing) is never
deleted: only its record is removed. With no record and no cluster left, it does nothing and exits 0.

Options:
  --name NAME   the name given to setup.sh --name (default $KVERIFY_DEFAULT_NAME)
  --dry-run     print every command instead of running it
  -h, --help    show this help

Environment: KVERIFY_STATE_DIR (default <repo>/.kverify).
Exit status: 0 deleted or nothing to do, 1 refused, 2 usage error, missing tool or unreadable record,
3 docker unreachable or the delete failed.
USAGE
}

name=$KVERIFY_DEFAULT_NAME
while (($#)); do
  case $1 in
    --name) need_value "$@"; name=$2; shift 2 ;;
    --name=*) name=${1#*=}; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "$EXIT_USAGE" "unknown argument '$1' (see --help)" ;;
  esac
done
validate_name "$name"
record="$(record_path "$name")"
QUERY=()

# No record: nothing of ours to delete. Say so loudly if a cluster of that name exists anyway.
if [[ ! -f $record ]]; then
  if ((!DRY_RUN)) && have_tool docker && docker info >/dev/null 2>&1; then
    for provider in kind k3d; do
      "${provider}_containers_query" "$name"
      if [[ -n "$("${QUERY[@]}" 2>/dev/null)" ]]; then
        die "$EXIT_FAILED" "refusing to delete $provider cluster '$name': setup did not record creating it (no $record), and kverify deletes only clusters it created. Delete it yourself with '$("${provider}_delete_hint" "$name")' if you mean to."
      fi
    done
  fi
  log "nothing to tear down: no record $record"
  exit 0
fi

read_record "$record"
if [[ $(record_value KVERIFY_CREATED_BY) != "$KVERIFY_RECORD_MAGIC" ]]; then
  die "$EXIT_FAILED" "refusing: $record lacks KVERIFY_CREATED_BY=$KVERIFY_RECORD_MAGIC, so it was not written by setup.sh"
fi
if [[ $(record_value KVERIFY_CLUSTER_NAME) != "$name" ]]; then
  die "$EXIT_USAGE" "$record records cluster '$(record_value KVERIFY_CLUSTER_NAME)', not '$name'; fix or remove the file"
fi
provider=$(record_value KVERIFY_PROVIDER)

case $provider in
  existing)
    log "context '$(record_value KVERIFY_CONTEXT)' belongs to an existing cluster kverify did not create: it is left untouched"
    run rm -f "$record"
    exit 0
    ;;
  kind | k3d) ;;
  *) die "$EXIT_USAGE" "$record: KVERIFY_PROVIDER='$provider', expected kind, k3d or existing" ;;
esac
[[ $(record_value KVERIFY_CREATED) == yes ]] ||
  die "$EXIT_FAILED" "refusing: $record does not say setup created the cluster (KVERIFY_CREATED=$(record_value KVERIFY_CREATED))"

# The marker that proves this is the cluster setup made, not a later one that reuses the name.
if [[ $provider == kind ]]; then
  expected=$(record_value KVERIFY_NODE_ID)
  [[ $expected =~ ^[0-9a-f]+$ ]] || die "$EXIT_FAILED" "refusing: $record has no valid KVERIFY_NODE_ID (the control-plane container setup created)"
  kind_control_plane_query "$name"
else
  expected=$(record_value KVERIFY_MARKER)
  [[ $expected =~ ^[A-Za-z0-9._-]+$ ]] || die "$EXIT_FAILED" "refusing: $record has no valid KVERIFY_MARKER"
  k3d_marked_query "$name" "$expected"
fi
owned_query=("${QUERY[@]}")
"${provider}_containers_query" "$name"
kubeconfig=$(record_value KVERIFY_KUBECONFIG "$(kubeconfig_path "$name")")

require_tool "$provider" "needed to delete the $provider cluster '$name'"
require_tool docker "needed to check that '$name' is the cluster setup created"

if ((DRY_RUN)); then
  printf '[dry-run] docker info   # must succeed: the docker daemon answers\n'
  printf '[dry-run] %s   # empty: the cluster is already gone, only the files below are removed\n' "$(quote_command "${QUERY[@]}")"
  printf '[dry-run] %s   # must print %s, else teardown refuses\n' "$(quote_command "${owned_query[@]}")" \
    "$([[ $provider == kind ]] && printf '%s' "$expected" || printf 'a container id')"
  "${provider}_delete" "$name" "$kubeconfig"
  run rm -f "$kubeconfig" "$record"
  exit 0
fi

docker info >/dev/null 2>&1 ||
  die "$EXIT_UNREACHABLE" "docker does not answer ('docker info' failed), so '$name' cannot be checked or deleted; start Docker and retry"
containers="$("${QUERY[@]}")" || die "$EXIT_UNREACHABLE" "cannot list docker containers of $provider cluster '$name'"
if [[ -z $containers ]]; then
  log "$provider cluster '$name' is already gone; removing its record"
  run rm -f "$kubeconfig" "$record"
  exit 0
fi
owned="$("${owned_query[@]}")" || die "$EXIT_UNREACHABLE" "cannot inspect docker containers of $provider cluster '$name'"
if [[ $provider == kind && $owned != "$expected" ]] || [[ $provider == k3d && -z $owned ]]; then
  die "$EXIT_FAILED" "refusing to delete $provider cluster '$name': it does not carry setup's marker (recorded $([[ $provider == kind ]] && printf 'control-plane container %.12s, found %.12s' "$expected" "${owned:-none}" || printf 'label %s=%s, found on no container' "$KVERIFY_RUNTIME_LABEL" "$expected")), so it is not the cluster setup created. Delete it yourself with '$("${provider}_delete_hint" "$name")' if you mean to, then remove $record."
fi

"${provider}_delete" "$name" "$kubeconfig" ||
  die "$EXIT_UNREACHABLE" "$provider could not delete cluster '$name' (its output is above); the record stays, run teardown again"
run rm -f "$kubeconfig" "$record"
log "deleted $provider cluster '$name'"
