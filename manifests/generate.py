#!/usr/bin/env python3
"""Writes manifests/daemonset.yaml and sidecar.yaml from one pod template, so the two patterns cannot drift apart,
and the Helm chart charts/kverify-demo (values.yaml and templates/) from the same text, so the chart cannot drift
from manifests/ either.

The templates below hold value placeholders: <<path>> and <<quote path>>. For manifests/ they become the default
in VALUES; for the chart, {{ .Values.path }} and {{ quote .Values.path }}. Lines between `<<if MODE ...>>` and
`<<end>>` belong to those exporter modes only (EXPORTER_MODES): manifests/ keeps or drops them per mode, the chart
turns them into `{{- if has .Values.exporter.mode (list ...) }}`. manifests/daemonset.yaml and sidecar.yaml are the
default mode (sidecar); manifests/modes/<mode>/ holds each other mode's files, each complete in itself (Redis and the
exporter's ConfigMap included where the mode needs them). manifests/redis.yaml is written by hand; the chart's redis
template is derived from it by exact line substitutions (REDIS_VALUE_LINES).

Usage: manifests/generate.py [--check]   (--check: exit 1 if a file on disk differs from what it would write)
Stdlib only. Edit this file, run it, commit all outputs."""

import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
CHART = HERE.parent / "charts" / "kverify-demo"

# The chart's values: (path, default, comment). The defaults are what manifests/ holds; helm template and ChartTests
# check that the chart renders exactly manifests/ for them.
VALUES = [
    ("mode", "daemonset",
     "daemonset: the app and its exporter on every worker node (not the tainted control plane);\n"
     "sidecar: a Deployment with `nodes` replicas, one per node, control plane included"),
    ("nodes", 3, "sidecar mode: the replica count, the cluster size as kind counts it (kverify sets it to --nodes)"),
    ("exporter.mode", "sidecar",
     "how the Gunicorn Prometheus Exporter runs (manifests/app/gunicorn_conf.py):\n"
     "sidecar: workers store in Redis, a second container serves /metrics from Redis;\n"
     "embedded: workers store in Redis, the gunicorn master serves /metrics (redis_when_ready);\n"
     "multiprocess: workers write files to PROMETHEUS_MULTIPROC_DIR (an emptyDir), the master serves them; no Redis;\n"
     "yaml: embedded, with the exporter's settings in a ConfigMap read through YAML_CONFIG_PATH (env wins over it)"),
    ("images.app", "kverify-demo-app:dev",
     "the demo app (manifests/app/Dockerfile): app, exporter and wait-for-redis containers"),
    ("images.redis", "redis:7-alpine", None),
    ("images.pullPolicy", "IfNotPresent", "kind and k3d load the images into the nodes; IfNotPresent uses them"),
    ("ttlSeconds", 300, "REDIS_TTL_SECONDS: how long the exporter's Redis keys live after their last write"),
    ("redis.port", 6379, "the redis-service port the pods connect to (REDIS_PORT)"),
    ("redis.keyPrefix", "gunicorn", "each pod stores its keys under <keyPrefix>-<pod name>: PIDs repeat across nodes"),
    ("nodePorts.app", 30800, None),
    ("nodePorts.metrics", 30991, None),
    ("nodePorts.redis", 30379, None),
    ("resources.waitForRedis.requests.cpu", "10m", None),
    ("resources.waitForRedis.requests.memory", "32Mi", None),
    ("resources.waitForRedis.limits.memory", "64Mi", None),
    ("resources.app.requests.cpu", "50m", None),
    ("resources.app.requests.memory", "96Mi", None),
    ("resources.app.limits.memory", "256Mi", None),
    ("resources.exporter.requests.cpu", "20m", None),
    ("resources.exporter.requests.memory", "64Mi", None),
    ("resources.exporter.limits.memory", "128Mi", None),
    ("resources.redis.requests.cpu", "50m", None),
    ("resources.redis.requests.memory", "64Mi", None),
    ("resources.redis.limits.memory", "256Mi", None),
]
DEFAULTS = {path: default for path, default, _ in VALUES}
EXPORTER_MODES = ["sidecar", "embedded", "multiprocess", "yaml"]
REDIS_MODES = ["sidecar", "embedded", "yaml"]
GROUP_COMMENTS = {
    "nodePorts": "the NodePorts scripts/lib/common.sh maps to 127.0.0.1 on kind and k3d",
    "resources": "per container (waitForRedis is the init container); only these keys are templated",
    "exporter": "the exporter's mode: one of EXPORTER_MODES",
}

# A plain YAML scalar that every parser (YAML 1.1 and 1.2, helm's and Yams') reads as this string.
PLAIN_STRING = re.compile(r"[A-Za-z_/][A-Za-z0-9_./:@-]*|[0-9]+(m|Mi|Gi|Ki)")
AMBIGUOUS = re.compile(r"(?i)y|n|yes|no|on|off|true|false|null")


def yaml_scalar(value, as_string: bool) -> str:
    """The default as YAML text: ints as digits (unless quoted), strings plain when that is unambiguous."""
    text = str(value)
    if isinstance(value, int) and not as_string:
        return text
    if PLAIN_STRING.fullmatch(text) and not AMBIGUOUS.fullmatch(text):
        return text
    assert '"' not in text and "\\" not in text, text
    return f'"{text}"'


PLACEHOLDER = re.compile(r"<<(quote )?([A-Za-z.]+)>>")


CONDITION = re.compile(r"^ *<<if ([a-z ]+)>>\n|^ *<<end>>\n", re.M)


def conditional_blocks(text: str, keep) -> str:
    """Resolves `<<if MODE ...>>` ... `<<end>>` lines (nestable): `keep(modes)` says whether a block stays."""
    out, stack, position = [], [], 0
    for match in CONDITION.finditer(text):
        if all(stack):
            out.append(text[position:match.start()])
        position = match.end()
        if match.group(1):
            modes = match.group(1).split()
            assert all(mode in EXPORTER_MODES for mode in modes), modes
            stack.append(keep(modes))
        else:
            assert stack, "<<end>> without <<if>>"
            stack.pop()
    assert not stack, "<<if>> without <<end>>"
    out.append(text[position:])
    return "".join(out)


def for_manifests(text: str, mode: str = DEFAULTS["exporter.mode"]) -> str:
    values = dict(DEFAULTS, **{"exporter.mode": mode})

    def default(match):
        return yaml_scalar(values[match.group(2)], as_string=bool(match.group(1)))

    out = PLACEHOLDER.sub(default, conditional_blocks(text, lambda modes: mode in modes))
    assert "<<" not in out, "a malformed placeholder"
    return out


def for_chart(text: str) -> str:
    assert "{{" not in text and "}}" not in text, "literal braces would be read as template actions"

    def action(match):
        assert match.group(2) in DEFAULTS, match.group(2)
        return "{{ %s.Values.%s }}" % ("quote " if match.group(1) else "", match.group(2))

    def condition(match):
        if not match.group(1):
            return "{{- end }}\n"
        modes = " ".join('"%s"' % mode for mode in match.group(1).split())
        return "{{- if has .Values.exporter.mode (list %s) }}\n" % modes

    return PLACEHOLDER.sub(action, CONDITION.sub(condition, text))


POD_SPEC = """
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
<<if sidecar embedded yaml>>
      initContainers:
        # Upstream waited for Redis in an init container too; this one gives up after 120 s with a message.
        - name: wait-for-redis
          image: <<quote images.app>>
          imagePullPolicy: <<images.pullPolicy>>
          command:
            - python
            - -c
            - |
              import os, socket, sys, time
              host, port = os.environ["REDIS_HOST"], int(os.environ["REDIS_PORT"])
              deadline = time.monotonic() + 120
              while time.monotonic() < deadline:
                  try:
                      socket.create_connection((host, port), timeout=2).close()
                      sys.exit(0)
                  except OSError as error:
                      print(f"waiting for redis at {host}:{port}: {error}", flush=True)
                      time.sleep(1)
              sys.exit(f"redis at {host}:{port} did not answer within 120 s")
          env:
            - name: REDIS_HOST
              value: redis-service
            - name: REDIS_PORT
              value: <<quote redis.port>>
          resources:
            requests:
              cpu: <<resources.waitForRedis.requests.cpu>>
              memory: <<resources.waitForRedis.requests.memory>>
            limits:
              memory: <<resources.waitForRedis.limits.memory>>
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
<<end>>
      containers:
        # The app: gunicorn with the exporter's worker class. EXPORTER_MODE=sidecar: its workers store their metrics
        # in Redis with a TTL and the master serves nothing, the exporter container does; embedded and yaml: the
        # master serves them from Redis on 9091; multiprocess: from the files its workers write, without Redis.
        - name: app
          image: <<quote images.app>>
          imagePullPolicy: <<images.pullPolicy>>
          # Run from /tmp (an emptyDir): prometheus_client writes multiprocess .db files into the working directory
          # even in Redis mode, and the image's /app is read-only here.
          workingDir: /tmp
          command: ["gunicorn", "-c", "/app/gunicorn_conf.py", "--pythonpath", "/app", "app:application"]
          env:
ENV
            - name: APP_BIND
              value: 0.0.0.0:8000
            - name: GUNICORN_WORKERS
              value: "2"
          ports:
            - name: http
              containerPort: 8000
<<if embedded multiprocess yaml>>
            - name: metrics
              containerPort: 9091
<<end>>
          readinessProbe:
            httpGet:
              path: /health
              port: http
            periodSeconds: 2
          livenessProbe:
            httpGet:
              path: /health
              port: http
            periodSeconds: 10
            failureThreshold: 3
          resources:
            requests:
              cpu: <<resources.app.requests.cpu>>
              memory: <<resources.app.requests.memory>>
            limits:
              memory: <<resources.app.limits.memory>>
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
<<if multiprocess>>
            # PROMETHEUS_MULTIPROC_DIR: the workers' files, read by the master; writable on a read-only root.
            - name: multiproc
              mountPath: /tmp/prometheus_multiproc
<<end>>
<<if yaml>>
            - name: exporter-config
              mountPath: /etc/gunicorn-exporter
              readOnly: true
<<end>>
<<if sidecar>>
        # The exporter: serves this pod's metrics from Redis on 9091, the pod's only metrics port (upstream
        # declared 9091 on both containers).
        - name: prometheus-exporter
          image: <<quote images.app>>
          imagePullPolicy: <<images.pullPolicy>>
          command: ["python", "/app/sidecar.py"]
          env:
ENV
          ports:
            - name: metrics
              containerPort: 9091
          readinessProbe:
            httpGet:
              path: /metrics
              port: metrics
            periodSeconds: 2
          livenessProbe:
            httpGet:
              path: /metrics
              port: metrics
            periodSeconds: 10
            failureThreshold: 3
          resources:
            requests:
              cpu: <<resources.exporter.requests.cpu>>
              memory: <<resources.exporter.requests.memory>>
            limits:
              memory: <<resources.exporter.limits.memory>>
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: multiproc
              mountPath: /tmp/prometheus_multiproc
<<end>>
      volumes:
        - name: tmp
          emptyDir: {}
<<if sidecar multiprocess>>
        - name: multiproc
          emptyDir: {}
<<end>>
<<if yaml>>
        - name: exporter-config
          configMap:
            name: gunicorn-exporter-config
<<end>>
"""

# Shared by the app and the exporter container. Keys are {prefix}:{type}:{pid}:…, and pods on different nodes
# reuse the same PIDs, so each pod gets its own prefix (upstream shared one, so pods could overwrite each other).
ENV = """            - name: NODE_NAME
              valueFrom:
                fieldRef:
                  fieldPath: spec.nodeName
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: EXPORTER_MODE
              value: <<exporter.mode>>
<<if sidecar embedded>>
            - name: REDIS_ENABLED
              value: "true"
            - name: REDIS_HOST
              value: redis-service
            - name: REDIS_PORT
              value: <<quote redis.port>>
<<end>>
<<if yaml>>
            # The exporter's settings are in the ConfigMap's YAML; what is set here wins over it.
            - name: YAML_CONFIG_PATH
              value: /etc/gunicorn-exporter/exporter.yaml
<<end>>
<<if sidecar embedded yaml>>
            - name: REDIS_KEY_PREFIX
              value: <<redis.keyPrefix>>-$(POD_NAME)
<<end>>
<<if sidecar embedded>>
            - name: REDIS_TTL_SECONDS
              value: <<quote ttlSeconds>>
            - name: PROMETHEUS_MULTIPROC_DIR
              value: ""
            - name: PROMETHEUS_METRICS_PORT
              value: "9091"
            - name: PROMETHEUS_BIND_ADDRESS
              value: 0.0.0.0
<<end>>
<<if multiprocess>>
            # The image sets REDIS_ENABLED=true (manifests/app/Dockerfile); the pod's env wins over the image's.
            - name: REDIS_ENABLED
              value: "false"
            - name: PROMETHEUS_MULTIPROC_DIR
              value: /tmp/prometheus_multiproc
            - name: PROMETHEUS_METRICS_PORT
              value: "9091"
            - name: PROMETHEUS_BIND_ADDRESS
              value: 0.0.0.0
<<end>>"""

LABELS = """    app.kubernetes.io/part-of: kverify-demo
    app.kubernetes.io/managed-by: kverify"""


def services(component: str) -> str:
    def service(name: str, port_name: str, port: int, node_port: str) -> str:
        return f"""---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
    app: gunicorn-prometheus-exporter
    component: {component}
{LABELS}
spec:
  type: NodePort
  selector:
    app: gunicorn-prometheus-exporter
    component: {component}
  ports:
    - name: {port_name}
      port: {port}
      targetPort: {port_name}
      nodePort: <<nodePorts.{node_port}>>
"""

    # NodePorts 30800/30991 are the ones scripts/lib/common.sh maps to 127.0.0.1 on kind and k3d.
    return service("gunicorn-app", "http", 8000, "app") + service("gunicorn-metrics", "metrics", 9091, "metrics")


def workload(kind: str, name: str, component: str, comment: str, spec_head: str, pod_head: str) -> str:
    pod = POD_SPEC.replace("ENV", ENV)
    return f"""# GENERATED by manifests/generate.py from the pod template both patterns share: edit that, then run it.
# {comment}
apiVersion: apps/v1
kind: {kind}
metadata:
  name: {name}
  labels:
    app: gunicorn-prometheus-exporter
    component: {component}
{LABELS}
spec:
{spec_head}  selector:
    matchLabels:
      app: gunicorn-prometheus-exporter
      component: {component}
  template:
    metadata:
      labels:
        app: gunicorn-prometheus-exporter
        component: {component}
        app.kubernetes.io/part-of: kverify-demo
    spec:{pod_head}{pod}""" + services(component)


DAEMONSET = workload(
    "DaemonSet", "gunicorn-prometheus-exporter-daemonset", "daemonset",
    "The DaemonSet pattern: the app and its exporter on every schedulable node (not the tainted control plane).",
    """  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 1
""", "")

SIDECAR = workload(
    "Deployment", "gunicorn-app-with-sidecar", "sidecar",
    "The sidecar pattern: a Deployment with one replica per node (kverify sets replicas to --nodes), each pod the app plus its exporter.",
    """  replicas: <<nodes>>
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 1
      maxSurge: 0
""", """
      # One replica per node, on every node: kverify sets replicas to the cluster size as kind counts it, control
      # plane included, so the pods must tolerate that node's taint or the last replica never schedules. Only this
      # taint: the DaemonSet pattern runs on workers only, by design.
      tolerations:
        - key: node-role.kubernetes.io/control-plane
          operator: Exists
          effect: NoSchedule
      # Spread by hostname, and never two on one node.
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: DoNotSchedule
          labelSelector:
            matchLabels:
              app: gunicorn-prometheus-exporter
              component: sidecar
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            - topologyKey: kubernetes.io/hostname
              labelSelector:
                matchLabels:
                  app: gunicorn-prometheus-exporter
                  component: sidecar""")


EXPORTER_CONFIG = f"""# GENERATED by manifests/generate.py: the exporter's own settings for exporter.mode=yaml, read through
# YAML_CONFIG_PATH by manifests/app/gunicorn_conf.py. Env set on the containers wins over every value here.
apiVersion: v1
kind: ConfigMap
metadata:
  name: gunicorn-exporter-config
  labels:
    app: gunicorn-prometheus-exporter
{LABELS}
data:
  exporter.yaml: |
    exporter:
      prometheus:
        metrics_port: 9091
        bind_address: 0.0.0.0
      gunicorn:
        # The containers set GUNICORN_WORKERS=2, which wins: the pods run 2 workers, not 4.
        workers: 4
        timeout: 30
      redis:
        enabled: true
        host: redis-service
        port: <<redis.port>>
        # The containers set REDIS_KEY_PREFIX per pod (<keyPrefix>-<pod name>), which wins over this one.
        key_prefix: <<redis.keyPrefix>>
        ttl_seconds: <<ttlSeconds>>
"""


# manifests/redis.yaml lines that carry a value, and their placeholder; each must occur exactly once.
REDIS_VALUE_LINES = [
    ("          image: redis:7-alpine", "          image: <<quote images.redis>>"),
    ("          imagePullPolicy: IfNotPresent", "          imagePullPolicy: <<images.pullPolicy>>"),
    ("              cpu: 50m", "              cpu: <<resources.redis.requests.cpu>>"),
    ("              memory: 64Mi", "              memory: <<resources.redis.requests.memory>>"),
    ("              memory: 256Mi", "              memory: <<resources.redis.limits.memory>>"),
    ("      port: 6379", "      port: <<redis.port>>"),
    ("      nodePort: 30379", "      nodePort: <<nodePorts.redis>>"),
]


def redis_template() -> str:
    lines = (HERE / "redis.yaml").read_text().split("\n")
    for literal, placeholder in REDIS_VALUE_LINES:
        hits = [i for i, line in enumerate(lines) if line == literal]
        if len(hits) != 1:
            sys.exit(f"generate.py: manifests/redis.yaml has {len(hits)} lines '{literal.strip()}', expected 1; "
                     "update REDIS_VALUE_LINES")
        lines[hits[0]] = placeholder
    template = "\n".join(lines)
    if for_manifests(template) != (HERE / "redis.yaml").read_text():
        sys.exit("generate.py: manifests/redis.yaml values differ from the defaults in VALUES")
    return "# GENERATED by manifests/generate.py from manifests/redis.yaml.\n" + template


def only_in_mode(mode: str, text: str) -> str:
    return '{{- if eq .Values.mode "%s" }}\n%s{{- end }}\n' % (mode, text)


def only_in_exporter_modes(modes: list[str], text: str) -> str:
    return "{{- if has .Values.exporter.mode (list %s) }}\n%s{{- end }}\n" % (" ".join('"%s"' % m for m in modes), text)


MODE_CHECK = """{{- /* GENERATED by manifests/generate.py. Renders nothing: stops a mistyped mode from rendering Redis alone. */}}
{{- if ne .Values.mode "daemonset" }}
{{- if ne .Values.mode "sidecar" }}
{{- fail "values: mode must be daemonset or sidecar" }}
{{- end }}
{{- end }}
{{- if not (has .Values.exporter.mode (list %s)) }}
{{- fail "values: exporter.mode must be one of %s" }}
{{- end }}
""" % (" ".join('"%s"' % m for m in EXPORTER_MODES), ", ".join(EXPORTER_MODES))


def mode_files() -> dict[pathlib.Path, str]:
    """manifests/modes/<mode>/{daemonset,sidecar}.yaml for every mode but the default, each file complete."""
    files = {}
    for mode in EXPORTER_MODES:
        if mode == DEFAULTS["exporter.mode"]:
            continue
        head = ""
        if mode in REDIS_MODES:
            head += (HERE / "redis.yaml").read_text() + "---\n"
        if mode == "yaml":
            head += for_manifests(EXPORTER_CONFIG, mode) + "---\n"
        for name, text in (("daemonset.yaml", DAEMONSET), ("sidecar.yaml", SIDECAR)):
            files[HERE / "modes" / mode / name] = head + for_manifests(text, mode)
    return files


def values_yaml() -> str:
    out = ["# GENERATED by manifests/generate.py (VALUES): these defaults render exactly manifests/."]
    open_path: list[str] = []
    for path, default, comment in VALUES:
        keys = path.split(".")
        common = 0
        while common < min(len(open_path), len(keys) - 1) and open_path[common] == keys[common]:
            common += 1
        if common == 0:
            out.append("")
        for depth in range(common, len(keys) - 1):
            group = ".".join(keys[:depth + 1])
            if group in GROUP_COMMENTS:
                out.append("  " * depth + "# " + GROUP_COMMENTS[group])
            out.append("  " * depth + keys[depth] + ":")
        indent = "  " * (len(keys) - 1)
        out += [indent + "# " + line for line in (comment or "").split("\n") if line]
        out.append(indent + f"{keys[-1]}: {yaml_scalar(default, as_string=False)}")
        open_path = keys[:-1]
    return "\n".join(out) + "\n"


# `helm test`'s hook (chart only: not part of an install, so not in manifests/): one request to the app, then the
# exporter's request counter must be served through the metrics Service, within a minute.
HELM_TEST = """{{- /* GENERATED by manifests/generate.py. helm test: the app answers and /metrics counts its requests. */}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-metrics-test
  labels:
    app.kubernetes.io/part-of: kverify-demo
  annotations:
    helm.sh/hook: test
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  containers:
    - name: metrics-test
      image: {{ .Values.images.app }}
      imagePullPolicy: {{ .Values.images.pullPolicy }}
      command:
        - python
        - -c
        - |
          import time, urllib.request
          deadline, last = time.time() + 60, "nothing tried"
          while time.time() < deadline:
              try:
                  urllib.request.urlopen("http://gunicorn-app:8000/", timeout=5).read()
                  body = urllib.request.urlopen("http://gunicorn-metrics:9091/metrics", timeout=5).read().decode()
                  if "gunicorn_worker_requests_total{" in body:
                      print("ok: gunicorn-metrics serves gunicorn_worker_requests_total")
                      raise SystemExit(0)
                  last = "gunicorn-metrics answers without a gunicorn_worker_requests_total sample"
              except OSError as error:
                  last = str(error)
              time.sleep(1)
          print("FAIL:", last)
          raise SystemExit(1)
"""


def outputs() -> dict[pathlib.Path, str]:
    templates = CHART / "templates"
    return {
        HERE / "daemonset.yaml": for_manifests(DAEMONSET),
        HERE / "sidecar.yaml": for_manifests(SIDECAR),
        CHART / "values.yaml": values_yaml(),
        templates / "redis.yaml": only_in_exporter_modes(REDIS_MODES, for_chart(redis_template())),
        templates / "exporter-config.yaml": only_in_exporter_modes(["yaml"], for_chart(EXPORTER_CONFIG)),
        templates / "daemonset.yaml": only_in_mode("daemonset", for_chart(DAEMONSET)),
        templates / "sidecar.yaml": only_in_mode("sidecar", for_chart(SIDECAR)),
        templates / "validate.yaml": MODE_CHECK,
        templates / "tests" / "metrics-test.yaml": HELM_TEST,
    } | mode_files()


def main() -> int:
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] and not check:
        print(__doc__, file=sys.stderr)
        return 2
    files = outputs()
    templates = "".join(text for path, text in files.items() if path.parent.name == "templates")
    unused = [path for path in DEFAULTS if f".Values.{path} " not in templates]
    assert not unused, f"values no template reads: {unused}"
    root = HERE.parent
    stale = []
    for path, text in files.items():
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(root)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    # A hand-added template would escape the contract "the chart renders manifests/"; it belongs in this file.
    extra = sorted(str(p.relative_to(root)) for p in (CHART / "templates").rglob("*") if p.is_file() and p not in files)
    if extra:
        print(f"generate.py: {', '.join(extra)} not generated by manifests/generate.py; add it here", file=sys.stderr)
        return 1
    if stale:
        print(f"generate.py: {', '.join(stale)} out of date; run manifests/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
