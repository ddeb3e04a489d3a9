"""Expand a scenario description (JSON) into host areas and a dated timeline of signals, deterministically.

A scenario is either `concentrated` (named settings with total counts spread over the period with a build-up, as
the Panel reported for Hesley) or `background` (a generated population of ordinary settings with rates per child
placed per year). The same seed always gives the same timeline, message ids included.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson

from broker.oversight.clocks import add_working_days, month_start
from broker.oversight.engine import LA_KIND, Area, SettingInfo
from broker.oversight.signals import Signal
from standard import terminology as term
from standard.errors import OversightError

SHIPPED = Path(__file__).parent / "scenarios"
NAMESPACE = uuid.UUID("7d0b1c4e-3a5f-5e8e-9c1a-2b6f0e4d8a11")
INCIDENTS = ("incident-death", "incident-hospital", "incident-restraint", "incident-police", "incident-missing",
             "incident-other")
ANY_SENDERS = {"allegation": ("provider", "placing", "police"), "complaint": ("placing",),
               "whistleblowing": ("regulator",), "hospital-referral": ("icb",), "missing-episode": ("police",),
               "child-protection": ("placing",), "concern-other": ("placing",)}


@dataclass
class Scenario:
    """A replayable scenario: who is watched, where, and every signal with the moment it arrives."""

    name: str
    title: str
    start: datetime
    end: datetime
    areas: dict[str, Area]
    timeline: list[tuple[datetime, Signal]]
    concerning: set[str] = field(default_factory=set)  # settings the scenario makes harmful: must escalate
    names: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> dict[str, SettingInfo]:
        return {urn: s for area in self.areas.values() for urn, s in area.settings.items()}

    def host_of(self) -> dict[str, str]:
        return {urn: host for host, area in self.areas.items() for urn in area.settings}


DATED_KINDS = frozenset({"placement-started", "placement-ended", "placement-ended-after-concern", "reg44-report",
                         "reg44-concern", "reg45-review"})


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _moment(day: date, fraction: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=int(fraction * 86400))


class _Builder:
    """Makes signals with deterministic ids and realistic senders."""

    def __init__(self, name: str, seed: int, start: date, end: date):
        self.rng = random.Random(seed)  # noqa: S311 - a seeded, repeatable simulation, not a secret
        self.name, self.seed = name, seed
        self.start, self.end = start, end
        self.days = (end - start).days
        self.timeline: list[tuple[datetime, Signal]] = []
        self._n = 0
        self.placing_las = [c.code for c in term.code_systems()["dfe-la"].concepts
                            if dict(c.properties).get("status") == "live"]

    def message_id(self) -> str:
        self._n += 1
        return f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{self.name}/{self._n}')}"

    def at(self, offset_days: float) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC) + timedelta(days=offset_days)

    def add(self, signal: Signal, arrives: datetime | None = None) -> None:
        # As the messages carry them: instants to the millisecond; placements and reports as dates alone.
        if signal.kind in DATED_KINDS:
            signal = replace(signal, at=_midnight(signal.at), occurred=signal.occurred and _midnight(signal.occurred))
        else:
            signal = replace(signal, at=_millis(signal.at), occurred=signal.occurred and _millis(signal.occurred))
        self.timeline.append((arrives or signal.at, signal))

    def sender(self, kind: str, setting: SettingInfo, host: dict) -> str:
        who = self.rng.choice(ANY_SENDERS.get(kind, ("placing",)))
        if who == "provider":
            return setting.provider or host["la"]
        if who == "police":
            return host["police"]
        if who == "regulator":
            return "ofsted"
        if who == "icb":
            return host["icb"]
        return f"la-{self.rng.choice(self.placing_las)}"

    def poisson_days(self, per_day: float) -> list[float]:
        """Arrival offsets (days from start) of a Poisson process over the scenario."""
        out, t = [], 0.0
        if per_day <= 0:
            return out
        while True:
            t += self.rng.expovariate(per_day)
            if t >= self.days:
                return out
            out.append(t)

    def allegation(self, setting: SettingInfo, host: dict, offset: float, staff: str, late_share: float) -> None:
        at = self.at(offset)
        case = f"case-{self._n + 1}"
        self.add(Signal(self.message_id(), "allegation", setting.urn, at, self.sender("allegation", setting, host),
                        staff=staff, case=case))
        late = self.rng.random() < late_share
        notified = add_working_days(at.date(), 3 if late else self.rng.choice((0, 1, 1, 2)))
        moment = _moment(notified, 0.5 if notified > at.date() else min(0.99, at.hour / 24 + 0.1))
        if moment < self.at(self.days):
            self.add(Signal(self.message_id(), "allegation-notified", setting.urn, moment, host["lado"], case=case))

    def incident(self, setting: SettingInfo, kind: str, offset: float, late_share: float) -> None:
        occurred = self.at(offset)
        late = self.rng.random() < late_share
        notified = occurred + timedelta(days=self.rng.uniform(3, 6) if late else self.rng.uniform(0, 0.9))
        if notified < self.at(self.days):
            self.add(Signal(self.message_id(), kind, setting.urn, notified, setting.provider or "", occurred=occurred))

    def routine_reports(self, setting: SettingInfo, concern_share: float, missing: dict[str, float]) -> None:
        """A Reg 44 visit every month (report sent within 10 days) and a Reg 45 review every six months."""
        month = month_start(self.start, 1) if self.start.day > 1 else self.start
        index = 0
        while month < self.end:
            nxt = month_start(month, 1)
            visit = month + timedelta(days=self.rng.randrange((nxt - month).days))
            sent = _moment(min(visit + timedelta(days=self.rng.randrange(1, 15)), nxt + timedelta(days=9)), 0.4)
            if self.rng.random() >= missing.get("reg44", 0) and sent < self.at(self.days):
                concern = self.rng.random() < concern_share
                occurred = _moment(visit, 0.5)
                report_id = self.message_id()
                self.add(Signal(report_id, "reg44-report", setting.urn, sent, setting.provider or "",
                                occurred=occurred))
                if concern:  # the same report, judging children not (or only partly) safeguarded
                    self.add(Signal(f"{report_id}#concern", "reg44-concern", setting.urn, sent,
                                    setting.provider or "", occurred=occurred))
            if index % 6 == 5:
                review = _moment(month + timedelta(days=self.rng.randrange(10)), 0.5)
                if self.rng.random() >= missing.get("reg45", 0) and review < self.at(self.days):
                    self.add(Signal(self.message_id(), "reg45-review", setting.urn, review, setting.provider or "",
                                    occurred=review))
            month, index = nxt, index + 1

    def inspections(self, settings: list[SettingInfo], spec: dict | None) -> None:
        """The regulator's full inspection of each setting once in every inspection year (April to March), its
        report published weeks later; a setting judged inadequate is inspected again within months.

        Drawn from a stream of their own (after every other signal), so adding inspections to a scenario leaves
        the rest of its timeline as it was.
        """
        if not spec:
            return
        rng = random.Random(f"{self.name}/{self.seed}/inspections")  # noqa: S311 - a repeatable simulation
        first = date(self.start.year - (1 if self.start.month < 4 else 0), 4, 1)
        for setting in settings:
            year = first
            while year < self.end:
                following = date(year.year + 1, 4, 1)
                visit = year + timedelta(days=rng.randrange((following - year).days))
                judgement = _pick(rng, spec["judgements"])
                self._inspection(rng, setting, visit, judgement, spec)
                if judgement == "inadequate":
                    again = visit + timedelta(days=rng.randint(*spec["reinspect_inadequate_days"]))
                    self._inspection(rng, setting, again, _pick(rng, spec["after_inadequate"]), spec)
                year = following

    def _inspection(self, rng: random.Random, setting: SettingInfo, visit: date, judgement: str,
                    spec: dict) -> None:
        published = _moment(visit + timedelta(days=rng.randint(*spec["publish_days"])), 0.45)
        if visit >= self.start and published < self.at(self.days):
            self.add(Signal(self.message_id(), f"inspection-{judgement}", setting.urn, published, "ofsted"))

    def placements(self, setting: SettingInfo, stay_years: float) -> None:
        """Children leave and others arrive at the setting's turnover; occupancy stays about the same."""
        for seat in range(setting.children):
            child = f"{setting.urn}-c{seat}-0"
            t, generation = 0.0, 0
            while True:
                t += self.rng.expovariate(1 / (stay_years * 365))
                if t >= self.days:
                    break
                la = f"la-{self.rng.choice(self.placing_las)}"
                self.add(Signal(self.message_id(), "placement-ended", setting.urn, self.at(t), la, child=child))
                generation += 1
                child = f"{setting.urn}-c{seat}-{generation}"
                arrive = t + self.rng.uniform(1, 20)
                if arrive < self.days:
                    self.add(Signal(self.message_id(), "placement-started", setting.urn, self.at(arrive), la,
                                    child=child))
                t = arrive


def _participants(builder: _Builder, hosts: list[dict], providers: set[str]) -> dict[str, str]:
    people = {f"la-{code}": LA_KIND for code in builder.placing_las}
    for host in hosts:
        people.update({host["la"]: LA_KIND, host["lado"]: "lado", host["icb"]: "icb", host["police"]: "police-force"})
    people["ofsted"] = "ofsted"
    people.update({p: "provider" for p in providers})
    return people


def _build_up_offsets(builder: _Builder, total: int, months: int, build: dict) -> list[float]:
    """`total` moments spread over the months with a rate rising linearly from build['from'] to build['to']."""
    weights = [build["from"] + (build["to"] - build["from"]) * m / max(months - 1, 1) for m in range(months)]
    month_of = builder.rng.choices(range(months), weights=weights, k=total)
    offsets = []
    for m in month_of:
        first = month_start(builder.start, m)
        length = (month_start(builder.start, m + 1) - first).days
        offsets.append((first - builder.start).days + builder.rng.uniform(0, length))
    return sorted(offsets)


def concentrated(spec: dict) -> Scenario:
    """The Hesley-shaped scenario: named settings, total counts, a build-up over the months."""
    start = date.fromisoformat(spec["start"])
    end = month_start(start, spec["months"])
    b = _Builder(spec["name"], spec["seed"], start, end)
    host = spec["host"]
    provider = spec["provider"]
    settings = {s["urn"]: SettingInfo(s["urn"], "childrens-home", provider, s["children"], s["name"])
                for s in spec["settings"]}
    sizes = {urn: s.children for urn, s in settings.items()}
    staff_weights = [1 / (rank + 1) ** spec["staff_skew"] for rank in range(spec["staff_per_setting"])]
    for kind, total in spec["counts"].items():
        for offset in _build_up_offsets(b, total, spec["months"], spec["build_up"]):
            setting = settings[b.rng.choices(list(sizes), weights=list(sizes.values()))[0]]
            if kind == "allegation":
                staff = f"{setting.urn}-staff-{b.rng.choices(range(len(staff_weights)), staff_weights)[0]}"
                b.allegation(setting, host, offset, staff, 0.0)
            elif kind == "incident":
                mix = spec["incident_mix"]
                b.incident(setting, b.rng.choices(list(mix), weights=list(mix.values()))[0], offset, 0.0)
            else:
                b.add(Signal(b.message_id(), kind, setting.urn, b.at(offset), b.sender(kind, setting, host)))
    for setting in settings.values():
        b.routine_reports(setting, spec["reg44_concern_share"], {})
        b.placements(setting, spec["stay_years"])
    b.inspections(list(settings.values()), spec.get("inspections"))
    area = Area(host["la"], host["lado"], settings, _participants(b, [host], {provider}))
    b.timeline.sort(key=lambda item: item[0])
    return Scenario(spec["name"], spec["title"], b.at(0), b.at(b.days), {host["la"]: area}, b.timeline,
                    set(settings), {urn: s.name for urn, s in settings.items()})


def _pick(rng: random.Random, table: dict[str, float]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def background(spec: dict, types: list[dict]) -> Scenario:
    """A generated population of ordinary settings, spread over host authorities, with their providers."""
    start = date.fromisoformat(spec["start"])
    end = month_start(start, spec["months"])
    b = _Builder(spec["name"], spec["seed"], start, end)
    host_codes = [c for c in b.placing_las][: spec["hosts"]]
    hosts = [{"la": f"la-{c}", "lado": f"lado-{c}", "icb": f"icb-{c}", "police": f"police-{c}"} for c in host_codes]
    shares = {t["id"]: t["share"] for t in types}
    by_id = {t["id"]: t for t in types}
    per_host: dict[str, dict[str, SettingInfo]] = {h["la"]: {} for h in hosts}
    providers: set[str] = set()
    kind_of: dict[str, dict] = {}
    serial = 0
    for host in hosts:
        count = spec["settings"] // len(hosts) + (1 if hosts.index(host) < spec["settings"] % len(hosts) else 0)
        placed = 0
        while placed < count:
            # Providers in an area run one home (most) up to eight: pooled rules must not flag a group for its size.
            group = min(b.rng.choice((1, 1, 1, 1, 2, 2, 3, 4, 6, 8)), count - placed)
            provider = f"provider-{host['la'][3:]}-{serial}"
            providers.add(provider)
            for _ in range(group):
                serial += 1
                kind = by_id[_pick(b.rng, shares)]
                urn = f"SC{800000 + serial:06d}"
                children = int(_pick(b.rng, kind["places"]))
                setting = SettingInfo(urn, kind["type"], provider, children, f"{kind['title']} {serial}")
                per_host[host["la"]][urn] = setting
                kind_of[urn] = kind
                placed += 1
    host_by_la = {h["la"]: h for h in hosts}
    for la, settings in per_host.items():
        host = host_by_la[la]
        for setting in settings.values():
            kind = kind_of[setting.urn]
            risk = b.rng.gammavariate(spec["heterogeneity_shape"], 1 / spec["heterogeneity_shape"])
            rates = {k: v * setting.children * risk / 365 for k, v in kind["per_child_year"].items()}
            rates.update({k: v * risk / 365 for k, v in kind["per_setting_year"].items()})
            staff_pool = max(8, setting.children * 3)
            for signal_kind, per_day in rates.items():
                for offset in b.poisson_days(per_day):
                    if signal_kind == "allegation":
                        b.allegation(setting, host, offset, f"{setting.urn}-staff-{b.rng.randrange(staff_pool)}",
                                     spec["late_share"]["lado"])
                    elif signal_kind in INCIDENTS:
                        b.incident(setting, signal_kind, offset, spec["late_share"]["incident"])
                    elif signal_kind == "placement-ended-after-concern":
                        b.add(Signal(b.message_id(), signal_kind, setting.urn, b.at(offset),
                                     b.sender(signal_kind, setting, host)))
                    else:
                        b.add(Signal(b.message_id(), signal_kind, setting.urn, b.at(offset),
                                     b.sender(signal_kind, setting, host)))
            b.routine_reports(setting, kind["reg44_concern_share"], spec["missing_reports"])
            b.placements(setting, kind["stay_years"])
    b.inspections([s for settings in per_host.values() for s in settings.values()], spec.get("inspections"))
    people = _participants(b, hosts, providers)
    areas = {la: Area(la, host_by_la[la]["lado"], settings, people) for la, settings in per_host.items()}
    b.timeline.sort(key=lambda item: item[0])
    names = {urn: s.name for settings in per_host.values() for urn, s in settings.items()}
    return Scenario(spec["name"], spec["title"], b.at(0), b.at(b.days), areas, b.timeline, set(), names)


def _read(path: Path) -> dict:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        shipped = ", ".join(sorted(p.stem for p in SHIPPED.glob("*.json") if p.stem != "ordinary-settings"))
        raise OversightError(f"{path}: no such scenario; give a scenario file or one of: {shipped}") from None
    except orjson.JSONDecodeError as exc:
        raise OversightError(f"{path}: not JSON ({exc.args[0].split(':')[0]}); check the file") from None


def load(name_or_path: str, *, seed: int | None = None, start: date | None = None,
         months: int | None = None) -> Scenario:
    """A shipped scenario by name (hesley, population, national) or a scenario file; `seed`, `start` and `months`
    override its own (to replay one scenario inside another's period)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SHIPPED / f"{name_or_path}.json"
    spec = _read(path)
    if not isinstance(spec, dict):
        raise OversightError(f"{path}: a scenario is a JSON object; see the shipped scenarios for the form")
    if seed is not None:
        spec["seed"] = seed
    if start is not None:
        spec["start"] = start.isoformat()
    if months is not None:
        spec["months"] = months
    kind = spec.get("kind")
    try:
        if kind == "concentrated":
            return concentrated(spec)
        if kind == "background":
            types = _read(path.parent / spec["types"])["types"]
            return background(spec, types)
    except KeyError as exc:
        raise OversightError(f"{path}: the scenario has no {exc}; see the shipped scenarios for the form") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise OversightError(f"{path}: a value of the scenario cannot be used ({exc}); see the shipped scenarios "
                             "for the form") from None
    raise OversightError(f"{path}: kind must be 'concentrated' or 'background', not {kind!r}")


def combine(*scenarios: Scenario, name: str = "combined") -> Scenario:
    """Several scenarios replayed together (e.g. Hesley inside a population): one timeline, areas merged."""
    areas: dict[str, Area] = {}
    for s in scenarios:
        for la, area in s.areas.items():
            if la in areas:
                merged = {**areas[la].settings, **area.settings}
                areas[la] = Area(la, area.host_lado, merged, {**areas[la].participants, **area.participants})
            else:
                areas[la] = area
    timeline = sorted((item for s in scenarios for item in s.timeline), key=lambda item: item[0])
    return Scenario(name, " + ".join(s.title for s in scenarios), min(s.start for s in scenarios),
                    max(s.end for s in scenarios), areas, timeline,
                    set().union(*(s.concerning for s in scenarios)),
                    {k: v for s in scenarios for k, v in s.names.items()})

