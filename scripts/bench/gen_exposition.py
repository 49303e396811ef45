#!/usr/bin/env python3
"""Write a gunicorn-style Prometheus text exposition (format 0.0.4) with exactly N samples.

The shape follows what the Gunicorn Prometheus Exporter 0.2.4 serves in Redis mode (see
Tests/PromTextTests/Fixtures/exporter-redis-0.2.4.txt): histograms print `_sum` before their `_bucket` lines and
every series carries `pid` and `worker_id` labels (the exporter puts `pid` on gauges only; it is on every series
here so 300,000 samples make 30+ MB). Many workers make it big.

By default each family has one HELP+TYPE block, so `promtool check metrics` can parse the output (for comparison
benchmarks). `--exporter-quirks` adds the exporter's sample-less first block of HELP+TYPE lines for every family,
which promtool rejects ("second HELP line") and kverify's text mode accepts as duplicate metadata.

Usage: gen_exposition.py [--samples N] [--seed S] [--exporter-quirks] [OUTPUT]   (default 300000 samples, stdout)
Stdlib only, deterministic for a given seed.
"""

import argparse
import random
import sys

BUCKETS = ["0.1", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0", "60.0", "+Inf"]

FAMILIES = [
    ("gunicorn_worker_requests_total", "counter", "Total number of requests handled by this worker"),
    ("gunicorn_worker_request_duration_seconds", "histogram", "Request duration in seconds"),
    ("gunicorn_worker_request_size_bytes", "histogram", "Request size in bytes"),
    ("gunicorn_worker_response_size_bytes", "histogram", "Response size in bytes"),
    ("gunicorn_worker_memory_bytes", "gauge", "Memory usage of the worker process"),
    ("gunicorn_worker_cpu_percent", "gauge", "CPU usage of the worker process"),
    ("gunicorn_worker_uptime_seconds", "gauge", "Uptime of the worker process"),
    ("gunicorn_worker_state", "gauge", "Current state of the worker (1=running, 0=stopped)"),
    ("gunicorn_worker_error_handling_total", "counter", "Total number of errors handled by this worker"),
]

# Samples one worker contributes to each family (histogram: buckets + _sum + _count).
PER_WORKER = {"counter": 1, "gauge": 1, "histogram": len(BUCKETS) + 2}
FILLER = "gunicorn_worker_error_handling_total"  # takes the remainder so the total is exact


def per_worker_samples():
    return sum(PER_WORKER[kind] for name, kind, _ in FAMILIES if name != FILLER)


def worker_lines(name, kind, worker, rng):
    worker_id, pid = worker
    wid = f'pid="{pid}",worker_id="{worker_id}"'
    if kind == "counter":
        yield f"{name}{{{wid}}} {float(rng.randint(1, 100000))}"
    elif kind == "gauge":
        if name == "gunicorn_worker_state":
            yield f'{name}{{pid="{pid}",state="running",timestamp="1795442513",worker_id="{worker_id}"}} 1.0'
        else:
            yield f'{name}{{{wid}}} {rng.random() * 1e8!r}'
    else:  # histogram, in the exporter's order: _sum first, then buckets, then _count
        counts, total = [], 0
        for _ in BUCKETS:
            total += rng.randint(0, 50)
            counts.append(total)
        yield f"{name}_sum{{{wid}}} {rng.random() * total!r}"
        for le, count in zip(BUCKETS, counts):
            yield f'{name}_bucket{{le="{le}",{wid}}} {float(count)}'
        yield f"{name}_count{{{wid}}} {float(total)}"


def generate(samples, seed, out, exporter_quirks=False):
    rng = random.Random(seed)
    per_worker = per_worker_samples()
    n_workers = samples // per_worker
    remainder = samples - n_workers * per_worker
    workers = [(f"worker_{i}_{1795442513 + i // 64}", 10000 + i) for i in range(max(n_workers, remainder))]

    write = out.write
    if exporter_quirks:
        for name, kind, help_text in FAMILIES:  # the exporter's sample-less first block
            write(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
    written = 0
    for name, kind, help_text in FAMILIES:
        write(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
        count = remainder if name == FILLER else n_workers
        for worker in workers[:count]:
            for line in worker_lines(name, kind, worker, rng):
                write(line)
                write("\n")
                written += 1
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300_000, help="number of sample lines (default 300000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--exporter-quirks", action="store_true",
                        help="add the exporter's duplicate HELP/TYPE block (promtool rejects it)")
    parser.add_argument("output", nargs="?", help="output file (default stdout)")
    args = parser.parse_args()
    if args.samples < 0:
        parser.error("--samples must be >= 0")
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    try:
        written = generate(args.samples, args.seed, out, args.exporter_quirks)
    except BrokenPipeError:  # e.g. piped into `head`
        sys.stderr.close()
        return
    finally:
        if args.output:
            out.close()
    print(f"wrote {written} samples", file=sys.stderr)


if __name__ == "__main__":
    main()
