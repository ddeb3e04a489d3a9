"""Validator throughput on typical ~5 KB messages: the router's validation (the hot path) and full validation.

Every message is distinct (its own child, dates, ids); settings and providers come from a pool
of 40, as they do in real traffic. Run: python bench/bench_validator.py [--messages N] [--write]

Since one verdict (the hot path refuses exactly what full validation refuses) the router's figure includes the
fhir layer; the hot path as it was before it ("before") is measured beside it for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime

import orjson
from results import add_rows

from standard import catalogue as cat
from standard import compose as c
from standard.generate.examples import synthetic_nhs_number
from standard.validator import FULL, HOT_PATH, Validator

HEADER = ("| date | messages | mean size | router msg/s | router normalised | before (no fhir layer) msg/s "
          "| full msg/s | naive Bundle.model_validate/s | full normalised | same verdicts |")
BEFORE = ("parse", "schema", "profile", "business")  # the hot path before one verdict


def typical_message(i: int) -> bytes:
    """A placement-started message of about 5 KB with a Provenance entry, unique per i."""
    b = c.MessageBuilder("placement-started", "la-886", moment=datetime(2026, 3, 2, tzinfo=UTC))
    child = b.add(c.child(f"C{i:07d}", "886", f"20{10 + i % 8}-0{1 + i % 9}-1{i % 9}", "female" if i % 2 else "male",
                          nhs_number=synthetic_nhs_number(i), pseudonym=uuid.uuid4().hex))
    episode = b.add(c.looked_after_episode(child, "la-886", ["C2", "C1", "V2"][i % 3], "2025-09-01"))
    urn = f"SC9{i % 40:05d}"
    provider = b.add(c.organization(f"Provider {i % 40} Ltd", {cat.OFSTED_URN: f"SC8{i % 40:05d}"}))
    setting = b.add(c.setting(urn, f"Setting {i % 40}", provider_ref=provider))
    encounter = c.placement(child, episode, setting, "K2", f"2026-0{1 + i % 9}-0{1 + i % 9}",
                            provider_type="PR4", provider_ref=provider)
    encounter["text"] = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Placement '
                         f"{i} in a children's home (K2), private provision (PR4), started on the date shown; "
                         "the child is looked after under a full care order. Planned duration: long term. Care "
                         "plan reviewed at the first statutory review; health assessment requested from the host "
                         "ICB; education placement confirmed with the virtual school of the placing authority. "
                         "Contact arrangements as in the care plan.</p></div>"}
    placement = b.add(encounter, focus=True)
    b.add({"resourceType": "Provenance", "target": [{"reference": placement}, {"reference": episode}],
           "recorded": "2026-03-02T09:30:00.000Z",
           "activity": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                    "code": "CREATE", "display": "create"}]},
           "agent": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                           "code": "author", "display": "Author"}]},
                      "who": {"identifier": {"system": cat.PARTICIPANT_ID, "value": "la-886"},
                              "display": "Placing authority case management system"}}]})
    return orjson.dumps(b.build())


def rate(check, corpus, seconds: float) -> float:
    """Items per second over whole passes of the corpus, for at least `seconds`."""
    done, start = 0, time.perf_counter()
    while True:
        for item in corpus:
            if check(item) is False:
                raise SystemExit("a benchmark message is invalid: fix the generator")
        done += len(corpus)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


# Reference workloads and their rates in the design baseline (PERF-BASELINE.md), measured in the same run so
# that figures can be normalised for the machine's drift.
BASELINE_NAIVE_FHIR = 700.0  # fhir.resources R4B Bundle.model_validate, typical 5 KB message
BASELINE_ORJSON_LOADS = 51_000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="add the figures to their table in bench/RESULTS.md")
    args = parser.parse_args()
    corpus = [typical_message(i) for i in range(args.messages)]
    parsed = [orjson.loads(m) for m in corpus]
    size = statistics.mean(len(m) for m in corpus)
    hot, full, before = Validator(HOT_PATH), Validator(FULL), Validator(BEFORE)
    full.is_valid(corpus[0])  # import the FHIR models and build the fast schema outside the timing
    same = all(hot.is_valid(m) == full.is_valid(m) for m in corpus[:500])
    from fhir.resources.R4B.bundle import Bundle

    rows = {"hot": [], "before": [], "full": [], "naive": [], "loads": []}
    for _ in range(args.rounds):  # interleaved, so drift hits every workload alike
        rows["loads"].append(rate(orjson.loads, corpus, args.seconds / 3))
        rows["hot"].append(rate(hot.is_valid, corpus, args.seconds))
        rows["before"].append(rate(before.is_valid, corpus, args.seconds / 2))
        rows["naive"].append(rate(Bundle.model_validate, parsed[:300], args.seconds))
        rows["full"].append(rate(full.is_valid, corpus, args.seconds))
    med = {k: statistics.median(v) for k, v in rows.items()}
    full_ratio = statistics.median(f / n for f, n in zip(rows["full"], rows["naive"], strict=True))
    hot_ratio = statistics.median(h / r for h, r in zip(rows["hot"], rows["loads"], strict=True))
    line = (f"| {datetime.now(UTC):%Y-%m-%d} | {args.messages} | {size:,.0f} B "
            f"| {med['hot']:,.0f} | {hot_ratio * BASELINE_ORJSON_LOADS:,.0f} | {med['before']:,.0f} "
            f"| {med['full']:,.0f} | {med['naive']:,.0f} | {full_ratio * BASELINE_NAIVE_FHIR:,.0f} "
            f"| {'yes' if same else 'NO'} |")
    print(HEADER)
    print(line)
    for k, v in rows.items():
        print(f"{k}: {[round(x) for x in v]}")
    if args.write:
        add_rows(HEADER, [line])


if __name__ == "__main__":
    main()
