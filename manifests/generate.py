#!/usr/bin/env python3
"""Writes daemonset.yaml and sidecar.yaml from one pod template, so the two patterns cannot drift apart.

Usage: manifests/generate.py [--check]   (--check: exit 1 if the files on disk differ from what it would write)
Stdlib only. Edit this file, run it, commit both outputs."""

import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent

POD_SPEC = """
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
      initContainers:
        # Upstream waited for Redis in an init container too; this one gives up after 120 s with a message.
        - name: wait-for-redis
          image: kverify-demo-app:dev
          imagePullPolicy: IfNotPresent
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
              value: "6379"
          resources:
            requests:
              cpu: 10m
              memory: 32Mi
            limits:
              memory: 64Mi
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
      containers:
        # The app: gunicorn with the exporter's worker class; its workers store their metrics in Redis with a TTL
        # (EXPORTER_MODE=sidecar: the master serves nothing, the exporter container does).
        - name: app
          image: kverify-demo-app:dev
          imagePullPolicy: IfNotPresent
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
              cpu: 50m
              memory: 96Mi
            limits:
              memory: 256Mi
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
        # The exporter: serves this pod's metrics from Redis on 9091, the pod's only metrics port (upstream
        # declared 9091 on both containers).
        - name: prometheus-exporter
          image: kverify-demo-app:dev
          imagePullPolicy: IfNotPresent
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
              cpu: 20m
              memory: 64Mi
            limits:
              memory: 128Mi
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: multiproc
              mountPath: /tmp/prometheus_multiproc
      volumes:
        - name: tmp
          emptyDir: {}
        - name: multiproc
          emptyDir: {}
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
              value: sidecar
            - name: REDIS_ENABLED
              value: "true"
            - name: REDIS_HOST
              value: redis-service
            - name: REDIS_PORT
              value: "6379"
            - name: REDIS_KEY_PREFIX
              value: gunicorn-$(POD_NAME)
            - name: REDIS_TTL_SECONDS
              value: "300"
            - name: PROMETHEUS_MULTIPROC_DIR
              value: ""
            - name: PROMETHEUS_METRICS_PORT
              value: "9091"
            - name: PROMETHEUS_BIND_ADDRESS
              value: 0.0.0.0"""

LABELS = """    app.kubernetes.io/part-of: kverify-demo
    app.kubernetes.io/managed-by: kverify"""


def services(component: str) -> str:
    def service(name: str, port_name: str, port: int, node_port: int) -> str:
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
      nodePort: {node_port}
"""

    # NodePorts 30800/30991 are the ones scripts/lib/common.sh maps to 127.0.0.1 on kind and k3d.
    return service("gunicorn-app", "http", 8000, 30800) + service("gunicorn-metrics", "metrics", 9091, 30991)


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
    """  replicas: 3
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


def main() -> int:
    check = sys.argv[1:] == ["--check"]
    stale = []
    for name, text in (("daemonset.yaml", DAEMONSET), ("sidecar.yaml", SIDECAR)):
        path = HERE / name
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"generate.py: {', '.join(stale)} out of date; run manifests/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
