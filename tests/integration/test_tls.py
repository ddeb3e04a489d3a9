"""amqps:// end to end on a real RabbitMQ TLS listener, with a certificate authority made here for the test.

A message goes over TLS and arrives; a client given another CA is refused with BrokerNotTrusted (and does not
fall back to plaintext); an amqps URL keeps its scheme and CA through ExchangeFolder to every participant.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker import directory as d
from broker.exchange_folder import ExchangeFolder
from broker.rabbitmq.server import RabbitNode, TlsFiles
from broker.rabbitmq.setup import setup
from broker.transport import INGRESS, Envelope, open_transport
from broker.transport.base import CONNECTION_USER
from broker.transport.rabbitmq import RabbitTransport
from standard.errors import BrokerNotTrusted


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(folder: Path, name: str) -> tuple[Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(key, hashes.SHA256()))
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path, key, cert


def make_server_cert(folder: Path, ca_key, ca_cert) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    certfile, keyfile = folder / "server.pem", folder / "server.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    keyfile.chmod(0o600)
    return certfile, keyfile


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory):
    """A RabbitMQ node with a TLS listener whose certificate our own CA issued; also another, unrelated CA."""
    pki = tmp_path_factory.mktemp("pki")
    cafile, ca_key, ca_cert = make_ca(pki, "test-ca")
    certfile, keyfile = make_server_cert(pki, ca_key, ca_cert)
    other_ca, _, _ = make_ca(pki, "other-ca")
    node = RabbitNode(tmp_path_factory.mktemp("rabbitmq-tls"), tls=TlsFiles(certfile, keyfile, cafile))
    node.start()
    node.ctl("add_user", "sgx-admin", "admin-secret")
    node.ctl("set_user_tags", "sgx-admin", "administrator")
    node.ctl("set_permissions", "-p", "/", "sgx-admin", ".*", ".*", ".*")
    node.other_ca = other_ca
    yield node
    node.stop()


def _env() -> Envelope:
    return Envelope(f"urn:uuid:{uuid.uuid4()}", b'{"over": "tls"}', {"sgx-signature": "x..y"})


def _tls_connections(node: RabbitNode) -> list[str]:
    """The broker's own view: for each open connection, its user and whether it is TLS."""
    return node.ctl("list_connections", "--silent", "user", "ssl").splitlines()


def test_a_message_published_and_consumed_over_amqps_arrives(tls_node):
    queue = f"deliver.tls-{uuid.uuid4().hex[:8]}"
    t = open_transport(tls_node.tls_url("sgx-admin", "admin-secret"))
    assert t.capabilities.encrypted
    t.declare(queue)
    sent = _env()
    t.publish(queue, sent)
    got = t.get(queue, timeout=5)
    assert got.envelope.message_id == sent.message_id and got.envelope.body == sent.body
    got.ack()
    assert "sgx-admin\ttrue" in _tls_connections(tls_node)  # the broker saw a TLS connection, not plaintext
    t.close()


def refused_with_the_wrong_ca(node: RabbitNode, transport_class=RabbitTransport) -> bool:
    """Whether a client given a CA that did not issue the broker's certificate is refused and sends nothing."""
    queue = f"deliver.tls-{uuid.uuid4().hex[:8]}"
    admin = RabbitTransport(node.tls_url("sgx-admin", "admin-secret"))
    admin.declare(queue)
    client = transport_class(node.tls_url("sgx-admin", "admin-secret", cafile=node.other_ca), publish_attempts=1)
    try:
        client.publish(queue, _env())
    except BrokerNotTrusted as exc:
        assert "certificate" in str(exc) and "plaintext" in str(exc)
        refused = True
    else:
        refused = False
    finally:
        client.close()
    nothing_sent = admin.depth(queue) == 0
    admin.close()
    return refused and nothing_sent


class TrustsAnyBroker(RabbitTransport):
    """A deliberately broken client: TLS without verifying the broker's certificate."""

    def __init__(self, url: str, **options):
        super().__init__(url, **options)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        self.params.ssl_options.context = context


def test_a_client_with_the_wrong_ca_is_refused_and_a_client_that_trusts_anything_is_caught(tls_node):
    assert refused_with_the_wrong_ca(tls_node)
    assert not refused_with_the_wrong_ca(tls_node, TrustsAnyBroker)  # the same check fails the broken twin


def test_amqps_to_a_plaintext_listener_is_refused_without_falling_back(tls_node):
    plaintext_port = f"127.0.0.1:{tls_node.port}/"
    url = tls_node.tls_url("sgx-admin", "admin-secret").replace(f"127.0.0.1:{tls_node.tls_port}/", plaintext_port)
    with pytest.raises(BrokerNotTrusted):
        RabbitTransport(url, publish_attempts=1).publish(INGRESS, _env())


def test_a_cafile_on_a_plaintext_url_is_refused_rather_than_ignored(tls_node):
    from standard.errors import UnrecoverableBrokerError

    with pytest.raises(UnrecoverableBrokerError, match="amqps"):
        RabbitTransport(tls_node.url("sgx-admin", "admin-secret") + f"?cafile={tls_node.tls.cafile}")


def test_network_keeps_amqps_and_its_ca_for_every_participant(tls_node, tmp_path):
    admin_url = tls_node.tls_url("sgx-admin", "admin-secret")
    net = ExchangeFolder.create(tmp_path / "ex", [], [d.Setting("SC900001", "Example Lodge", "childrens-home", "la-371",
                                                          "icb-QF7", ["ofsted"])],
                         transport_url=admin_url, keyed=["la-886", "la-371", "icb-QF7", "router"])
    net.credentials = setup(tls_node.ctl, admin_url, net.directory, net.credentials_file, delete_guest=False)
    kent = net.transport(as_participant="la-886")
    assert kent.capabilities.encrypted and kent.params.ssl_options is not None and kent.user == "la-886"
    sent = _env()
    kent.publish(INGRESS, sent)
    assert "la-886\ttrue" in _tls_connections(tls_node)
    router = net.transport(as_participant="router")
    got = router.get(INGRESS, timeout=5)
    # The broker checked the connection's user against the message: the transport hands that identity on.
    assert got.envelope.message_id == sent.message_id and got.envelope.headers[CONNECTION_USER] == "la-886"
    got.ack()
    kent.close()
    router.close()
