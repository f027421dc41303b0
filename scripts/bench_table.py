#!/usr/bin/env python3
"""Reads the logs of scripts/bench.sh and prints one Markdown table: each
figure, its target, Airtable's ceiling where one applies, and whether the
target is met. Exits 1 when a figure is missing from its log."""

import platform
import re
import subprocess
import sys
from datetime import date
from pathlib import Path


def read(logs: Path, name: str) -> str:
    path = logs / f"{name}.log"
    return path.read_text() if path.exists() else ""


def find(text: str, pattern: str, group: int = 1) -> float | None:
    match = re.search(pattern, text)
    return float(match.group(group).replace(",", "")) if match else None


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        cores = "?"
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{platform.system()} {platform.machine()}, {cores} cores{mem}, {cpu}".strip(", ")


def main() -> int:
    logs = Path(sys.argv[1])
    quick = len(sys.argv) > 2 and sys.argv[2] == "1"
    emulator, write, outbound = read(logs, "emulator"), read(logs, "write"), read(logs, "outbound")
    inbound, api = read(logs, "inbound"), read(logs, "api")
    overload, flood = read(logs, "api-overload"), read(logs, "flood")
    share = read(logs, "share")
    alone = re.search(r"alone: budget 100%, \d+ changes in [\d.]+ s = ([\d.]+) records/s; base: \d+ requests "
                      r"\([\d.]+/s\), (\d+) answered 429", share)
    at80 = re.search(r"budget80: budget 80%, \d+ changes in [\d.]+ s = ([\d.]+) records/s; base: \d+ requests "
                     r"\([\d.]+/s\), (\d+) answered 429; .*?the script: \d+ reads, (\d+) answered 429", share)
    at100 = re.search(r"budget100: .*?\((\d+) 429 episodes, .*?then \d+ s: ([\d.]+) records/s, (\d+) more 429 "
                      r"episodes, (\d+) requests answered 429", share)
    both = re.search(r"both: .*? all arrived in [\d.]+ s; .*? = ([\d.]+) requests/s \(\d+% of 5/s\), (\d+) answered 429", share)
    admitted = re.search(
        r"POST /api/habit-usage: admitted \(2xx\) (\d+), p50 ([\d.]+) ms, p99 ([\d.]+) ms; "
        r"refused \(503\) (\d+), of them without Retry-After (\d+); other 5xx (\d+)", overload)
    offered = find(overload, r"sustained (\d+)/s")

    def flooded(name: str):
        """(peak MiB, health max ms, bad answers) of one flood, or None."""
        match = re.search(
            re.escape(name) + r": .*?connection errors (\d+), 5xx other than 503: (\d+), "
            r"503 without Retry-After: (\d+); server memory [\d.]+ MiB at the start, peak ([\d.]+) MiB; "
            r"health: \d+ checks, p50 [\d.]+ ms, p99 [\d.]+ ms, max ([\d.]+) ms, unhealthy (\d+)", flood)
        if not match:
            return None
        bad = sum(int(match.group(i)) for i in (1, 2, 3, 6))
        return float(match.group(4)), float(match.group(5)), bad

    flood_rows = []
    for name in ("login, wrong password", "set-password, made-up token", "login, right password"):
        result = flooded(name)
        flood_rows.append((f"flood ({name}): server peak memory",
                           result[0] if result else None, "MiB", "< 300, no 5xx but 503",
                           lambda v, r=result: v < 300 and r[2] == 0, ""))
        flood_rows.append((f"flood ({name}): slowest health check",
                           result[1] if result else None, "ms", "<= 100",
                           lambda v: v <= 100, ""))
    backfill = re.search(r"reconcile \(backfill[^)]*\): ([\d.]+) records in [\d.]+ s = (\d+) records/s.*?peak (\d+) MiB", inbound)
    habit = re.search(r"POST /api/habit-usage: .*?p50 ([\d.]+) ms.*?p99 ([\d.]+) ms.*?errors (\d+)", api)
    programs = re.search(r"GET /api/programs: .*?p50 ([\d.]+) ms.*?p99 ([\d.]+) ms.*?errors (\d+)", api)

    # (what, measured, unit, target text, check, ceiling)
    rows = [
        ("emulator: list/get requests, limits off",
         find(emulator, r"([\d.]+) requests/s"), "req/s", ">= 5,000", lambda v: v >= 5000, ""),
        ("emulator: memory with 100,000 records",
         find(emulator, r"([\d.]+) MiB with"), "MiB", "< 500", lambda v: v < 500, ""),
        ("client: 1,000 records written, real limits",
         find(write, r"throughput: ([\d.]+) records/s"), "records/s", ">= 47, zero 429s",
         lambda v: v >= 47 and find(write, r"429s: (\d+) seen") == 0, "50 records/s"),
        ("outbound: 2,000 changes over 3 tables",
         find(outbound, r"= ([\d.]+) records/s"), "records/s", ">= 47, zero 429s",
         lambda v: v >= 47 and find(outbound, r"requests, (\d+) answered 429") == 0, "50 records/s"),
        ("outbound: commit to readable, p50",
         find(outbound, r"p50 (\d+) ms"), "ms", "< 300", lambda v: v < 300, ""),
        ("outbound: commit to readable, p99",
         find(outbound, r"p99 (\d+) ms"), "ms", "< 1,500", lambda v: v < 1500, ""),
        ("inbound: UI edit to row (webhook), p50",
         find(inbound, r"edit to row changed p50 (\d+) ms"), "ms", "< 1,000", lambda v: v < 1000, ""),
        ("inbound: UI edit to row (webhook), p95",
         find(inbound, r"edit to row changed .*?p95 (\d+) ms"), "ms", "< 2,000", lambda v: v < 2000, ""),
        ("inbound: full reconcile (backfill)",
         float(backfill.group(2)) if backfill else None, "records/s", ">= 450 (90%)",
         lambda v: v >= 450, "500 records/s"),
        ("inbound: reconcile peak memory",
         float(backfill.group(3)) if backfill else None, "MiB", "< 200", lambda v: v < 200, ""),
        ("API: POST /api/habit-usage at 500/s, p99",
         float(habit.group(2)) if habit else None, "ms", "< 20, zero errors",
         lambda v: v < 20 and habit and habit.group(3) == "0", ""),
        ("API: GET /api/programs at 500/s, p99",
         float(programs.group(2)) if programs else None, "ms", "< 20, zero errors",
         lambda v: v < 20 and programs and programs.group(3) == "0", ""),
        (f"API: POST /api/habit-usage at twice what it sustains (2 x {offered:,.0f}/s), admitted p99"
         if offered else "API: POST /api/habit-usage at twice what it sustains, admitted p99",
         float(admitted.group(3)) if admitted else None, "ms",
         "< 50; refused only 503 + Retry-After, zero 500s",
         lambda v: v < 50 and admitted.group(5) == "0" and admitted.group(6) == "0", ""),
    ] + flood_rows + [
        ("sharing: 2,000 changes alone, 100..300 ms answers",
         float(alone.group(1)) if alone else None, "records/s", ">= 47, zero 429s",
         lambda v: v >= 47 and alone.group(2) == "0", "50 records/s"),
        ("sharing: 80% beside a script reading 1/s, 2,000 changes",
         float(at80.group(1)) if at80 else None, "records/s", ">= 36, zero 429s for either",
         lambda v: v >= 36 and at80.group(2) == "0" and at80.group(3) == "0", "40 records/s"),
        ("sharing: 100% beside the script, once adapted (5 min)",
         float(at100.group(2)) if at100 else None, "records/s",
         ">= 36, at most 1 episode, none after",
         lambda v: v >= 36 and int(at100.group(1)) <= 1 and at100.group(3) == "0"
         and at100.group(4) == "0", "40 records/s"),
        ("sharing: both directions at once (2,000 + 2,000), request rate",
         float(both.group(1)) if both else None, "req/s", ">= 4.5 (90%), zero 429s",
         lambda v: v >= 4.5 and both.group(2) == "0", "5 req/s"),
    ]
    print(f"Measured {date.today().isoformat()} on {machine()}"
          + (" (quick run: shorter, noisier)" if quick else "") + ".")
    print("Command: `scripts/bench.sh`; each benchmark's output is in `target/bench/`.")
    print()
    print("| benchmark | measured | target | Airtable's ceiling | met |")
    print("|---|---|---|---|---|")
    missing = False
    for what, value, unit, target, check, ceiling in rows:
        if value is None:
            missing = True
            print(f"| {what} | missing | {target} | {ceiling} | no |")
            continue
        shown = f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
        print(f"| {what} | {shown} {unit} | {target} | {ceiling} | {'yes' if check(value) else 'NO'} |")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
