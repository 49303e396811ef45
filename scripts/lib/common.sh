# shellcheck shell=bash
# shellcheck disable=SC2034  # a library: its variables are read by the scripts that source it
# Shared by scripts/setup.sh, scripts/health-check.sh and scripts/teardown.sh (sourced, never run):
# the NodePorts kverify's manifests use, the cluster record, a dry-run aware command runner and tool
# checks that say how to install what is missing. Nothing here downloads anything.

KVERIFY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# The NodePorts kverify's manifests expose. kind and k3d map each one to the same port on 127.0.0.1
# (loopback only: the run's Redis must not be reachable from the network), which is also how a
# macOS host, where node addresses are not routable, reaches them. Change them here and in the manifests.
readonly KVERIFY_REDIS_NODEPORT=30379    # the run's Redis; the verification connects here
readonly KVERIFY_APP_NODEPORT=30800      # the demo app (gunicorn)
readonly KVERIFY_METRICS_NODEPORT=30991  # the exporter's /metrics
KVERIFY_NODEPORTS=("$KVERIFY_REDIS_NODEPORT" "$KVERIFY_APP_NODEPORT" "$KVERIFY_METRICS_NODEPORT")
readonly KVERIFY_HOST_ADDRESS=127.0.0.1

readonly KVERIFY_DEFAULT_NAME=kverify
readonly KVERIFY_DEFAULT_IMAGE=kverify-demo-app:dev
readonly KVERIFY_DEFAULT_NAMESPACE=default

# Markers that tie a cluster to the setup run that made it; teardown deletes nothing without them.
readonly KVERIFY_RECORD_MAGIC=kverify-setup               # KVERIFY_CREATED_BY in every record
readonly KVERIFY_NODE_LABEL=dev.kverify/created-by        # Kubernetes node label (kind config)
readonly KVERIFY_RUNTIME_LABEL=dev.kverify.created-by     # docker container label (k3d --runtime-label)

# Exit statuses, the same meaning as kverify's own.
readonly EXIT_FAILED=1       # a check failed, or teardown refused
readonly EXIT_USAGE=2        # bad arguments, missing tool, unusable record
readonly EXIT_UNREACHABLE=3  # docker or the cluster cannot be reached, or a wait ran out of time

STATE_DIR="${KVERIFY_STATE_DIR:-$KVERIFY_ROOT/.kverify}"
DRY_RUN=0
SCRIPT_NAME="${SCRIPT_NAME:-$(basename "$0")}"

log() { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }

# die STATUS MESSAGE...: the one way scripts fail.
die() {
  local status=$1
  shift
  printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit "$status"
}

# A command line as the user could paste it back into a shell.
quote_command() {
  local out="" arg
  for arg in "$@"; do out+=" $(printf '%q' "$arg")"; done
  printf '%s' "${out# }"
}

# run COMMAND...: runs it (echoing it on stderr), or under --dry-run prints it on stdout instead.
run() {
  if ((DRY_RUN)); then
    printf '[dry-run] %s\n' "$(quote_command "$@")"
    return 0
  fi
  log "+ $(quote_command "$@")"
  "$@"
}

# run_with_stdin TEXT COMMAND...: like run, feeding TEXT on standard input (shown as a here-document).
run_with_stdin() {
  local input=$1
  shift
  [[ $input == *$'\n' ]] || input+=$'\n'
  if ((DRY_RUN)); then
    printf "[dry-run] %s <<'EOF'\n%sEOF\n" "$(quote_command "$@")" "$input"
    return 0
  fi
  log "+ $(quote_command "$@") <<'EOF' ($(printf '%s' "$input" | wc -l | tr -d ' ') lines)"
  printf '%s' "$input" | "$@"
}

install_hint() {
  case $1 in
    docker) printf 'install Docker Engine (https://docs.docker.com/engine/install/) or Docker Desktop on macOS, and start it' ;;
    kind) printf "install kind from https://kind.sigs.k8s.io/docs/user/quick-start/#installation (e.g. 'brew install kind' or 'go install sigs.k8s.io/kind@latest')" ;;
    k3d) printf "install k3d from https://k3d.io/#installation (e.g. 'brew install k3d' or a release binary from https://github.com/k3d-io/k3d/releases)" ;;
    kubectl) printf "install kubectl from https://kubernetes.io/docs/tasks/tools/ (e.g. 'brew install kubectl' or the pkgs.k8s.io apt repository)" ;;
    *) printf 'install %s' "$1" ;;
  esac
}

have_tool() { command -v "$1" >/dev/null 2>&1; }

# require_tool NAME [WHY]: fails with how to install NAME; never fetches it.
require_tool() {
  have_tool "$1" && return 0
  die "$EXIT_USAGE" "$1 not found on PATH${2:+ ($2)}: $(install_hint "$1"). These scripts never download tools themselves."
}

# need_value "$@" (called at an option): the option's value must follow it.
need_value() {
  [[ $# -ge 2 && -n $2 && $2 != --* ]] || die "$EXIT_USAGE" "$1 needs a value (see --help)"
}

validate_name() {
  [[ $1 =~ ^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$ ]] ||
    die "$EXIT_USAGE" "--name '$1': expected 1 to 32 lowercase letters, digits or '-', starting and ending with a letter or digit"
}

validate_count() {  # validate_count OPTION VALUE
  [[ $2 =~ ^[1-9][0-9]?$ ]] || die "$EXIT_USAGE" "$1 '$2': expected a whole number from 1 to 99"
}

validate_seconds() {  # validate_seconds OPTION VALUE
  [[ $2 =~ ^[1-9][0-9]{0,4}$ ]] || die "$EXIT_USAGE" "$1 '$2': expected a number of seconds from 1 to 99999"
}

record_path() { printf '%s/clusters/%s.env' "$STATE_DIR" "$1"; }
kubeconfig_path() { printf '%s/kubeconfig-%s' "$STATE_DIR" "$1"; }

# write_record NAME KEY=VALUE...: what setup created, written atomically so teardown never reads half a file.
write_record() {
  local name=$1 path pair tmp
  shift
  path="$(record_path "$name")"
  if ((DRY_RUN)); then
    printf '[dry-run] write %s:\n' "$path"
    printf '  %s\n' "$@"
    return 0
  fi
  mkdir -p "${path%/*}"
  tmp="$(mktemp "${path}.XXXXXX")"
  {
    printf '# Written by scripts/setup.sh. scripts/teardown.sh deletes only the cluster this file records.\n'
    for pair in "$@"; do
      [[ $pair == *$'\n'* ]] && die "$EXIT_USAGE" "record value for ${pair%%=*} contains a newline"
      printf '%s\n' "$pair"
    done
  } >"$tmp"
  mv "$tmp" "$path"
}

# read_record FILE: loads KEY=value lines (parsed, never sourced) for record_value. Plain arrays only:
# macOS's /bin/bash 3.2 has no associative arrays.
RECORD_LINES=()
read_record() {
  local file=$1 line number=0
  RECORD_LINES=()
  while IFS= read -r line || [[ -n $line ]]; do
    number=$((number + 1))
    [[ -z $line || $line == \#* ]] && continue
    [[ $line =~ ^[A-Z][A-Z0-9_]*=.*$ ]] ||
      die "$EXIT_USAGE" "record $file line $number: expected KEY=value, got '$line'"
    RECORD_LINES+=("$line")
  done <"$file"
}

# record_value KEY [DEFAULT]: KEY's value in the record read last (its last line wins); an empty or missing value gives DEFAULT.
record_value() {
  local line value=""
  for line in ${RECORD_LINES[@]+"${RECORD_LINES[@]}"}; do
    [[ $line == "$1="* ]] && value=${line#*=}
  done
  printf '%s' "${value:-${2-}}"
}

# find_kverify: prints the kverify binary to use for readiness, or fails when there is none.
# KVERIFY_BIN overrides the search (a path, or 'none' to always use kubectl).
find_kverify() {
  local candidate
  if [[ -n ${KVERIFY_BIN:-} ]]; then
    [[ $KVERIFY_BIN == none ]] && return 1
    [[ -x $KVERIFY_BIN ]] || die "$EXIT_USAGE" "KVERIFY_BIN='$KVERIFY_BIN' is not an executable file (use a path, or 'none')"
    printf '%s' "$KVERIFY_BIN"
    return 0
  fi
  if candidate="$(command -v kverify 2>/dev/null)"; then
    printf '%s' "$candidate"
    return 0
  fi
  for candidate in "$KVERIFY_ROOT"/.build/release/kverify "$KVERIFY_ROOT"/.build/debug/kverify "$KVERIFY_ROOT"/.build/*/*/kverify; do
    if [[ -x $candidate ]]; then
      printf '%s' "$candidate"
      return 0
    fi
  done
  return 1
}

# kubectl_args KUBECONFIG CONTEXT: fills KUBECTL with kubectl and the flags that select the cluster.
KUBECTL=()
kubectl_args() {
  KUBECTL=(kubectl)
  [[ -n $1 ]] && KUBECTL+=(--kubeconfig "$1")
  [[ -n $2 ]] && KUBECTL+=(--context "$2")
  return 0
}

# wait_for_nodes KUBECONFIG CONTEXT NODES TIMEOUT: until NODES nodes are Ready, or fails with exit 3.
# Uses `kverify preflight --nodes N` when a kverify with that command exists, kubectl otherwise.
wait_for_nodes() {
  local kubeconfig=$1 context=$2 nodes=$3 timeout=$4 kverify="" deadline output status
  local -a preflight
  deadline=$((SECONDS + timeout))
  kubectl_args "$kubeconfig" "$context"
  if kverify="$(find_kverify)"; then
    preflight=("$kverify" preflight --nodes "$nodes")
    [[ -n $kubeconfig ]] && preflight+=(--kubeconfig "$kubeconfig")
    [[ -n $context ]] && preflight+=(--context "$context")
    if ((DRY_RUN)); then
      printf '[dry-run] %s   # repeated until it passes or %ss pass, when %s supports preflight; otherwise:\n' \
        "$(quote_command "${preflight[@]}")" "$timeout" "$(quote_command "$kverify")"
    elif "$kverify" preflight --help >/dev/null 2>&1; then
      log "waiting up to ${timeout}s for $nodes Ready node(s): $(quote_command "${preflight[@]}")"
      while :; do
        status=0
        output="$("${preflight[@]}" 2>&1)" || status=$?
        ((status == 0)) && return 0
        if ((status == EXIT_USAGE)); then
          log "kverify preflight rejected its arguments (exit 2); waiting with kubectl instead: ${output##*$'\n'}"
          break
        fi
        ((SECONDS >= deadline)) &&
          die "$EXIT_UNREACHABLE" "nodes of context '$context' not ready within ${timeout}s; last 'kverify preflight' (exit $status) said:"$'\n'"$output"
        sleep 2
      done
    else
      log "$kverify has no 'preflight' command; waiting with kubectl"
    fi
  fi
  if ((DRY_RUN)); then
    printf '[dry-run] %s   # repeated until %s node(s) are registered\n' "$(quote_command "${KUBECTL[@]}" get nodes -o name)" "$nodes"
    run "${KUBECTL[@]}" wait --for=condition=Ready nodes --all "--timeout=${timeout}s"
    return 0
  fi
  require_tool kubectl "needed to wait for the nodes"
  local registered=0
  while :; do
    # `kubectl wait --all` only waits for nodes that exist, so first wait until all have registered.
    registered="$("${KUBECTL[@]}" get nodes -o name 2>/dev/null | grep -c . || true)"
    ((registered >= nodes)) && break
    ((SECONDS >= deadline)) &&
      die "$EXIT_UNREACHABLE" "context '$context': $registered of $nodes node(s) registered after ${timeout}s"
    sleep 2
  done
  run "${KUBECTL[@]}" wait --for=condition=Ready nodes --all "--timeout=$((deadline > SECONDS ? deadline - SECONDS : 1))s" >&2 ||
    die "$EXIT_UNREACHABLE" "context '$context': not all nodes Ready within ${timeout}s (see 'kubectl get nodes')"
}
