import ArgumentParser
import Findings
import Verification

/// `kverify daemonset`: the DaemonSet pattern, end to end.
struct DaemonSetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemonset",
        abstract: "Deploy the app+exporter DaemonSet and Redis into a fresh namespace, verify every node, clean up.",
        discussion: PatternDiscussion.text(pattern: .daemonset, rollout: """
            DaemonSet: generation observed; desired, current, updated, ready and available all equal; desired equals \
            the eligible nodes (--nodes minus the tainted control plane on a kind-shaped cluster); exactly one Ready \
            pod, every container Ready, on every eligible node.
            """)
    )

    @OptionGroup var options: PatternOptions

    func run() async throws { try await options.run(.daemonset) }
}

/// `kverify sidecar`: the sidecar pattern (a Deployment, one replica per node), end to end.
struct SidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sidecar",
        abstract: "Deploy the app with its exporter sidecar (replicas = --nodes) and Redis, verify every pod, clean up.",
        discussion: PatternDiscussion.text(pattern: .sidecar, rollout: """
            Deployment: generation observed; replicas, updated, ready and available all equal spec.replicas = --nodes; \
            --nodes pods Ready on --nodes distinct nodes, every container (native sidecars too) Ready.
            """)
    )

    @OptionGroup var options: PatternOptions

    func run() async throws { try await options.run(.sidecar) }
}

/// The `--help` text both pattern commands share.
enum PatternDiscussion {
    static let sidecarRewrite = ", replicas = --nodes, and a topology spread constraint over kubernetes.io/hostname when the "
        + "Deployment has no spread rule of its own (reported as apply.spread)"

    static func text(pattern: Pattern, rollout: String) -> String {
        """
        PHASES (each timed in the report)
          exporter   the exporter's mode and settings read from the files (below); a configuration the exporter \
        would refuse stops the run here, before the cluster is contacted
          preflight  the API answers; at least --nodes Ready nodes; the permissions a run uses
          apply      create namespace <--namespace>-<run id> (labelled kverify.io/run=<id>) and server-side apply \
        \(pattern.manifestFiles.joined(separator: " + ")) into it (fieldManager kverify): every object labelled, \
        images from --image-app/--image-redis, REDIS_TTL_SECONDS=--redis-ttl, fixed nodePorts removed (the \
        allocated one is read back)\(pattern == .sidecar ? Self.sidecarRewrite : "")
          wait       watch-driven, until --timeout. \(rollout) Fails fast, with the pod's node, waiting reason and \
        message, last termination, events and its last 20 log lines, on CrashLoopBackOff, ImagePullBackOff, \
        ErrImagePull, CreateContainerConfigError, a pod Unschedulable for 15 s, or a NotReady node
          traffic    --requests GETs to every pod's app port (--path, default /) through the API server proxy
          scrape     every pod's metrics endpoint through the proxy, concurrently, judged by the gunicorn profile \
        (see kverify metrics --help); one verdict per node
          workers    every GUNICORN_WORKERS worker has its worker_id in /metrics; multiprocess: every live \
        worker's .db files in PROMETHEUS_MULTIPROC_DIR (through exec)
          logs       every container's log scanned for the exporter's failure messages ('skipping metrics server', …); \
        a container restarted since Ready fails pods.stable
          lifecycle  through exec into the gunicorn container: TTIN, TTOU, HUP, USR1 to the master, QUIT and ABRT to \
        a worker, each with the process and /metrics changes it implies (--skip-lifecycle, --lifecycle-pods); then \
        that pod is deleted gracefully: Terminating, every container exits on SIGTERM within its grace period \
        (137, killed at its end, fails), the controller's replacement Ready and serving (--skip-shutdown)
          redis      the keys of every pod (its REDIS_KEY_PREFIX; a shared prefix once) audited over a NodePort on a \
        node's InternalIP (or --redis-addr), with the exporter's REDIS_PASSWORD and REDIS_DB: TTL set and ≤ \
        --redis-ttl, layout, metric/meta pairs. Not in multiprocess mode
          expiry     the app is deleted (probes would keep refreshing TTLs), then every key must expire within \
        TTL + slack (--skip-expiry skips it)
          cleanup    the run namespace is deleted and waited for — after success, failure, timeout or Ctrl-C \
        (SIGINT/SIGTERM/SIGHUP) — unless --keep. Nothing kverify did not create is touched.

        ENDPOINTS (found per pod; the report's targets.endpoints says which rule found each)
          metrics    --metrics-port; else prometheus.io/port (+ prometheus.io/path, default /metrics) on the pod \
        template; else the same annotations on a Service selecting the pods; else a container port named metrics. \
        None of these: exit 2 before any cluster is contacted
          app        --app-port; else the container port named http; else the first other container port
          redis      the Service the exporter's REDIS_HOST names (env, else its YAML); a ClusterIP Service gets a \
        run-owned NodePort twin <name>-kverify-access; --redis-addr overrides

        EXPORTER MODES (from the gunicorn container's env, and YAML_CONFIG_PATH's YAML in a ConfigMap; env wins)
          sidecar       REDIS_ENABLED=true and another container declares the metrics port
          embedded      REDIS_ENABLED=true and the gunicorn master serves the metrics port
          multiprocess  PROMETHEUS_MULTIPROC_DIR without Redis: the Redis phases are skipped

        OUTPUT
          text: one line per phase, then failures and warnings (a live per-node table during the wait when stdout \
        is a terminal); json; junit (one testcase per check and pod/node).

        EXIT CODES
          0  verified: every check passed (warnings allowed)
          1  a check failed: the exporter's configuration, preflight, rollout (including --timeout), traffic, metrics, workers, logs, lifecycle, Redis audit or expiry;
             or the run was interrupted (SIGINT/SIGTERM/SIGHUP) and cleaned up
          2  usage error, unreadable manifests, --chart without helm; manifests with a cluster-scoped object (Node,
             ClusterRole, …: kverify applies namespaced objects into its run namespace only) or without the pattern's
             \(pattern.workloadKind), or whose pods declare no metrics endpoint; with --sim, a missing network shim or runtime program (named, with the fix)
          3  the cluster or the run's Redis could not be reached (connection, TLS, authentication); transient API
             errors (429, 5xx, dropped connections) are retried first, within the phase's deadline, and counted in
             the report (cluster.retries)
        """
    }
}
