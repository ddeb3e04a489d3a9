"""A conformance certificate checks out in a JOSE library we did not write (Node `jose`), with the operator's
published public JWK alone; an altered one does not."""

from __future__ import annotations

import json
import subprocess

from click.testing import CliRunner

from sgx.cli import cli
from tests.unit.conformance.test_messages_kit import _produce

VERIFY = """
import { compactVerify, importJWK } from "jose";
let input = "";
for await (const chunk of process.stdin) input += chunk;
const { jwk, certificates } = JSON.parse(input);
const key = await importJWK(jwk, "EdDSA");
const out = [];
for (const jws of certificates) {
  try {
    const { payload, protectedHeader } = await compactVerify(jws, key, { algorithms: ["EdDSA"] });
    out.push({ ok: true, typ: protectedHeader.typ, claims: JSON.parse(new TextDecoder().decode(payload)) });
  } catch (e) { out.push({ ok: false, error: e.code }); }
}
console.log(JSON.stringify(out));
"""


def test_jose_verifies_a_certificate_with_the_operators_public_jwk(tmp_path, foreign_node):
    runner = CliRunner()
    assert runner.invoke(cli, ["conformance", "keygen", "--out", str(tmp_path / "operator.key")]).exit_code == 0
    made = runner.invoke(cli, ["conformance", "run", "--kit", "messages", "--messages", str(_produce(tmp_path / "o")),
                               "--report-dir", str(tmp_path / "r"), "--quiet", "--certify-key",
                               str(tmp_path / "operator.key"), "--system", "CaseSys", "--system-version", "4.2"])
    assert made.exit_code == 0, made.output
    cert = (tmp_path / "r" / "certificate.jws").read_text().strip()
    header, payload, signature = cert.split(".")
    altered = ".".join([header, payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1], signature])
    jwk = json.loads((tmp_path / "operator.pub.jwk").read_text())
    done = subprocess.run(["node", "--input-type=module", "-e", VERIFY], cwd=foreign_node, capture_output=True,
                          text=True, timeout=120, input=json.dumps({"jwk": jwk, "certificates": [cert, altered]}))
    assert done.returncode == 0, done.stderr
    good, bad = json.loads(done.stdout)
    assert good["ok"] and good["typ"] == "sgx-conformance-certificate+jws"
    assert good["claims"]["system"] == {"name": "CaseSys", "version": "4.2"} and good["claims"]["kit"] == "messages"
    assert not bad["ok"]
