"""`sgx broker setup`: the RabbitMQ topology, policies, users and permissions, from the directory.

Least privilege: a participant's user may publish only to `sgx.ingress` and read only its own delivery
queue; it may configure nothing (no declare, bind or delete). Every regex is anchored. A delivery queue is
routed to by `deliver.<id>` but named privately (`deliver.<id>.<32 hex>`, kept in keys/broker-queues.json and
given to the participant with its password), because RabbitMQ before 4.2.6 answers a passive declare of any
queue name without a permission check. The router's user reads `ingress` and `dead-letter` and publishes to
`sgx.deliver`. Passwords are generated here and written to a file readable by the owner only; never printed.

Limits: the broker refuses a message body over MAX_BODY_BYTES (`max_message_size`, set on the running node
here and kept across restarts by the line `max_message_size = 5242880` in rabbitmq.conf), so the ingress takes
nothing the router could not deliver; the header frame stays at RabbitMQ's default `frame_max` (128 KiB), which
the router's limits are computed against (broker/router.py).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import orjson

from broker.directory import Directory
from broker.router import MAX_BODY_BYTES
from broker.transport import DEAD_LETTER, INGRESS, delivery_queue, private_queue_name
from broker.transport.base import DEFAULT_DELIVERY_LIMIT
from broker.transport.rabbitmq import DEAD_LETTER_EXCHANGE, DELIVER_EXCHANGE, INGRESS_EXCHANGE, RabbitTransport

ROUTER_USER = "router"
log = logging.getLogger("sgx.broker.setup")


def permissions_for(participant_id: str, queue: str | None = None) -> tuple[str, str, str]:
    """(configure, write, read) regexes of a participant's broker user; `queue` is its delivery queue's private
    name (default: the routing name, for an exchange set up before queues had private names)."""
    return "^$", f"^{re.escape(INGRESS_EXCHANGE)}$", f"^{re.escape(queue or delivery_queue(participant_id))}$"


def queue_names_file(secrets_path: Path) -> Path:
    """Where setup keeps each participant's private queue name: beside the passwords, owner-only."""
    return secrets_path.with_name("broker-queues.json")


def load_queue_names(path: Path) -> dict[str, str]:
    """Routing name (`deliver.<id>`) -> private queue name, as `setup` wrote them; empty when there are none."""
    return orjson.loads(path.read_bytes()) if path.exists() else {}


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
    names_path = queue_names_file(secrets_path)
    # The broker's bindings say which queue each participant already has (set up from another folder, or before
    # queues had private names): that one is kept, so nothing waiting in it is lost and no second queue doubles
    # the traffic.
    names = load_queue_names(names_path) | bound_queues(ctl, vhost)
    admin = RabbitTransport(admin_url)
    try:
        admin.declare(INGRESS)
        admin.declare(DEAD_LETTER)
        for pid in wanted:
            routing = delivery_queue(pid)
            if names.get(routing) == routing:
                log.warning("%s keeps its queue %s, whose name others can guess; to move it to a private name, let "
                            "the participant's node empty it, delete it and run setup again", pid, routing)
            names.setdefault(routing, private_queue_name(pid))
            admin.queue_names[routing] = names[routing]
            admin.declare(routing)
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
        perms = ROUTER_PERMISSIONS if user == ROUTER_USER else permissions_for(user, names[delivery_queue(user)])
        ctl("set_permissions", "-p", vhost, user, *perms)
        passwords[user] = password
    if delete_guest and "guest" in existing:
        ctl("delete_user", "guest")
    secrets_path.parent.mkdir(parents=True, exist_ok=True)
    for path, content in ((secrets_path, passwords), (names_path, names)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(content, option=orjson.OPT_INDENT_2))
    return passwords


def bound_queues(ctl: Callable[..., str], vhost: str = "/") -> dict[str, str]:
    """Routing name -> the queue bound to it on the delivery exchange, as the broker has them now."""
    found: dict[str, str] = {}
    for line in ctl("list_bindings", "-p", vhost, "--silent", "source_name", "destination_name",
                    "routing_key").splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[0] == DELIVER_EXCHANGE and parts[2].startswith("deliver."):
            found[parts[2]] = parts[1]
    return found


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
