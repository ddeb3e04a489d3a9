// A Safeguarding Exchange receiving system in Node.js, written from the standard's documents only (the
// signature contract, the directory format, the acknowledgement message), with a JOSE library and an AMQP 0-9-1
// client. It shows what any system must do to pass the receiver conformance kit:
//
//   node receiver.mjs run CONFIG --key PRIVATE_KEY.pem     take the queue until SIGTERM
//   node receiver.mjs stored CONFIG                        print the ids of the messages held, as JSON
//
// For each delivery: verify the sender's detached JWS and the router's delivery note with keys from the signed
// directory (refusing unknown, revoked and expired keys); hold the message once per id, durably (fsync), and only
// then ack the delivery; answer each newly held message with a signed acknowledgement message: "received", or
// "rejected" with the reason when the system does not know the event or its version.
import { randomUUID } from "node:crypto";
import { appendFileSync, closeSync, existsSync, fsyncSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import amqp from "amqplib";
import * as jose from "jose";

const BASE = "https://safeguarding-exchange.org.uk/fhir";
const MESSAGE_TYP = "sgx-message+jws";
const DELIVERY_TYP = "sgx-delivery+jws";
const DIRECTORY_TYP = "sgx-directory+jws";
// The events this system knows (the standard's catalogue, version 0.1): anything else is rejected.
const KNOWN_EVENTS = new Set(["placement-started", "placement-changed", "placement-ended", "serious-incident",
  "allegation-referral", "allegation-notification", "allegation-outcome", "concern-notification",
  "independent-visitor-report", "quality-of-care-review", "escalation", "acknowledgement"]);

class Refused extends Error {}

const readJson = (path) => JSON.parse(readFileSync(path, "utf8"));
const text = (value) => (Buffer.isBuffer(value) ? value.toString("utf8") : value);

// -- the directory: a flattened JWS signed by the operator ------------------------------------------------
async function loadDirectory(config) {
  const operator = await jose.importJWK(readJson(config.directory_operator_key), "EdDSA");
  const { payload, protectedHeader } = await jose.flattenedVerify(readJson(config.directory), operator);
  if (protectedHeader.typ !== DIRECTORY_TYP) throw new Error(`the directory's typ is not ${DIRECTORY_TYP}`);
  const directory = JSON.parse(new TextDecoder().decode(payload));
  if (Date.parse(directory.expires_at) <= Date.now()) throw new Error("the directory has expired");
  return new Map(directory.participants.map((p) => [p.id, p]));
}

function keyFor(participants, header) {
  const jwk = participants.get(header.iss)?.keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Refused(`no key ${header.kid} for ${header.iss} in the directory`);
  const signedAt = header.iat * 1000;
  if (jwk.revoked_at && (signedAt >= Date.parse(jwk.revoked_at) || Date.now() >= Date.parse(jwk.revoked_at))) {
    throw new Refused(`key ${header.kid} is revoked`);
  }
  if ((jwk.valid_from && signedAt < Date.parse(jwk.valid_from)) ||
      (jwk.valid_until && signedAt >= Date.parse(jwk.valid_until))) {
    throw new Refused(`key ${header.kid} was not valid when the message was signed`);
  }
  return jose.importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, "EdDSA");
}

// -- detached compact JWS (RFC 7515 appendix F) over the exact bytes -------------------------------------
async function verifyDetached(participants, bytes, compact, typ) {
  const parts = typeof compact === "string" ? compact.split(".") : [];
  if (parts.length !== 3 || parts[1] !== "") throw new Refused("not a detached compact JWS");
  const header = JSON.parse(new TextDecoder().decode(jose.base64url.decode(parts[0])));
  if (header.alg !== "EdDSA" || header.typ !== typ || header.crit || header.jwk || header.jku ||
      header.x5u || header.x5c) throw new Refused("the JWS header breaks the signature contract");
  for (const name of ["kid", "iss", "jti", "sgx-evt"]) {
    if (typeof header[name] !== "string" || !header[name]) throw new Refused(`the JWS header has no ${name}`);
  }
  if (!Number.isInteger(header.iat)) throw new Refused("the JWS header has no integer iat");
  const key = await keyFor(participants, header);
  try {
    await jose.flattenedVerify({ protected: parts[0], payload: jose.base64url.encode(bytes), signature: parts[2] },
      key, { algorithms: ["EdDSA"] });
  } catch {
    throw new Refused("the signature does not verify over the bytes received");
  }
  return header;
}

async function signDetached(bytes, key, header) {
  const jws = await new jose.FlattenedSign(bytes).setProtectedHeader(header).sign(key);
  return `${jws.protected}..${jws.signature}`;
}

// -- what the system holds: one line per message id, fsynced before the delivery is acked ---------------
class Store {
  constructor(folder) {
    this.inbox = join(folder, "inbox-node.jsonl");
    this.answered = join(folder, "answered-node.jsonl");
    this.ids = new Set(Store.lines(this.inbox).map((l) => l.id));
    this.done = new Set(Store.lines(this.answered).map((l) => l.id));
  }

  static lines(path) {
    return existsSync(path) ? readFileSync(path, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
  }

  static append(path, record) {
    const fd = openSync(path, "a");
    try {
      appendFileSync(fd, `${JSON.stringify(record)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  hold(id, event, body) {
    if (this.ids.has(id)) return false;
    Store.append(this.inbox, { id, event, body: body.toString("utf8") });
    this.ids.add(id);
    return true;
  }

  unanswered() {
    return Store.lines(this.inbox).filter((l) => !this.done.has(l.id));
  }

  answer(id) {
    Store.append(this.answered, { id });
    this.done.add(id);
  }
}

// -- the business acknowledgement ------------------------------------------------------------------------
function judge(message) {
  const header = message?.entry?.[0]?.resource;
  const code = header?.eventCoding?.code;
  if (message?.resourceType !== "Bundle" || message.type !== "message" || header?.resourceType !== "MessageHeader") {
    return ["rejected", "not a FHIR message Bundle with its MessageHeader first"];
  }
  if (!KNOWN_EVENTS.has(code)) return ["rejected", `event ${code} is not one this system knows`];
  if (header.definition !== `${BASE}/MessageDefinition/${code}`) {
    return ["rejected", `MessageHeader.definition ${header.definition} is a version of ${code} this system does ` +
      "not know"];
  }
  return ["received", null];
}

function acknowledgement(participant, answered, code, reason) {
  const outcomeUrl = `urn:uuid:${randomUUID()}`;
  const display = { received: "Received", rejected: "Rejected" }[code];
  const issue = reason
    ? { severity: "error", code: "invalid", diagnostics: reason }
    : { severity: "information", code: "informational" };
  issue.details = { coding: [{ system: `${BASE}/CodeSystem/ack-code`, code, display }] };
  return {
    resourceType: "Bundle",
    identifier: { system: "urn:ietf:rfc:3986", value: `urn:uuid:${randomUUID()}` },
    type: "message",
    timestamp: new Date().toISOString(),
    entry: [
      {
        fullUrl: `urn:uuid:${randomUUID()}`,
        resource: {
          resourceType: "MessageHeader",
          eventCoding: { system: `${BASE}/CodeSystem/event`, code: "acknowledgement", display: "Acknowledgement" },
          definition: `${BASE}/MessageDefinition/acknowledgement`,
          sender: { identifier: { system: `${BASE}/Id/participant`, value: participant } },
          source: { name: participant, endpoint: `urn:sgx:participant:${participant}` },
          focus: [{ reference: outcomeUrl }],
          response: { identifier: answered.replace(/^urn:uuid:/, ""), code: code === "received" ? "ok" : "fatal-error",
            details: { reference: outcomeUrl } },
        },
      },
      { fullUrl: outcomeUrl, resource: { resourceType: "OperationOutcome", issue: [issue] } },
    ],
  };
}

// -- running ---------------------------------------------------------------------------------------------
async function run(config, keyFile) {
  const participants = await loadDirectory(config);
  const privateKey = await jose.importPKCS8(readFileSync(keyFile, "utf8"), "EdDSA");
  const store = new Store(config.state);
  const connection = await amqp.connect(config.amqp_url);
  const channel = await connection.createConfirmChannel();
  await channel.prefetch(20);
  let stopping = false;

  const publishAnswer = async (record) => {
    const [code, reason] = judge(JSON.parse(record.body));
    const ack = acknowledgement(config.participant, record.id, code, reason);
    const bytes = Buffer.from(JSON.stringify(ack));
    const id = ack.identifier.value;
    const signature = await signDetached(bytes, privateKey, { alg: "EdDSA", typ: MESSAGE_TYP, kid: config.kid,
      iss: config.participant, jti: id, "sgx-evt": "acknowledgement", iat: Math.floor(Date.now() / 1000) });
    channel.publish(config.publish_exchange, config.publish_routing_key, bytes, { persistent: true,
      messageId: id, contentType: "application/fhir+json", userId: config.participant, mandatory: true,
      headers: { "sgx-signature": signature, "sgx-sender": config.participant } });
    await channel.waitForConfirms();
    store.answer(record.id); // after the confirm: a crash in between answers again, never not at all
  };

  for (const record of store.unanswered()) await publishAnswer(record);

  await channel.consume(config.queue, async (msg) => {
    if (msg === null || stopping) return;
    const headers = msg.properties.headers ?? {};
    let header;
    try {
      header = await verifyDetached(participants, msg.content, text(headers["sgx-signature"]), MESSAGE_TYP);
      const note = text(headers["sgx-delivery"]);
      const noteHeader = await verifyDetached(participants, Buffer.from(note ?? "", "utf8"),
        text(headers["sgx-delivery-signature"]), DELIVERY_TYP);
      const delivery = JSON.parse(note);
      if (noteHeader.iss !== "router" || delivery.recipient !== config.participant ||
          delivery.message_id !== header.jti) throw new Refused("the delivery note is not for this message");
    } catch (error) {
      process.stderr.write(`refused a delivery: ${error instanceof Refused ? error.message : "unreadable"}\n`);
      channel.nack(msg, false, false);
      return;
    }
    const fresh = store.hold(header.jti, header["sgx-evt"], msg.content);
    channel.ack(msg); // only now: the message is held
    if (fresh) await publishAnswer({ id: header.jti, body: msg.content.toString("utf8") });
  });

  const stop = async () => {
    stopping = true;
    await connection.close().catch(() => {});
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

function stored(config) {
  const ids = Store.lines(join(config.state, "inbox-node.jsonl")).map((l) => l.id);
  process.stdout.write(`${JSON.stringify(ids)}\n`);
}

const [command, configFile, ...rest] = process.argv.slice(2);
try {
  const config = readJson(configFile);
  if (command === "stored") stored(config);
  else if (command === "run" && rest[0] === "--key" && rest[1]) await run(config, rest[1]);
  else {
    process.stderr.write("usage: node receiver.mjs run CONFIG --key KEY.pem | stored CONFIG\n");
    process.exit(2);
  }
} catch (error) {
  process.stderr.write(`error: ${error.message}\n`);
  process.exit(2);
}
