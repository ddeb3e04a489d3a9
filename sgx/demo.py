"""`sgx demo`: the whole flow on one machine with invented children and a real directory of
English local authorities and ICBs.

Two children's homes in Doncaster. Kent and Leeds place children at Example Lodge (Kent's come from its
case management system's SSDA903 export, through the adapter); Manchester places a child at Example
House in Sheffield. The provider reports a Regulation 40 incident and
refers an allegation to Doncaster's LADO, who notifies across boundaries. Every message is
signed, verified, validated, routed, audited and stored by each recipient's node.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import orjson

from broker import directory as d
from broker import signing
from broker.exchange_folder import ExchangeFolder
from broker.keys import SigningKey
from broker.receipts import DeliveryReceipts
from broker.router import SENDER, SIGNATURE
from broker.transport import INGRESS, Envelope, capabilities_of
from standard import compose as c
from standard.generate.examples import synthetic_nhs_number

LODGE, HOUSE = "SC900001", "SC900002"
PROVIDER, OTHER_PROVIDER = "provider-example-care", "provider-other-care"
DONCASTER, SHEFFIELD = "la-371", "la-373"
PLACING = {"la-886": "Kent", "la-383": "Leeds", "la-352": "Manchester"}


def demo_network(root: Path, transport_url: str | None = None) -> ExchangeFolder:
    participants = [
        d.Participant(PROVIDER, d.PROVIDER, "Example Care Ltd", {"ofsted_provider": "SC900000"}),
        d.Participant(OTHER_PROVIDER, d.PROVIDER, "Other Care Ltd", {"ofsted_provider": "SC900009"}),
    ]
    settings = [
        d.Setting(LODGE, "Example Lodge", "childrens-home", DONCASTER, "icb-QF7", ["ofsted"], PROVIDER),
        d.Setting(HOUSE, "Example House", "childrens-home", SHEFFIELD, "icb-QF7", ["ofsted", "cqc"], OTHER_PROVIDER),
    ]
    keyed = [PROVIDER, OTHER_PROVIDER, "router", "ofsted", "cqc", "icb-QF7", DONCASTER, "lado-371", SHEFFIELD,
             *PLACING, *(f"lado-{la[3:]}" for la in PLACING)]
    return ExchangeFolder.create(root, participants, settings, transport_url=transport_url, keyed=keyed)


def _child(b: c.MessageBuilder, la: str, n: int) -> str:
    return b.add(c.child(f"{la[3:]}-{n:04d}", la[3:], f"2011-04-0{n % 9 + 1}", "female" if n % 2 else "male",
                         nhs_number=synthetic_nhs_number(n)))


def placement(la: str, n: int, urn: str, start: str, *, sender: str | None = None) -> dict:
    b = c.MessageBuilder("placement-started", sender or la)
    child = _child(b, la, n)
    episode = b.add(c.looked_after_episode(child, la, "C2", "2025-06-01"))
    setting = b.add(c.setting(urn, "Example Lodge" if urn == LODGE else "Example House"))
    b.add(c.placement(child, episode, setting, "K2", start, provider_type="PR4"), focus=True)
    return b.build()


def serious_incident(la: str, n: int, *, health: bool = False) -> dict:
    b = c.MessageBuilder("serious-incident", PROVIDER)
    child = _child(b, la, n)
    setting = b.add(c.setting(LODGE, "Example Lodge"))
    today = datetime.now(UTC)
    incident = b.add(c.serious_incident(child, setting, "40-4-b-police-incident",
                                        c.timestamp(today - timedelta(hours=10)),
                                        aspects=["health-related"] if health else []))
    b.add(c.incident_notification(incident, setting, child, PROVIDER, c.timestamp(today), "40-4-b-police-incident",
                                  summary="Invented incident: police attended."), focus=True)
    return b.build()


def allegation(event: str, sender: str, case: str) -> dict:
    b = c.MessageBuilder(event, sender, security=["allegation-detail"])
    setting = b.add(c.setting(LODGE, "Example Lodge"))
    role = b.add(c.staff_role("S-0042", PROVIDER, setting, job="Residential support worker"))
    now = c.timestamp()
    task = c.allegation_referral(case, role, setting, "lado-371", PROVIDER, now, "physical-abuse",
                                 summary="Invented: a child reported being pushed.")
    if event == "allegation-referral":
        b.add(task, focus=True)
    else:
        task_ref = b.add(task)
        b.add(c.allegation_notification(task_ref, setting, sender, now, summary="Strategy discussion held."),
              focus=True)
    return b.build()


def _adapt_kent_export(root: Path, net: ExchangeFolder, transport, today) -> list[str]:
    """Kent's SSDA903 export (two children starting at Example Lodge today) read, planned against the change
    store, validated, queued and sent, as `sgx adapt ssda903` does; returns the events sent."""
    from adapters.placements import ChangeStore, children_of, placements, plan_messages
    from adapters.queueing import queue
    from adapters.ssda903_csv import Ssda903CsvReader

    folder = root / "exports" / "la-886"
    folder.mkdir(parents=True, exist_ok=True)
    day = today.strftime("%d/%m/%Y")
    (folder / "header.csv").write_text("CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n886-0001,2,02/04/2011,WBRI,,,\n"
                                       "886-0002,1,03/04/2011,WBRI,,,\n")
    (folder / "episodes.csv").write_text(
        "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN\n"
        f"886-0001,{day},S,C2,N1,K2,PR4,,,,,,{LODGE}\n886-0002,{day},S,C2,N1,K2,PR4,,,,,,{LODGE}\n")
    reader = Ssda903CsvReader()
    tables: dict[str, list] = {}
    for name in ("header.csv", "episodes.csv"):
        for record in reader.read(folder / name):
            tables.setdefault(record.table, []).append(record)
    net.adapter_state_file("la-886").parent.mkdir(exist_ok=True)
    store = ChangeStore(net.adapter_state_file("la-886"))
    plan = plan_messages("886", children_of(tables["header"]), placements(tables["episodes"]), net.directory, store)
    outbox = net.outbox("la-886")
    sent = [item.event for item in queue(plan.messages, outbox, store, outbox.validator)]
    outbox.drain(transport)
    return sent


def signed_envelope(net: ExchangeFolder, sender: str, message: dict, *, key: SigningKey | None = None) -> Envelope:
    body = orjson.dumps(message)
    message_id = message["identifier"]["value"]
    event = message["entry"][0]["resource"]["eventCoding"]["code"]
    signature = signing.sign_message(body, key or net.keys[sender], sender=sender, message_id=message_id, event=event)
    return Envelope(message_id, body, {SIGNATURE: signature, SENDER: sender})


def _tampered(envelope: Envelope) -> Envelope:
    return Envelope(envelope.message_id, envelope.body.replace(b'"2011-', b'"2010-', 1), envelope.headers)


def run_demo(root: Path, transport_url: str | None = None, echo=click.echo, *,
             rabbitmqctl=None) -> dict[str, list[tuple[str, str]]]:
    """Run the scenario; returns participant -> [(event, verification)] as stored by each node.

    With an amqp:// URL (an administrator's), `rabbitmqctl` runs rabbitmqctl against that node so that
    the demo can create one broker user per participant, as `sgx broker setup` does.
    """
    logging.getLogger("sgx").setLevel(logging.ERROR)  # refusals are shown below, not as log lines
    net = demo_network(root, transport_url)
    connections: dict[str, object] = {}  # one per participant on RabbitMQ, each as its own broker user
    if transport_url and capabilities_of(transport_url).participant_users:
        from broker.rabbitmq.setup import setup

        net.credentials = setup(rabbitmqctl, transport_url, net.directory, net.credentials_file,
                                delete_guest=False)

    shared = None if net.credentials else net.transport()  # the embedded transport has no users

    def connect(pid: str):
        if shared is not None:
            return shared
        if pid not in connections:
            connections[pid] = net.transport(as_participant=pid)
        return connections[pid]

    transport = connect("router")
    router = net.router(transport)
    today = datetime.now(UTC).date().isoformat()

    echo("Kent's case management export, through the adapter (only what changed since its last run is sent):")
    built = _adapt_kent_export(root, net, connect("la-886"), datetime.now(UTC).date())
    router.run(idle_timeout=0.0 if not net.credentials else 5.0, max_messages=len(built))
    echo(f"  la-886 SSDA903 Header and Episodes: {len(built)} new placements at Example Lodge -> "
         f"{', '.join(sorted(set(built)))}\n")

    leeds = placement("la-383", 3, LODGE, today)
    sends = [
        ("la-383", leeds),
        ("la-352", placement("la-352", 4, HOUSE, today)),
        (PROVIDER, serious_incident("la-886", 1)),
        (PROVIDER, serious_incident("la-383", 3, health=True)),
        (PROVIDER, allegation("allegation-referral", PROVIDER, "LADO-371-0001")),
        ("lado-371", allegation("allegation-notification", "lado-371", "LADO-371-0001")),
    ]
    echo("Sending (each participant signs with its own key; its outbox keeps what is not yet confirmed):")
    for sender, message in sends:
        outbox = net.outbox(sender)
        outbox.add(message)
        outbox.drain(connect(sender))
        router.run(idle_timeout=0.0 if not net.credentials else 5.0, max_messages=1)
        event = message["entry"][0]["resource"]["eventCoding"]["code"]
        echo(f"  {sender:22} {event}")

    echo("\nWhat the exchange refuses (each refusal is audited and the sender told):")
    attacks = [
        ("a provider notifies a placement",
         signed_envelope(net, PROVIDER, placement("la-383", 9, LODGE, today, sender=PROVIDER))),
        ("a byte changed after signing",
         _tampered(signed_envelope(net, "la-886", placement("la-886", 7, LODGE, today)))),
        ("a captured message sent again", signed_envelope(net, "la-383", leeds)),
        ("signed by a key not in the directory",
         signed_envelope(net, "la-886", placement("la-886", 8, LODGE, today), key=SigningKey.generate("la-886-1"))),
    ]
    for what, envelope in attacks:
        connect(envelope.headers[SENDER]).publish(INGRESS, envelope)
        decision = router.handle(transport.get(INGRESS, timeout=5))
        outcome = "dropped, not delivered twice" if decision.decision == "duplicate" else decision.reason
        echo(f"  {what:40} {decision.decision}: {outcome}")

    received: dict[str, list[tuple[str, str]]] = {}
    receipts = []
    echo("\nWho received what (each node verified the sender's and the router's signatures, stored, then acked):")
    for pid in sorted(set(net.keys) - {"router"}):
        node = net.node(pid, connect(pid))
        # As `sgx node run` does: each sender is told its message reached this node (sent after the listing).
        receipts.append(DeliveryReceipts(node.db, net.outbox(pid), lambda pid=pid: connect(pid)))
        node.run(idle_timeout=0.0 if not net.credentials else 0.5)
        items = [i for i in node.inbox() if i.event != "acknowledgement"]
        acks = [i for i in node.inbox() if i.event == "acknowledgement"]
        received[pid] = [(i.event, i.verified) for i in node.inbox()]
        if not items and not acks:
            continue
        name = net.directory.participants[pid].name
        echo(f"  {pid:16} {name}")
        for item in items:
            children = item.delivery.get("children")
            extra = f"; told of {len(children)} of its own children at the setting" if children else ""
            echo(f"      {item.event:26} from {item.sender:22} as {','.join(item.delivery.get('roles', []))}{extra}")
        if acks:
            codes = [orjson.loads(a.body)["entry"][1]["resource"]["issue"][0]["details"]["coding"][0]["code"]
                     for a in acks]
            echo(f"      acknowledgements: {', '.join(f'{codes.count(x)} {x}' for x in sorted(set(codes)))}")

    for told in receipts:
        told.send()
    router.run(idle_timeout=0.0 if not net.credentials else 5.0)  # the receipts, to each message's sender
    for pid in sorted(set(net.keys) - {"router"}):
        net.node(pid, connect(pid)).run(idle_timeout=0.0 if not net.credentials else 0.5)

    echo("\nRegister of children living away from home (pseudonyms only):")
    for urn in (LODGE, HOUSE):
        at = router.register.children_at(urn, today)
        echo(f"  {urn} {net.directory.settings[urn].name}: " +
             ", ".join(f"{la} ({PLACING.get(la, la)}) {len(kids)} child(ren)" for la, kids in at.items()))
    problems = router.audit.verify()
    echo(f"\nAudit log: {len(router.audit.records())} decisions in a hash chain; "
         f"{'intact' if not problems else f'{len(problems)} problem(s)'}; head {router.audit.head()[:16]}...")
    for connection in [*connections.values(), *([shared] if shared else [])]:
        connection.close()
    return received


DEMO_MARK = ".sgx-demo"  # marks a folder the demo made, so a re-run may clear it and nothing else
INBOX_PEOPLE = {"lado-886": ("kent.lado@example.org", "Kim (Kent LADO)"),
                "lado-371": ("doncaster.lado@example.org", "Dee (Doncaster LADO)")}


def _fresh_folder(folder: Path) -> None:
    """Make the demo's folder empty, refusing to clear one the demo did not make."""
    if folder.exists() and any(folder.iterdir()):
        if not (folder / DEMO_MARK).exists():
            raise click.UsageError(f"{folder} holds files the demo did not make; choose another folder with --dir")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARK).write_text("made by sgx demo; cleared by its next run\n")


def _inbox_accounts(root: Path) -> list[tuple[str, str, str, str]]:
    """An account for each demo LADO's web inbox, with a password made for this run."""
    from broker.inbox.cli import open_store
    from broker.inbox.users import add_user

    accounts = []
    for participant, (email, name) in INBOX_PEOPLE.items():
        password = "-".join(secrets.token_hex(3) for _ in range(3))
        add_user(open_store(root, participant), email, name, "manager", password)
        accounts.append((participant, email, name, password))
    return accounts


@click.command()
@click.option("--broker", "broker_url", default=None, help="amqp://user:pass@host:port/vhost to use RabbitMQ "
              "(set up with 'sgx broker setup'); default: the embedded transport.")
@click.option("--rabbitmq-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of a node started with 'sgx broker dev-server', so the demo can create broker users.")
@click.option("--dir", "work_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path.home() / "sgx-demo", show_default=True,
              help="Keep the network's files here, to open the LADOs' inboxes afterwards (cleared on each run).")
def demo(broker_url: str | None, rabbitmq_dir: Path | None, work_dir: Path) -> None:
    """Run the exchange end to end: placements, a Regulation 40, an allegation referral and the LADO's
    cross-boundary notification, with signing, routing, the register and the audit log; then leave the LADOs'
    web inboxes ready to open."""
    click.secho("Safeguarding Exchange demo (all people invented; organisations are real public codes)\n", bold=True)
    ctl = None
    if broker_url:
        if rabbitmq_dir is None:
            raise click.UsageError("--broker needs --rabbitmq-dir (the folder of 'sgx broker dev-server') so the "
                                   "demo can create one broker user per participant")
        from broker.rabbitmq.server import RabbitNode

        ctl = RabbitNode.attach(rabbitmq_dir).ctl
    _fresh_folder(work_dir)
    run_demo(work_dir, broker_url, rabbitmqctl=ctl)
    sgx = shutil.which("sgx") or str(Path(sys.executable).parent / "sgx")
    click.echo("\nRead what the LADOs received in their web inboxes (one command each; Ctrl-C stops it):")
    for port, (participant, email, name, password) in enumerate(_inbox_accounts(work_dir), start=8025):
        click.echo(f"  {name}: {sgx} inbox serve --dir {work_dir} --participant {participant} --port {port}\n"
                   f"      then open http://127.0.0.1:{port}/ and sign in as {email} with {password}")
    if not broker_url:
        click.echo("\nAcknowledge Doncaster's cross-boundary notification in Kim's inbox or record a decision, then "
                   "route the answer to Doncaster's node:\n"
                   f"  {sgx} broker route --dir {work_dir} --once && {sgx} node run --dir {work_dir} "
                   "--participant lado-371 --once\n"
                   f"  Dee's inbox then shows it under Sent, as does: {sgx} node status --dir {work_dir} "
                   f"--participant lado-371 {_notification_id(work_dir)}")
    click.echo("\nThe standard's pages: sgx standard docs --out site/")


def _notification_id(work_dir: Path) -> str:
    """The id of Doncaster LADO's cross-boundary notification, which the demo's last step sent."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(work_dir / "outbox" / "lado-371.db")) as db:
        row = db.execute("SELECT message_id FROM outbox WHERE event = 'allegation-notification' ORDER BY seq DESC "
                         "LIMIT 1").fetchone()
    return row[0] if row else "MESSAGE_ID"


__all__ = ["allegation", "demo", "demo_network", "placement", "run_demo", "serious_incident", "signed_envelope"]
