"""Mapped log rows to allegation referrals and concern notifications, sending only new or changed rows."""

from __future__ import annotations

from adapters.base import Problem, Record, message_id_for
from adapters.mapped.mapping import Mapping
from adapters.outcomes import UNCHANGED
from adapters.placements import ChangeStore, Plan, Planned, child_resource, facts_digest
from broker.directory import Directory
from standard import compose as c


def plan_mapped(mapping: Mapping, sender: str, rows: list[Record], directory: Directory,
                store: ChangeStore) -> Plan:
    plan = Plan()
    sender_la = directory.participants[sender].codes.get("dfe_la") if sender in directory.participants else None
    for r in rows:
        v = r.values
        setting = directory.setting(v["setting_urn"])
        if setting is None:
            plan.hold([r.where], Problem("setting-not-in-directory", r.file, r.row, mapping.columns.get(
                "setting_urn"), "the setting is not in the directory, so the exchange cannot route the message; "
                "check the URN, or ask the operator to import the Ofsted provider list; it will be sent on a "
                "later run"))
            continue
        digest = facts_digest(*sorted(f"{k}={x}" for k, x in v.items()))
        key = f"mapped|{mapping.event}|{v.get('reference') or digest}"
        if store.digest_of(key) == digest:
            plan.unchanged += 1
            plan.settle([r.where], UNCHANGED)
            continue
        b = c.MessageBuilder(mapping.event, sender, message_id=message_id_for(sender, key, digest),
                             security=["allegation-detail"] if mapping.event == "allegation-referral" else [])
        setting_ref = b.add(c.setting(setting.urn, setting.name))
        child_ref, problem = _child(b, v, sender_la, mapping, r)
        if problem:
            plan.hold([r.where], problem)
            continue
        if mapping.event == "allegation-referral":
            lado = directory.lado_of(setting.host_la)
            if lado is None:
                plan.hold([r.where], Problem("no-lado", r.file, r.row, None, f"the directory has no LADO "
                                             f"for {setting.host_la}, the setting's host; ask the operator"))
                continue
            employer = v.get("employer") or setting.provider or sender
            role = b.add(c.staff_role(v["staff_id"], employer, setting_ref, job=v.get("job")))
            b.add(c.allegation_referral(v["reference"], role, setting_ref, lado, sender, v["date"].isoformat(),
                                        v["category"], children=[child_ref] if child_ref else [],
                                        summary=v.get("summary")), focus=True)
        else:
            b.add(c.concern(v["concern_type"], setting_ref, sender, v["date"].isoformat(), child_ref=child_ref,
                            summary=v.get("summary")), focus=True)
        plan.messages.append(Planned.built(key, digest, b.build(), file=r.file, row=r.row, rows=[r.where]))
    return plan


def _child(b: c.MessageBuilder, v: dict, sender_la: str | None, mapping: Mapping,
           r: Record) -> tuple[str | None, Problem | None]:
    if not v.get("child_id"):
        return None, None
    la = v.get("child_la") or sender_la
    if not la or v.get("child_birth_date") is None:
        return None, Problem("missing-value", r.file, r.row, mapping.columns.get("child_birth_date", "child"),
                             "a child named in the log needs a date of birth and the placing LA's code (map "
                             "child_birth_date and child_la, or send as the placing LA)")
    return b.add(child_resource(v["child_id"], la, v["child_birth_date"], v.get("child_sex"))), None
