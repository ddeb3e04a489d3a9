"""End-to-end exchange throughput and latency on a real RabbitMQ, against raw pika measured in the same run.

Ours: sign (at outbox drain), publish with confirms to ingress, route (verify, validate hot path, dedupe,
authorise, resolve, deliver to host LA and host ICB, audit, acknowledge), then each receiving node verifies,
stores and acks. Raw: pika publishing the same bodies with confirms every 100 to a quorum queue, one consumer
acking (prefetch 100). Latency: messages due at a steady rate, open loop (send_at_rate), measured from when each
was due to when the receiving node has stored it.
Run: python bench/bench_exchange.py [--messages N] [--latency-messages N] [--rate R] [--routers N] [--write]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pika
from results import add_rows

HEADER = ("| date | messages | body | raw pika e2e msg/s | raw pika, same hops msg/s | ours e2e msg/s | ours / raw "
          "| ours / same hops | steady rate msg/s | p50 ms | p99 ms |")


@contextmanager
def admin_node(folder: Path):
    """A RabbitMQ node of its own in `folder`, with an administrator; `node.admin_url` connects as it."""
    from broker.rabbitmq.server import RabbitNode

    node = RabbitNode(folder / "rabbitmq")
    node.start()
    try:
        node.ctl("add_user", "sgx-admin", "bench")
        node.ctl("set_user_tags", "sgx-admin", "administrator")
        node.ctl("set_permissions", "-p", "/", "sgx-admin", ".*", ".*", ".*")
        node.admin_url = node.url("sgx-admin", "bench")
        yield node
    finally:
        node.stop()


def _publish_and_wait(url: str, bodies: list[bytes], queue: str, queues: tuple[str, ...],
                      workers: list[mp.Process], finishers: list[mp.Process]) -> float:
    """Declare (and empty) quorum queues, start the workers, publish the bodies to `queue` with confirms every
    100, and return msg/s until the `finishers` have consumed them all."""
    from broker.transport.rabbitmq import _ConfirmingPublisher

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    for q in queues:
        ch.queue_declare(q, durable=True, arguments={"x-queue-type": "quorum"})
        ch.queue_purge(q)
    for w in workers:
        w.start()
    publisher = _ConfirmingPublisher(conn)
    props = pika.BasicProperties(delivery_mode=2)
    start = time.perf_counter()
    for i in range(0, len(bodies), 100):
        publisher.publish([("", queue, b, props) for b in bodies[i:i + 100]])
    for w in finishers:
        w.join()
    elapsed = time.perf_counter() - start
    for w in workers:
        w.join()
    conn.close()
    return len(bodies) / elapsed


def _raw(url: str, bodies: list[bytes]) -> float:
    """Raw pika: publish with confirms every 100, one consumer with manual acks; end-to-end msg/s."""
    consumer = mp.Process(target=_raw_consumer, args=(url, len(bodies)))
    return _publish_and_wait(url, bodies, "raw", ("raw",), [consumer], [consumer])


def _raw_same_hops(url: str, bodies: list[bytes]) -> float:
    """Raw pika over our topology's hops: publish to an ingress queue; a forwarder takes batches and publishes
    each message to two recipient queues and one acknowledgement queue with confirms, then acks; two consumers
    ack. No signing, validation or storage: the broker-bound ceiling of the same flow."""
    forwarder = mp.Process(target=_raw_forwarder, args=(url, len(bodies)))
    consumers = [mp.Process(target=_raw_consumer, args=(url, len(bodies), q)) for q in ("raw-a", "raw-b")]
    return _publish_and_wait(url, bodies, "raw-in", ("raw-in", "raw-a", "raw-b", "raw-ack"),
                             [forwarder, *consumers], consumers)


def _raw_forwarder(url: str, n: int) -> None:
    from broker.transport.rabbitmq import _ConfirmingPublisher

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=100)
    publisher = _ConfirmingPublisher(conn)
    props = pika.BasicProperties(delivery_mode=2)
    done = 0
    batch: list = []
    for method, _p, body in ch.consume("raw-in", inactivity_timeout=0.005):
        if method is not None:
            batch.append((method, body))
            if len(batch) < 100:
                continue
        if batch:
            publisher.publish([("", q, b, props) for _, b in batch for q in ("raw-a", "raw-b", "raw-ack")])
            ch.basic_ack(batch[-1][0].delivery_tag, multiple=True)
            done += len(batch)
            batch = []
        if done >= n:
            break
    conn.close()


def _raw_consumer(url: str, n: int, queue: str = "raw") -> None:
    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=100)
    for got, (method, _p, _b) in enumerate(ch.consume(queue), start=1):
        ch.basic_ack(method.delivery_tag)
        if got == n:
            break
    conn.close()


def route(root: str, url: str, n: int, workers: int = 1) -> None:
    """Route `n` messages with `workers` routers side by side."""
    from broker.router import Claims, Router, run_side_by_side

    net = _network(root, url)
    claims = Claims()
    routers = [Router.in_folder(net.root, net.directory, net.transport(as_participant="router"), net.keys["router"],
                                claims=claims) for _ in range(workers)]
    routed = 0
    while routed < n:
        routed += run_side_by_side(routers, idle_timeout=5)


def receive(root: str, url: str, pid: str, n: int) -> list[tuple[str, float, float, float]]:
    """Receive `n` messages as `pid`; for each: message id, sent (its timestamp), taken from the queue, stored."""
    net = _network(root, url)
    node = net.node(pid, net.transport(as_participant=pid))
    rows: list[tuple[str, float, float, float]] = []
    while len(rows) < n:
        first = node.transport.get(f"deliver.{pid}", timeout=10)
        if first is None:
            break
        got = time.time()
        batch = [first]
        while len(batch) < 100 and (more := node.transport.get(f"deliver.{pid}")) is not None:
            batch.append(more)
        node.receive_many(batch)
        stored = time.time()
        for delivery in batch:
            sent = orjson.loads(delivery.envelope.body)["timestamp"]
            rows.append((delivery.envelope.message_id,
                         datetime.fromisoformat(sent.replace("Z", "+00:00")).timestamp(), got, stored))
    return rows


def _receiver(root: str, url: str, pid: str, n: int, done: mp.Queue) -> None:
    rows = receive(root, url, pid, n)
    done.put((pid, time.perf_counter(), [stored - sent for _, sent, _, stored in rows]))


def _network(root: str, url: str):
    from broker.exchange_folder import ExchangeFolder

    return ExchangeFolder.open(Path(root), url)


def _messages(n: int) -> list[dict]:
    from sgx.demo import LODGE, placement

    today = datetime.now(UTC).date().isoformat()
    return [placement("la-886", i, LODGE, today) for i in range(n)]


def send_at_rate(net, sender: str, transport, messages: list[dict], rate: float) -> dict[str, float]:
    """Send `messages` as `sender` at a steady rate, open loop: message i is due at start + i/rate whatever
    happened to the ones before, is stamped with that due time and queued in the outbox, and a separate
    drainer publishes whatever waits there. Latency is measured from the due time, so a sender that falls
    behind shows up as latency instead of as a lower rate. Returns message id -> due time."""
    import threading

    from standard.compose import timestamp
    from standard.validator import HOT_PATH, Validator

    # Two connections to one outbox: the producer queues while the drainer waits for confirms.
    producer, drainer = net.outbox(sender, validator=Validator(HOT_PATH)), net.outbox(sender)
    queued, finished = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def drain() -> None:
        try:
            while not failed:
                queued.clear()
                if drainer.drain(transport, batch=100) == 0:
                    if finished.is_set() and drainer.pending() == 0:
                        return
                    queued.wait(0.01)
        except BaseException as exc:  # the bench must stop, not wait for messages that will never come
            failed.append(exc)

    thread = threading.Thread(target=drain, name="drainer")
    thread.start()
    due: dict[str, float] = {}
    start = time.time() + 0.05
    for i, message in enumerate(messages):
        if failed:
            break
        at = start + i / rate
        pause = at - time.time()
        if pause > 0:
            time.sleep(pause)
        message["timestamp"] = timestamp(datetime.fromtimestamp(at, UTC))
        due[producer.add(message)] = at
        queued.set()
    finished.set()
    thread.join()
    if failed:
        raise RuntimeError("the drainer failed; the run is void") from failed[0]
    return due


def _ours(root: Path, node, n: int, rate: float | None, routers: int = 1) -> tuple[float, list[float]]:
    net = _network(str(root), node.admin_url)
    url = node.admin_url
    if rate is None:
        net.outbox("la-886").add_many(_messages(n))
    done: mp.Queue = mp.Queue()
    workers = [mp.Process(target=route, args=(str(root), url, n, routers))]
    workers += [mp.Process(target=_receiver, args=(str(root), url, pid, n, done)) for pid in ("la-371", "icb-QF7")]
    for w in workers:
        w.start()
    time.sleep(2)
    transport = net.transport(as_participant="la-886")
    start = time.perf_counter()
    if rate is None:
        net.outbox("la-886").drain(transport, batch=100)
    else:
        send_at_rate(net, "la-886", transport, _messages(n), rate)
    results = [done.get(timeout=600) for _ in range(2)]
    for w in workers:
        w.join(timeout=60)
    end = max(r[1] for r in results)
    latencies = [x for r in results for x in r[2]]
    return n / (end - start), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--latency-messages", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--routers", type=int, default=1, help="Routers side by side (competing consumers).")
    parser.add_argument("--write", action="store_true", help="Add the figures to their table in bench/RESULTS.md.")
    args = parser.parse_args()

    from broker.rabbitmq.setup import setup
    from sgx.demo import demo_network

    with tempfile.TemporaryDirectory() as tmp, admin_node(Path(tmp)) as node:
        runs = []
        for label, n, rate in (("throughput", args.messages, None), ("latency", args.latency_messages,
                                                                      args.rate)):
            root = Path(tmp) / label
            net = demo_network(root, node.admin_url)
            setup(node.ctl, node.admin_url, net.directory, root / "keys" / "broker-passwords.json",
                  delete_guest=False)
            time.sleep(3)  # let the new quorum queues settle
            body_size = len(orjson.dumps(_messages(1)[0]))
            raw = _raw(node.admin_url, [b"x" * body_size] * n) if rate is None else None
            hops = _raw_same_hops(node.admin_url, [b"x" * body_size] * n) if rate is None else None
            ours, latencies = _ours(root, node, n, rate, args.routers)
            runs.append((label, n, body_size, (raw, hops), ours, latencies))
    (_, n, size, (raw, hops), ours, _), (_, _ln, _, _, _lrate, lat) = runs
    lat_ms = sorted(x * 1000 for x in lat)
    p50, p99 = statistics.median(lat_ms), lat_ms[int(len(lat_ms) * 0.99) - 1]
    routers = f"{args.routers} router{'s' if args.routers > 1 else ''}"
    line = (f"| {datetime.now(UTC):%Y-%m-%d} ({routers}) | {n} | {size:,} B | {raw:,.0f} | {hops:,.0f} | {ours:,.0f} "
            f"| {ours / raw:.2f} | {ours / hops:.2f} | {args.rate:.0f} | {p50:.1f} | {p99:.1f} |")
    print(HEADER)
    print(line)
    print(f"latency p90 {lat_ms[int(len(lat_ms) * 0.9)]:.1f} ms, max {lat_ms[-1]:.1f} ms")
    if args.write:
        add_rows(HEADER, [line])


if __name__ == "__main__":
    main()
