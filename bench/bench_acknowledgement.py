"""An acknowledgement's way back on the embedded transport: from the moment an officer acknowledges a message in
the recipient's inbox (the Responder queues it in the recipient's outbox, signs and sends it) to the moment the
sender's Sent view shows that recipient as acknowledged (the router routed it, the sender's node verified and
stored it, and the sender's outbox read it from the node's file, as the Sent page does). The router and the
sender's node run all the time, each on its own thread and connection, as `sgx broker route` and `sgx node run`
do. Target: under 2 s.

Run: python bench/bench_acknowledgement.py [--acknowledgements N] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from results import add_rows

from broker.inbox.actions import Responder
from broker.inbox.store import InboxStore
from sgx import demo as scenario
from sgx.demo import PROVIDER, demo_network

HEADER = "| date | acknowledgements | p50 ms | p95 ms | max ms |"
RECIPIENT = "la-371"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--acknowledgements", type=int, default=50)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        network = demo_network(Path(folder))
        stop = threading.Event()
        router_transport, sender_transport = network.transport(), network.transport()
        router = network.router(router_transport)
        sender_node = network.node(PROVIDER, sender_transport)
        threads = [threading.Thread(target=router.run, kwargs={"idle_timeout": None, "should_stop": stop.is_set}),
                   threading.Thread(target=sender_node.run, kwargs={"idle_timeout": None,
                                                                    "should_stop": stop.is_set})]
        for t in threads:
            t.start()
        main_transport = network.transport()
        sender_outbox = network.outbox(PROVIDER)
        sender_view = InboxStore(Path(folder) / "inbox" / f"{PROVIDER}.web.db",
                                 Path(folder) / "inbox" / f"{PROVIDER}.db")
        recipient_node = network.node(RECIPIENT, main_transport)
        responder = Responder(network.outbox(RECIPIENT), lambda: network.transport())
        times = []
        try:
            for n in range(args.acknowledgements):
                message_id = sender_outbox.add(scenario.serious_incident("la-886", n % 9 + 1))
                sender_outbox.drain(main_transport)
                while recipient_node.run(idle_timeout=0.5) == 0:  # until the recipient's node has it
                    pass
                start = time.perf_counter()
                responder.acknowledge(message_id, "Bench Officer")
                while True:
                    sender_outbox.record_responses(sender_view)
                    state = {s.recipient: s for s in sender_outbox.accountable(message_id)}.get(RECIPIENT)
                    if state is not None and "acknowledged" in state.steps:
                        break
                    if time.perf_counter() - start > 30:
                        raise SystemExit(f"acknowledgement {n} did not reach the sender in 30 s")
                    time.sleep(0.005)
                times.append((time.perf_counter() - start) * 1000)
        finally:
            responder.close()
            stop.set()
            for t in threads:
                t.join()
    p50, p95 = statistics.median(times), statistics.quantiles(times, n=20)[18]
    print(f"{len(times)} acknowledgements back to the sender: p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
          f"max {max(times):.0f} ms (target: under 2000 ms)")
    if args.write:
        day = datetime.now(UTC).date().isoformat()
        add_rows(HEADER, [f"| {day} | {len(times)} | {p50:.0f} | {p95:.0f} | {max(times):.0f} |"])


if __name__ == "__main__":
    main()
