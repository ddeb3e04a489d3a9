"""The exchange on a real RabbitMQ: the demo's routing, and the broker enforcing least privilege."""

from __future__ import annotations

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, ProbableAccessDeniedError

from broker.rabbitmq.setup import load_queue_names, revoke, setup
from broker.transport import INGRESS, Envelope, delivery_queue
from broker.transport.base import CONNECTION_USER
from broker.transport.rabbitmq import DELIVER_EXCHANGE, INGRESS_EXCHANGE, RabbitTransport
from sgx.demo import demo_network, run_demo
from standard.errors import UnrecoverableBrokerError


@pytest.fixture(scope="module")
def secured(rabbit, tmp_path_factory):
    """A directory's topology, users and permissions set up on the node; returns (node, network, passwords)."""
    root = tmp_path_factory.mktemp("net")
    net = demo_network(root, rabbit.admin_url)
    net.credentials = setup(rabbit.ctl, rabbit.admin_url, net.directory, net.credentials_file, delete_guest=False)
    return rabbit, net


def _connect(rabbit, user, password):
    return pika.BlockingConnection(pika.URLParameters(rabbit.url(user, password)))


def test_demo_routes_the_same_over_rabbitmq_as_embedded(rabbit, tmp_path):
    over_amqp = run_demo(tmp_path / "amqp", rabbit.admin_url, echo=lambda *_: None, rabbitmqctl=rabbit.ctl)
    embedded = run_demo(tmp_path / "embedded", echo=lambda *_: None)

    def events(received):
        return {pid: sorted(e for e, _ in items) for pid, items in received.items()}

    assert events(over_amqp) == events(embedded)
    assert events(over_amqp)["la-886"].count("serious-incident") == 1


def test_a_participant_cannot_read_another_participants_queue(secured):
    rabbit, net = secured
    kent = net.transport(as_participant="la-886")  # knowing every private queue name, as the operator's folder does
    with pytest.raises(UnrecoverableBrokerError, match="ACCESS_REFUSED"):
        kent.get(delivery_queue("la-383"), timeout=1)
    kent.close()


def test_a_participant_cannot_publish_as_another(secured):
    rabbit, net = secured
    conn = _connect(rabbit, "la-886", net.credentials["la-886"])
    channel = conn.channel()
    channel.confirm_delivery()
    with pytest.raises(ChannelClosedByBroker) as caught:
        channel.basic_publish(INGRESS_EXCHANGE, INGRESS, b"{}", pika.BasicProperties(user_id="la-383"))
    assert caught.value.reply_code == 406  # PRECONDITION_FAILED: user_id is not the connection's user
    conn.close()


def test_a_participant_cannot_publish_to_delivery_queues_or_declare_or_bind(secured):
    rabbit, net = secured
    own = load_queue_names(net.queue_names_file)[delivery_queue("la-886")]
    for action in (
        lambda ch: ch.basic_publish(DELIVER_EXCHANGE, delivery_queue("la-383"), b"{}",
                                    pika.BasicProperties(user_id="la-886")),
        lambda ch: ch.queue_declare("sneaky", durable=True),
        lambda ch: ch.queue_bind(own, DELIVER_EXCHANGE, routing_key=delivery_queue("la-383")),
        lambda ch: ch.exchange_declare("sneaky", exchange_type="fanout"),
        lambda ch: ch.queue_delete(own),
    ):
        conn = _connect(rabbit, "la-886", net.credentials["la-886"])
        channel = conn.channel()
        channel.confirm_delivery()
        with pytest.raises(ChannelClosedByBroker) as caught:
            action(channel)
        assert caught.value.reply_code == 403
        conn.close()


def test_a_participant_can_publish_to_ingress_and_read_its_own_queue(secured):
    rabbit, net = secured
    kent = net.transport(as_participant="la-886")
    kent.publish(INGRESS, Envelope("urn:uuid:own-1", b"{}", {}))
    assert kent.get(delivery_queue("la-886"), timeout=0.5) is None
    kent.close()
    router = net.transport(as_participant="router")
    delivery = router.get(INGRESS, timeout=5)
    assert delivery.envelope.headers[CONNECTION_USER] == "la-886"  # the user_id the broker checked
    delivery.ack()
    router.close()


def test_revoking_a_participant_closes_its_connection_and_refuses_it(secured):
    rabbit, net = secured
    conn = _connect(rabbit, "la-352", net.credentials["la-352"])
    revoke(rabbit.ctl, "la-352")
    with pytest.raises(Exception):  # noqa: B017 - any connection-closed error proves the broker cut it
        for _ in range(50):
            conn.process_data_events(time_limit=0.1)
            conn.channel().basic_publish(INGRESS_EXCHANGE, INGRESS, b"{}")
    with pytest.raises((ProbableAccessDeniedError, ChannelClosedByBroker, Exception)):
        fresh = _connect(rabbit, "la-352", net.credentials["la-352"])
        fresh.channel().basic_publish(INGRESS_EXCHANGE, INGRESS, b"{}", pika.BasicProperties(user_id="la-352"))


def _setup_twice(rabbit, tmp_path, vhost: str) -> tuple[dict, dict, int]:
    """`sgx broker setup` run from two folders on one vhost, a message routed to la-886 before the second run and
    one after; returns both runs' queue names and how many copies of the second message the broker holds."""
    rabbit.ctl("add_vhost", vhost)
    rabbit.ctl("set_permissions", "-p", vhost, "sgx-admin", ".*", ".*", ".*")
    url = rabbit.url("sgx-admin", "admin-secret", vhost=vhost)
    first, second = demo_network(tmp_path / "first", url), demo_network(tmp_path / "second", url)
    setup(rabbit.ctl, url, first.directory, first.credentials_file, vhost=vhost, participants=["la-886"],
          delete_guest=False)
    admin = first.transport()
    admin.publish(delivery_queue("la-886"), Envelope("urn:uuid:before", b"{}", {}))
    setup(rabbit.ctl, url, second.directory, second.credentials_file, vhost=vhost, participants=["la-886"],
          delete_guest=False)
    admin.publish(delivery_queue("la-886"), Envelope("urn:uuid:after", b"{}", {}))
    admin.close()
    names = [load_queue_names(net.queue_names_file) for net in (first, second)]
    waiting = 0
    for queue in {n[delivery_queue("la-886")] for n in names}:
        reader = RabbitTransport(url, queue_names={delivery_queue("la-886"): queue})
        waiting += reader.depth(delivery_queue("la-886"))
        reader.close()
    return names[0], names[1], waiting - 1  # "before" waits once, in the first queue


def test_setup_run_again_keeps_each_participants_queue_and_what_waits_in_it(rabbit, tmp_path):
    first, second, copies = _setup_twice(rabbit, tmp_path, "setup-again")
    assert first[delivery_queue("la-886")] == second[delivery_queue("la-886")] != delivery_queue("la-886")
    assert copies == 1


def test_broken_twin_a_setup_that_ignores_the_brokers_bindings_doubles_the_traffic(rabbit, tmp_path, monkeypatch):
    import broker.rabbitmq.setup as setup_module

    monkeypatch.setattr(setup_module, "bound_queues", lambda *_args, **_kwargs: {})
    first, second, copies = _setup_twice(rabbit, tmp_path, "setup-again-twin")
    assert first[delivery_queue("la-886")] != second[delivery_queue("la-886")]
    assert copies == 2
