"""Where the end-to-end latency goes at a steady rate on a real RabbitMQ: sender (sign, publish, confirm),
waiting for the router, routing a batch (with the router's stages timed), and the receiving node (verify, store).

Run: python bench/latency_stages.py [--messages 600] [--rate 200] [--routers 1]. Prints a table; nothing is written.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_exchange as be  # noqa: E402


def _timed(cls, name: str, stages: dict) -> None:
    original = getattr(cls, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            stages[f"{cls.__name__}.{name}"].append(time.perf_counter() - start)

    setattr(cls, name, wrapper)


def _router(root: str, url: str, n: int, out: mp.Queue, workers: int = 1) -> None:
    from broker.audit import AuditLog
    from broker.register import Register
    from broker.router import Router, _Seen
    from broker.transport.rabbitmq import RabbitTransport

    stages: dict[str, list[float]] = collections.defaultdict(list)
    batches: dict[str, tuple[float, float, int]] = {}
    original = Router.process_batch

    def process_batch(self, envelopes):
        start = time.time()
        result = original(self, envelopes)
        for e in envelopes:
            batches[e.message_id] = (start, time.time(), len(envelopes))
        return result

    Router.process_batch = process_batch
    for cls, name in ((Router, "_decide"), (RabbitTransport, "publish_many"), (Register, "record_many"),
                      (_Seen, "remember"), (AuditLog, "append_many"), (RabbitTransport, "ack_many")):
        _timed(cls, name, stages)
    be.route(root, url, n, workers)
    out.put((batches, dict(stages)))


def _receiver(root: str, url: str, pid: str, n: int, out: mp.Queue) -> None:
    out.put((pid, be.receive(root, url, pid, n)))


def _q(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return f"{statistics.median(ms):6.1f} {ms[int(len(ms) * 0.99) - 1]:6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--routers", type=int, default=1, help="Routers side by side (competing consumers).")
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
        outbox = net.outbox("la-886")
        for message in be._messages(args.messages):
            outbox.add(message)
        received, routed = mp.Queue(), mp.Queue()
        workers = [mp.Process(target=_router, args=(str(root), url, args.messages, routed, args.routers))]
        workers += [mp.Process(target=_receiver, args=(str(root), url, pid, args.messages, received))
                    for pid in ("la-371", "icb-QF7")]
        for w in workers:
            w.start()
        time.sleep(2)
        sent_at = be.send_at_rate(outbox, net.transport(as_participant="la-886"), args.rate)
        results = [received.get(timeout=300) for _ in range(2)]
        batches, stages = routed.get(timeout=60)
        for w in workers:
            w.join(timeout=30)
    print(f"{args.messages} messages at {args.rate:.0f}/s; milliseconds, p50 and p99")
    print("router stage (per call)            p50    p99")
    for name, values in stages.items():
        print(f"  {name:32} {_q(values)}")
    print(f"router batch size, median: {statistics.median(b[2] for b in batches.values())}")
    for pid, rows in results:
        parts = {
            "sender: sign, publish, confirm": [sent_at[m] - s for m, s, _, _ in rows],
            "waiting for the router": [batches[m][0] - sent_at[m] for m, _, _, _ in rows],
            "routing its batch": [batches[m][1] - batches[m][0] for m, _, _, _ in rows],
            "receiver: verify, store, ack": [stored - got for _, _, got, stored in rows],
            "total": [stored - s for _, s, _, stored in rows],
        }
        print(pid)
        for name, values in parts.items():
            print(f"  {name:32} {_q(values)}")


if __name__ == "__main__":
    main()
