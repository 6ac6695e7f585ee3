#!/usr/bin/env python3
"""Memory of a running GAD through a burst of logins for unknown e-mails.

Opens CONCURRENCY connections at once, each logging in once with a different unknown e-mail
(every one costs a full argon2id verification against the dummy hash, 19 MiB while it runs),
and samples the server's resident memory (VmRSS of PID) before, every 20 ms during, and after
the burst. Prints a JSON summary and writes it to target/loadtest/login-burst.json.

    loadtest/login-burst.py <pid> [base-url] [concurrency] [bursts]
    e.g. loadtest/login-burst.py "$(pgrep -f 'gad serve')" http://127.0.0.1:8080 1000 2

Only the standard library; the server's login rate limit must allow the burst
(GAD_RATE_LIMIT_LOGIN).
"""

import asyncio
import json
import os
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlparse


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def login(host: str, port: int, n: int) -> int:
    body = json.dumps({"email": f"nobody-{n}-{time.time_ns()}@example.org", "password": "not a password at all"})
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(
            (
                f"POST /api/v1/auth/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
            ).encode()
        )
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()
        writer.close()
        return int(status_line.split()[1])
    except (OSError, IndexError, ValueError):
        return 0


async def burst(host: str, port: int, concurrency: int) -> Counter:
    statuses = await asyncio.gather(*(login(host, port, n) for n in range(concurrency)))
    return Counter(statuses)


def main() -> None:
    pid = int(sys.argv[1])
    base = urlparse(sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:8080")
    concurrency = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    bursts = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    summary = {"concurrency": concurrency, "idle_rss_mb": round(rss_mb(pid), 1), "bursts": []}
    for _ in range(bursts):
        peak = [0.0]
        running = threading.Event()
        running.set()

        def sample() -> None:
            while running.is_set():
                peak[0] = max(peak[0], rss_mb(pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        statuses = asyncio.run(burst(base.hostname, base.port or 80, concurrency))
        elapsed = time.monotonic() - started
        running.clear()
        sampler.join()
        after = {}
        for wait in (1, 5, 15):
            time.sleep(wait - (int(list(after)[-1][:-1]) if after else 0))
            after[f"{wait}s"] = round(rss_mb(pid), 1)
        summary["bursts"].append(
            {
                "seconds": round(elapsed, 2),
                "statuses": {str(status): count for status, count in sorted(statuses.items())},
                "peak_rss_mb": round(peak[0], 1),
                "rss_after_mb": after,
            }
        )
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "loadtest")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "login-burst.json"), "w") as file:
        json.dump(summary, file, indent=2)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
