"""`sgx broker setup`: the RabbitMQ topology, policies, users and permissions, from the directory.

Least privilege: a participant's user may publish only to `sgx.ingress` and read only its own
`deliver.<id>` queue; it may configure nothing (no declare, bind or delete). Every regex is
anchored. The router's user reads `ingress` and `dead-letter` and publishes to `sgx.deliver`.
Passwords are generated here and written to a file readable by the owner only; never printed.

Limits: the broker refuses a message body over MAX_BODY_BYTES (`max_message_size`, set on the running node
here and kept across restarts by the line `max_message_size = 5242880` in rabbitmq.conf), so the ingress takes
nothing the router could not deliver; the header frame stays at RabbitMQ's default `frame_max` (128 KiB), which
the router's limits are computed against (broker/router.py).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import orjson

from broker.directory import Directory
from broker.router import MAX_BODY_BYTES
from broker.transport import DEAD_LETTER, INGRESS, delivery_queue
from broker.transport.base import DEFAULT_DELIVERY_LIMIT
from broker.transport.rabbitmq import DEAD_LETTER_EXCHANGE, DELIVER_EXCHANGE, INGRESS_EXCHANGE, RabbitTransport

ROUTER_USER = "router"


def permissions_for(participant_id: str) -> tuple[str, str, str]:
    """(configure, write, read) regexes of a participant's broker user."""
    return "^$", f"^{re.escape(INGRESS_EXCHANGE)}$", f"^{re.escape(delivery_queue(participant_id))}$"


ROUTER_PERMISSIONS = ("^$", f"^({re.escape(DELIVER_EXCHANGE)})$",
                      f"^({re.escape(INGRESS)}|{re.escape(DEAD_LETTER)})$")


def setup(ctl: Callable[..., str], admin_url: str, directory: Directory, secrets_path: Path, *,
          vhost: str = "/", delivery_limit: int = DEFAULT_DELIVERY_LIMIT, participants: list[str] | None = None,
          delete_guest: bool = True) -> dict[str, str]:
    """Create everything; returns participant -> password (also written to `secrets_path`, mode 0600).

    Args:
        ctl: runs rabbitmqctl with the given arguments (e.g. RabbitNode.ctl).
        participants: the participants to create users and queues for (default: all with a key).
    """
    wanted = participants or [p.id for p in directory.participants.values() if p.keys and p.id != ROUTER_USER]
    admin = RabbitTransport(admin_url)
    try:
        admin.declare(INGRESS)
        admin.declare(DEAD_LETTER)
        for pid in wanted:
            admin.declare(delivery_queue(pid))
    finally:
        admin.close()
    policy = {"delivery-limit": delivery_limit, "dead-letter-exchange": DEAD_LETTER_EXCHANGE,
              "dead-letter-routing-key": DEAD_LETTER, "dead-letter-strategy": "at-least-once",
              "overflow": "reject-publish"}
    ctl("set_policy", "-p", vhost, "--apply-to", "queues", "--priority", "10", "sgx-delivery",
        r"^(ingress|deliver\..+)$", orjson.dumps(policy).decode())
    ctl("set_policy", "-p", vhost, "--apply-to", "queues", "--priority", "10", "sgx-dead-letter",
        r"^dead-letter$", orjson.dumps({"overflow": "reject-publish"}).decode())
    set_max_message_size(ctl)

    passwords: dict[str, str] = {}
    existing = set(ctl("list_users", "--silent").split())
    for user in [ROUTER_USER, *wanted]:
        password = secrets.token_hex(24)  # hex: never starts with "-", which rabbitmqctl would read as an option
        if user in existing:
            ctl("change_password", user, password)
        else:
            ctl("add_user", user, password)
        perms = ROUTER_PERMISSIONS if user == ROUTER_USER else permissions_for(user)
        ctl("set_permissions", "-p", vhost, user, *perms)
        passwords[user] = password
    if delete_guest and "guest" in existing:
        ctl("delete_user", "guest")
    secrets_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(orjson.dumps(passwords, option=orjson.OPT_INDENT_2))
    return passwords


def set_max_message_size(ctl: Callable[..., str], size: int = MAX_BODY_BYTES) -> None:
    """Make the running node refuse message bodies over `size` bytes (channels opened from now on; a publish over
    it closes the publisher's channel with PRECONDITION_FAILED). rabbitmq.conf's `max_message_size` keeps it
    across restarts."""
    ctl("eval", f"application:set_env(rabbit, max_message_size, {int(size)}).")


def revoke(ctl: Callable[..., str], participant_id: str, vhost: str = "/") -> int:
    """Remove a participant's access now: permissions cleared and its open connections closed (RabbitMQ
    caches permissions per connection, so closing them is what makes the revocation immediate). Returns how
    many connections were closed."""
    ctl("clear_permissions", "-p", vhost, participant_id)
    closed = 0
    for line in ctl("list_connections", "--silent", "user", "pid").splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0] == participant_id:
            ctl("close_connection", parts[1], "access revoked by the operator")
            closed += 1
    return closed
