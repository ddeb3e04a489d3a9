"""Where the end-to-end latency goes at a steady rate on a real RabbitMQ, and how busy the machine is.

The sender is open loop (see bench_exchange.send_at_rate): each message is due at a fixed time and latency is
measured from then. For every message: due -> the router takes its batch -> the router has decided and starts
publishing -> the deliveries are confirmed -> the receiving node takes it -> stored. Alongside, the CPU each
process used while sending (broker, router, receivers, sender) per message, and the share of both cores.

Run: python bench/latency_stages.py [--messages 2000] [--rate 200] [--routers 2]. Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_exchange as be  # noqa: E402


def _router(root: str, url: str, n: int, out: mp.Queue, workers: int) -> None:
    """Route as bench_exchange.route does, noting for each message when its batch started, when its
    deliveries were published and confirmed, and when the batch was recorded."""
    from broker.router import Router
    from broker.transport.rabbitmq import RabbitTransport

    marks: dict[str, tuple[float, float, float, float]] = {}
    current = threading.local()
    process_batch, publish_many = Router.process_batch, RabbitTransport.publish_many

    def timed_batch(self, envelopes):
        current.published = None
        start = time.time()
        result = process_batch(self, envelopes)
        end = time.time()
        published = current.published or (end, end)
        for e in envelopes:
            marks[e.message_id] = (start, *published, end)
        return result

    def timed_publish(self, items):
        start = time.time()
        publish_many(self, items)
        if getattr(current, "published", 0) is None:
            current.published = (start, time.time())

    Router.process_batch, RabbitTransport.publish_many = timed_batch, timed_publish
    be.route(root, url, n, workers)
    out.put(marks)


def _receiver(root: str, url: str, pid: str, n: int, out: mp.Queue) -> None:
    out.put((pid, be.receive(root, url, pid, n)))


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far (0 once it has gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _is_beam(p)]


def _is_beam(pid: str) -> bool:
    try:
        return b"beam" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _q(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"{statistics.median(ms):7.1f} {ms[int(len(ms) * 0.9)]:7.1f} {ms[int(len(ms) * 0.99) - 1]:7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--routers", type=int, default=2, help="Routers side by side (competing consumers).")
    args = parser.parse_args()
    from broker.rabbitmq.setup import setup
    from sgx.demo import demo_network

    with tempfile.TemporaryDirectory() as tmp, be.admin_node(Path(tmp)) as node:
        url = node.admin_url
        root = Path(tmp) / "latency"
        net = demo_network(root, url)
        setup(node.ctl, url, net.directory, root / "keys" / "broker-passwords.json", delete_guest=False)
        time.sleep(3)
        net = be._network(str(root), url)
        messages = be._messages(args.messages)
        received, routed = mp.Queue(), mp.Queue()
        workers = [mp.Process(target=_router, args=(str(root), url, args.messages, routed, args.routers))]
        workers += [mp.Process(target=_receiver, args=(str(root), url, pid, args.messages, received))
                    for pid in ("la-371", "icb-QF7")]
        for w in workers:
            w.start()
        time.sleep(2)
        processes = {"broker": broker_pids(), "router": [workers[0].pid], "receivers": [w.pid for w in workers[1:]],
                     "sender": [os.getpid()]}
        before = {k: sum(cpu_seconds(p) for p in pids) for k, pids in processes.items()}
        started = time.time()
        due = be.send_at_rate(net, "la-886", net.transport(as_participant="la-886"), messages, args.rate)
        used = {k: sum(cpu_seconds(p) for p in pids) - before[k] for k, pids in processes.items()}
        elapsed = time.time() - started
        results = [received.get(timeout=300) for _ in range(2)]
        marks = routed.get(timeout=60)
        for w in workers:
            w.join(timeout=30)

    sending = max(due.values()) - min(due.values())
    print(f"{args.messages} messages due at {args.rate:.0f}/s (sent over {sending:.1f} s), {args.routers} router(s)")
    print("CPU while sending, ms per message: " + ", ".join(f"{k} {v / args.messages * 1000:.2f}"
                                                           for k, v in used.items())
          + f"; total {sum(used.values()) / args.messages * 1000:.2f}, "
          f"{sum(used.values()) / elapsed / os.cpu_count():.0%} of {os.cpu_count()} cores")
    segments: dict[str, list[float]] = {name: [] for name in (
        "due -> router takes it", "router deciding", "deliveries published, confirmed",
        "published -> receiver takes it", "receiver: verify, store, ack", "total")}
    for _pid, rows in results:
        for message_id, sent, got, stored in rows:
            start, publishing, confirmed, _end = marks[message_id]
            for name, value in zip(segments, (start - sent, publishing - start, confirmed - publishing,
                                              got - publishing, stored - got, stored - sent), strict=True):
                segments[name].append(value)
    print(f"{'ms':34} {'p50':>7} {'p90':>7} {'p99':>7}")
    for name, values in segments.items():
        print(f"{name:34} {_q(values)}")


if __name__ == "__main__":
    main()
