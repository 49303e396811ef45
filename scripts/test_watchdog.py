#!/usr/bin/env python3
"""Runs the test command (`swift test ...`) and turns a hang into a failure that names what hung.

A test that never returns leaves CI silent until its own time limit kills everything, with nothing in the log to say
which test it was. This wrapper passes the output through line by line, keeps track of the Swift Testing tests that
have started and not ended, and when no test has ended for --stall seconds (default 900, or
KVERIFY_TEST_STALL_SECONDS) it prints those tests, the threads of every test process (through gdb, when installed),
kills the run and exits 1. It is a hang detector, not a timing check: a run that keeps finishing tests is never
stopped.

Usage: scripts/test_watchdog.py [--stall SECONDS] -- COMMAND [ARGS...]
"""
import os
import re
import signal
import shutil
import subprocess
import sys
import threading
import time

STARTED = re.compile(r'^◇ Test (?!case )(.+?) started\.$')
# "✔ Test "x" passed after…", "✘ Test "x" with 3 test cases failed after…": a parameterized test ends once, under
# the name it started with. "✘ Test "x" recorded an issue…" is not an end.
ENDED = re.compile(r'^[✔✘] Test (.+?)(?: with \d+ test cases?)? (?:passed|failed) after ')
SKIPPED = re.compile(r'^[➜✔↳] Test (.+?) skipped')
# A frame of the project's own code in a gdb backtrace: "… at /path/Sources/Module/File.swift:42".
OWN_FRAME = re.compile(r' at (/\S*?/(?:Sources|Tests)/\S+?\.swift:\d+)')


def descendants(pid):
    """Every process under `pid`, read from /proc (ps may not be installed)."""
    children = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as stat:
                fields = stat.read().rsplit(')', 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def command_line(pid):
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            return f.read().replace(b'\0', b' ').decode(errors='replace').strip()
    except OSError:
        return '?'


def own_frames(dump):
    """Per thread of a gdb dump: its innermost system call and first three frames of project code, alike ones
    counted together. Threads with no project frame (idle pool threads, event loops) are left out."""
    counts = {}
    for thread in re.split(r'\n(?=Thread \d+ )', dump):
        own = [frame for frame in OWN_FRAME.findall(thread) if '/.build/' not in frame]
        if not own:
            continue
        first = re.search(r'#0 +(?:0x[0-9a-f]+ in )?(\S+)', thread)
        key = ' <- '.join([first.group(1) if first else '?'] + [frame.rsplit('/', 1)[-1] for frame in own[:3]])
        counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])


def main():
    args = sys.argv[1:]
    stall = float(os.environ.get('KVERIFY_TEST_STALL_SECONDS', '900'))
    if args[:1] == ['--stall']:
        stall, args = float(args[1]), args[2:]
    if args[:1] == ['--']:
        args = args[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2

    # Line-buffered children (stdbuf reaches the test binary through the environment), so the log is current.
    if shutil.which('stdbuf'):
        args = ['stdbuf', '-oL', '-eL'] + args
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    running = {}  # test name -> start times (names can repeat across suites)
    lock = threading.Lock()
    last_end = [time.monotonic()]
    stalled = threading.Event()

    def watch():
        while process.poll() is None:
            time.sleep(5)
            with lock:
                quiet = time.monotonic() - last_end[0]
                if quiet < stall or not running:
                    continue
                stalled.set()
                now = time.monotonic()
                hung = sorted(((now - t, name) for name, times in running.items() for t in times), reverse=True)
            report(process.pid, hung, quiet)
            os.killpg(process.pid, signal.SIGKILL)
            return

    def report(pid, hung, quiet):
        """The whole gdb dump first; the short forms last, since a CI log is often shown by its tail."""
        out = sys.stdout
        out.write(f'\n=== test watchdog: no test ended in {quiet:.0f} s; stopping the run ===\n')
        tools = shutil.which('gdb')
        summaries = []
        for child in [pid] + descendants(pid):
            line = command_line(child)
            if tools and ('.xctest' in line or 'swiftpm-testing-helper' in line or 'PackageTests' in line):
                out.write(f'--- threads of {child}: {line}\n')
                out.flush()
                try:
                    dump = subprocess.run([tools, '-p', str(child), '-batch', '-ex', 'thread apply all bt 40'],
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=120,
                                          check=False).stdout.decode(errors='replace')
                except subprocess.TimeoutExpired:
                    dump = '(gdb did not finish within 120 s)\n'
                out.write(dump)
                summaries.append((child, own_frames(dump)))
        out.write('--- processes still running under the test command:\n')
        for child in [pid] + descendants(pid):
            out.write(f'  {child} {command_line(child)[:200]}\n')
        for child, threads in summaries:
            out.write(f'--- threads of {child} in project code (innermost first, alike threads counted):\n')
            for frames, count in threads:
                out.write(f'  {count}x {frames}\n')
        out.write(f'--- {len(hung)} test(s) started and not ended (the run hung in one of them):\n')
        for age, name in hung[:80]:
            out.write(f'  {name} (running {age:.0f} s)\n')
        if len(hung) > 80:
            out.write(f'  ... and {len(hung) - 80} more that started later\n')
        out.flush()

    threading.Thread(target=watch, daemon=True).start()
    for raw in process.stdout:
        line = raw.decode(errors='replace').rstrip('\n')
        sys.stdout.write(line + '\n')
        sys.stdout.flush()
        with lock:
            if m := STARTED.match(line):
                running.setdefault(m.group(1), []).append(time.monotonic())
            elif (m := ENDED.match(line)) or (m := SKIPPED.match(line)):
                times = running.get(m.group(1))
                if times:
                    times.pop(0)
                    if not times:
                        del running[m.group(1)]
                last_end[0] = time.monotonic()
    status = process.wait()
    if stalled.is_set():
        return 1
    return status if status >= 0 else 128 - status


if __name__ == '__main__':
    sys.exit(main())
