"""A JOSE implementation the project did not write (Node `jose` v6) against the published signature contract.

(a) jose makes a key pair; its public JWK is registered with `sgx directory add-key`; jose signs a message
    following only the contract (the header is built from standard/source/signature-contract.json) and the real
    router accepts it and a receiving node verifies and stores it.
(b) jose verifies our signatures: a message the outbox signed, the router's delivery note, the signed directory,
    and reproduces the contract's worked example byte for byte.
(c) jose-signed messages with a wrong header (no jti; iat out of the window) are refused with the right reason;
    a router with the window check broken would accept the stale one.
"""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from broker import routing
from broker.exchange_folder import ExchangeFolder
from broker.node import Node
from broker.router import DELIVERY, DELIVERY_SIGNATURE, SENDER, SIGNATURE, Router
from broker.signature_contract import CONTRACT_FILE
from broker.transport import INGRESS, Envelope, delivery_queue
from sgx.cli import cli
from sgx.demo import LODGE, placement

SENDER_LA, HOST_LA = "la-886", "la-371"

_SIGN = r"""
import * as jose from "jose";
import { readFileSync } from "node:fs";
const input = JSON.parse(readFileSync(0, "utf8"));
const contract = JSON.parse(readFileSync(input.contract, "utf8"));
const spec = contract.protectedHeader.message;
const { publicKey, privateKey } = await jose.generateKeyPair(contract.algorithm.alg, { extractable: true });
const publicJwk = await jose.exportJWK(publicKey);
const kid = await jose.calculateJwkThumbprint(publicJwk);  // the contract's kid when none is chosen
const now = Math.floor(Date.now() / 1000);
const tokens = {};
for (const m of input.messages) {
  const values = { kid, sender: m.sender, messageId: m.messageId, event: m.event, issuedAt: now + m.iatOffset };
  const header = {};
  for (const member of spec.members) {
    if (m.drop.includes(member.name)) continue;
    header[member.name] = member.value !== undefined ? member.value : values[member.source];
  }
  const compact = await new jose.CompactSign(jose.base64url.decode(m.body)).setProtectedHeader(header)
    .sign(privateKey);
  const [protectedPart, , signature] = compact.split(".");
  tokens[m.name] = `${protectedPart}..${signature}`;  // detached payload, RFC 7515 appendix F
}
console.log(JSON.stringify({ publicJwk, kid, tokens }));
"""

_VERIFY = r"""
import * as jose from "jose";
import { readFileSync } from "node:fs";
const input = JSON.parse(readFileSync(0, "utf8"));
const contract = JSON.parse(readFileSync(input.contract, "utf8"));
const out = { items: {} };
for (const item of input.items) {
  const [protectedPart, , signature] = item.jws.split(".");
  try {
    const key = await jose.importJWK(item.jwk, contract.algorithm.alg);
    const result = await jose.compactVerify(`${protectedPart}.${item.payload}.${signature}`, key,
                                            { algorithms: [contract.algorithm.alg] });
    out.items[item.name] = { verified: true, header: result.protectedHeader };
  } catch (error) {
    out.items[item.name] = { verified: false, error: error.code || String(error) };
  }
}
const directory = JSON.parse(input.directory);
const anchor = await jose.importJWK(input.anchor, "EdDSA");
const dir = await jose.flattenedVerify(directory, anchor, { algorithms: ["EdDSA"] });
const payload = JSON.parse(new TextDecoder().decode(dir.payload));
out.directory = { header: dir.protectedHeader, expires_at: payload.expires_at,
                  participants: payload.participants.length };
const example = contract.workedExamples.message;
const testKey = await jose.importJWK(contract.workedExamples.testKey.privateJwk, "EdDSA");
const compact = await new jose.CompactSign(new TextEncoder().encode(example.payloadUtf8))
  .setProtectedHeader(JSON.parse(example.protectedHeaderJson)).sign(testKey);
const [h, , s] = compact.split(".");
out.workedExample = `${h}..${s}`;
console.log(JSON.stringify(out));
"""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _node(folder: Path, script: str, data: dict) -> dict:
    done = subprocess.run(["node", "--input-type=module", "-e", script], input=json.dumps(data), cwd=folder,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _sgx(*args) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _message(n: int) -> tuple[bytes, str]:
    message = placement(SENDER_LA, n, LODGE, datetime.now(UTC).date().isoformat())
    return orjson.dumps(message), message["identifier"]["value"]


@pytest.fixture(scope="module")
def jose_signed(foreign_node):
    """One jose run: a key pair and the messages it signed (good, no jti, stale, for a bare transport)."""
    cases = {"good": {}, "no_jti": {"drop": ["jti"]}, "stale": {"iatOffset": -8 * 86400}, "bare": {}, "amqp": {}}
    messages = {}
    for n, (name, case) in enumerate(cases.items(), start=1):
        body, message_id = _message(n)
        messages[name] = {"name": name, "body": _b64url(body), "messageId": message_id, "sender": SENDER_LA,
                          "event": "placement-started", "drop": case.get("drop", []),
                          "iatOffset": case.get("iatOffset", 0), "bytes": body}
    out = _node(foreign_node, _SIGN, {"contract": str(CONTRACT_FILE),
                                      "messages": [{k: v for k, v in m.items() if k != "bytes"}
                                                   for m in messages.values()]})
    out["messages"] = messages
    return out


def _exchange_folder(tmp_path: Path, jose_signed: dict) -> Path:
    """An exchange folder built with the CLI; the sender's key is jose's, registered by its public JWK."""
    root = tmp_path / "exchange"
    _sgx("directory", "init", "--dir", root)
    for pid in ("router", HOST_LA, "icb-QF7", "la-383"):
        _sgx("directory", "keygen", "--dir", root, "--participant", pid)
    _sgx("directory", "add-setting", "--dir", root, "--urn", LODGE, "--name", "Example Lodge", "--host-la", HOST_LA)
    public = tmp_path / "jose.pub.jwk"
    public.write_text(json.dumps(jose_signed["publicJwk"]))
    since = (datetime.now(UTC) - timedelta(days=10)).isoformat(timespec="seconds")  # before the stale iat
    out = _sgx("directory", "add-key", "--dir", root, "--participant", SENDER_LA, "--public-key", public,
               "--not-before", since)
    assert f"key {jose_signed['kid']} added for {SENDER_LA}" in out  # same default kid on both sides
    _sgx("directory", "sign", "--dir", root)
    return root


@pytest.fixture()
def exchange(tmp_path, jose_signed):
    net = ExchangeFolder.open(_exchange_folder(tmp_path, jose_signed))
    transport = net.transport()
    yield net, transport
    transport.close()


def _publish(transport, jose_signed, name: str, *, transport_message_id: str | None = None) -> None:
    m = jose_signed["messages"][name]
    message_id = m["messageId"] if transport_message_id is None else transport_message_id
    transport.publish(INGRESS, Envelope(message_id, m["bytes"], {
        SIGNATURE: jose_signed["tokens"][name], SENDER: m["sender"]}))


def _route(router: Router, transport):
    return router.handle(transport.get(INGRESS))


def test_a_message_signed_by_jose_from_the_contract_is_accepted_routed_and_verified_by_the_node(
        exchange, jose_signed):
    net, transport = exchange
    _publish(transport, jose_signed, "good")
    decision = _route(net.router(transport), transport)
    assert (decision.decision, decision.reason, decision.recipients) == ("accepted", None, ["icb-QF7", HOST_LA])
    node = net.node(HOST_LA, transport)
    assert node.run(idle_timeout=0) == 1
    [item] = node.inbox()
    assert item.body == jose_signed["messages"]["good"]["bytes"]
    assert item.verified == f"signature by {SENDER_LA} key {jose_signed['kid']} verified"
    assert item.delivery["message_id"] == jose_signed["messages"]["good"]["messageId"]


@pytest.mark.parametrize(("name", "reason", "detail"), [
    ("no_jti", "signature-invalid", "header-member-missing-or-wrong"),
    ("stale", "replay", "iat-out-of-window"),
])
def test_a_jose_message_with_a_wrong_header_is_refused_with_its_reason(exchange, jose_signed, name, reason, detail):
    net, transport = exchange
    _publish(transport, jose_signed, name)
    router = net.router(transport)
    decision = _route(router, transport)
    assert (decision.decision, decision.reason) == ("rejected", reason)
    assert router.audit.records()[-1]["reason"].startswith(f"{reason}: {detail}: ")
    assert transport.get(delivery_queue(HOST_LA)) is None  # nothing delivered
    acknowledgement = transport.get(delivery_queue(SENDER_LA))  # the sender is told why
    assert acknowledgement is not None and f'"{reason}"'.encode() in acknowledgement.envelope.body


def test_a_router_without_the_clock_window_would_take_the_stale_jose_message(exchange, jose_signed):
    """The broken twin of the window check: the stale message is otherwise well signed."""
    net, transport = exchange
    _publish(transport, jose_signed, "stale")
    broken = Router.in_folder(net.root, net.directory, transport, net.keys["router"], max_age_seconds=10**9,
                              retention_seconds=10**9 + 1)
    assert _route(broken, transport).decision == "accepted"


class _RouterNamingTheTransportId(Router):
    """The broken twin: the delivery note names the transport's message_id property, not the signed jti."""

    def _delivery(self, envelope: Envelope, message_id: str, route: routing.Route) -> Envelope:
        return super()._delivery(envelope, envelope.message_id, route)


@pytest.mark.parametrize(("router_class", "stored"), [(Router, 1), (_RouterNamingTheTransportId, 0)])
def test_a_message_sent_without_the_amqp_message_id_is_still_delivered(exchange, jose_signed, router_class, stored):
    """The contract makes the signed jti the message id; a sender that leaves the transport's message_id out
    must still reach the recipient, whose node checks the delivery note against the jti."""
    net, transport = exchange
    _publish(transport, jose_signed, "bare", transport_message_id="")
    router = router_class.in_folder(net.root, net.directory, transport, net.keys["router"])
    assert _route(router, transport).decision == "accepted"
    node = Node(HOST_LA, net.directory, transport, net.root / "inbox.db")
    node.run(idle_timeout=0)
    assert len(node.inbox()) == stored


def test_jose_verifies_our_message_signature_delivery_note_and_directory(exchange, foreign_node):
    net, transport = exchange
    body = orjson.dumps(placement("la-383", 7, LODGE, datetime.now(UTC).date().isoformat()))
    message_id = orjson.loads(body)["identifier"]["value"]
    outbox = net.outbox("la-383")
    outbox.add(body)
    assert outbox.drain(transport) == 1
    assert _route(net.router(transport), transport).decision == "accepted"
    delivered = transport.get(delivery_queue(HOST_LA)).envelope
    published = json.loads((net.root / "directory.json").read_text())
    directory = net.directory
    sender_jwk = directory.participant("la-383").keys[-1]
    router_jwk = directory.participant("router").keys[-1]
    note = delivered.headers[DELIVERY].encode()
    tampered = body.replace(b'"placement-started"', b'"placement-ended"', 1)
    assert tampered != body
    items = [
        {"name": "message", "jws": delivered.headers[SIGNATURE], "payload": _b64url(delivered.body),
         "jwk": sender_jwk},
        {"name": "note", "jws": delivered.headers[DELIVERY_SIGNATURE], "payload": _b64url(note), "jwk": router_jwk},
        # Broken twins: other bytes, or the other participant's key, must not verify.
        {"name": "tampered", "jws": delivered.headers[SIGNATURE], "payload": _b64url(tampered), "jwk": sender_jwk},
        {"name": "wrong_key", "jws": delivered.headers[SIGNATURE], "payload": _b64url(delivered.body),
         "jwk": router_jwk},
    ]
    out = _node(foreign_node, _VERIFY, {"contract": str(CONTRACT_FILE), "items": items,
                                        "directory": json.dumps(published),
                                        "anchor": json.loads((net.root / "operator.pub.jwk").read_text())})
    message, note_result = out["items"]["message"], out["items"]["note"]
    assert message["verified"], message
    assert {k: message["header"][k] for k in ("alg", "typ", "kid", "iss", "jti", "sgx-evt")} == {
        "alg": "EdDSA", "typ": "sgx-message+jws", "kid": sender_jwk["kid"], "iss": "la-383", "jti": message_id,
        "sgx-evt": "placement-started"}
    assert abs(message["header"]["iat"] - datetime.now(UTC).timestamp()) < 300
    assert note_result["verified"], note_result
    assert (note_result["header"]["typ"], note_result["header"]["iss"], note_result["header"]["jti"]) == (
        "sgx-delivery+jws", "router", message_id)
    assert orjson.loads(note)["recipient"] == HOST_LA
    assert out["items"]["tampered"] == {"verified": False, "error": "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"}
    assert out["items"]["wrong_key"]["verified"] is False
    assert out["directory"]["header"]["typ"] == "sgx-directory+jws"
    assert out["directory"]["participants"] == len(directory.participants)
    assert out["workedExample"] == json.loads(CONTRACT_FILE.read_text())["workedExamples"]["message"][
        "compactDetachedJws"]


def test_over_rabbitmq_a_jose_message_published_as_the_contract_says_is_routed_and_received(
        rabbit, tmp_path, jose_signed):
    """The transport part of the contract on a real broker: publish with a plain AMQP client (pika, not the
    exchange's transport) to the exchange, routing key and properties the contract names, as the sender's own
    broker user."""
    import pika

    from broker.rabbitmq.setup import setup
    from broker.signature_contract import load

    vhost = "jose-contract"
    rabbit.ctl("add_vhost", vhost)
    rabbit.ctl("set_permissions", "-p", vhost, "sgx-admin", ".*", ".*", ".*")
    admin_url = rabbit.url("sgx-admin", "admin-secret", vhost=vhost)
    root = _exchange_folder(tmp_path, jose_signed)
    net = ExchangeFolder.open(root, transport_url=admin_url)
    net.credentials = setup(rabbit.ctl, admin_url, net.directory, root / "keys" / "broker-passwords.json",
                            vhost=vhost, delete_guest=False)
    amqp = load()["transport"]["amqp"]
    m = jose_signed["messages"]["amqp"]
    connection = pika.BlockingConnection(pika.URLParameters(rabbit.url(SENDER_LA, net.credentials[SENDER_LA],
                                                                       vhost=vhost)))
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish(amqp["publishTo"]["exchange"], amqp["publishTo"]["routingKey"], m["bytes"],
                          pika.BasicProperties(message_id=m["messageId"], user_id=SENDER_LA,
                                               content_type="application/fhir+json", delivery_mode=2,
                                               headers={SIGNATURE: jose_signed["tokens"]["amqp"],
                                                        SENDER: SENDER_LA}),
                          mandatory=True)
    connection.close()

    router_transport, node_transport = net.transport("router"), net.transport(HOST_LA)
    try:
        router = Router.in_folder(root, net.directory, router_transport, net.keys["router"])
        decision = router.handle(router_transport.get(INGRESS, timeout=10))
        assert (decision.decision, decision.recipients) == ("accepted", ["icb-QF7", HOST_LA])
        node = Node(HOST_LA, net.directory, node_transport, root / "inbox.db")
        assert node.run(idle_timeout=2) == 1
        [item] = node.inbox()
        assert item.body == m["bytes"] and item.verified.endswith(f"key {jose_signed['kid']} verified")
    finally:
        router_transport.close()
        node_transport.close()
