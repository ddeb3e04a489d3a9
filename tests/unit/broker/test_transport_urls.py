"""Transport URLs: credentials put in without changing the scheme, host, vhost or CA; capabilities from a URL."""

from __future__ import annotations

import pytest

from broker.transport import capabilities_of, open_transport, with_credentials
from standard.errors import UnrecoverableBrokerError


def test_credentials_replace_only_the_user_and_password():
    url = "amqps://admin:secret@broker.example:5671/%2F?cafile=%2Fetc%2Fsgx%2Fca.pem"
    assert with_credentials(url, "la-886", "p@ss/word") == (
        "amqps://la-886:p%40ss%2Fword@broker.example:5671/%2F?cafile=%2Fetc%2Fsgx%2Fca.pem")
    assert with_credentials("amqp://h:5672/%2F", "router", "x") == "amqp://router:x@h:5672/%2F"


def test_an_amqps_url_opens_a_verifying_tls_transport_and_says_so(tmp_path):
    from tests.integration.test_tls import make_ca

    ca, _, _ = make_ca(tmp_path, "test-ca")
    t = open_transport(f"amqps://u:p@127.0.0.1:5671/%2F?cafile={ca}")
    assert t.capabilities.encrypted and capabilities_of(f"amqps://u:p@h/%2F?cafile={ca}").encrypted
    assert t.params.ssl_options is not None and t.params.ssl_options.server_hostname == "127.0.0.1"
    plain = open_transport("amqp://u:p@127.0.0.1:5672/%2F")
    assert not plain.capabilities.encrypted and plain.params.ssl_options is None


def test_a_cafile_on_a_plaintext_url_is_refused():
    with pytest.raises(UnrecoverableBrokerError, match="amqps"):
        open_transport("amqp://u:p@127.0.0.1:5672/%2F?cafile=/tmp/ca.pem")


def test_a_ca_file_that_is_missing_or_not_a_certificate_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    for cafile in (tmp_path / "missing.pem", empty):
        with pytest.raises(UnrecoverableBrokerError, match=f"CA file {cafile} .*PEM file of the CA"):
            open_transport(f"amqps://u:p@127.0.0.1:5671/%2F?cafile={cafile}")


def test_capabilities_come_from_the_url_without_connecting(tmp_path):
    assert capabilities_of(str(tmp_path / "q.db")).declares_queues
    assert capabilities_of("amqp://u:p@h/%2F").participant_users
    assert not capabilities_of("amqp://u:p@h/%2F").declares_queues
