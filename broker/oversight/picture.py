"""A picture of a replay: per setting, its signals on a time line by source, with each escalation marked."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: files only, the same on every machine

import matplotlib.dates as mdates  # noqa: E402 - after choosing the backend
import matplotlib.pyplot as plt  # noqa: E402

from broker.oversight import rules as published_rules  # noqa: E402
from broker.oversight.replay import ReplayResult, SettingResult  # noqa: E402

MAX_SETTINGS = 12
# One colour per source family (colour-blind safe, Okabe-Ito), so "several sources" can be seen.
COLOURS = {"lado": "#D55E00", "provider": "#0072B2", "health": "#009E73", "placing-authority": "#E69F00",
           "workforce": "#CC79A7", "independent-visitor": "#56B4E9", "childrens-services": "#F0E442",
           "police": "#999999", "regulator": "#000000"}
REASSURING = ("inspection-good", "inspection-outstanding")


def _chosen(result: ReplayResult) -> list[SettingResult]:
    concerning = [s for s in result.settings.values() if s.concerning]
    escalated = sorted((s for s in result.settings.values() if s.escalations and not s.concerning),
                       key=lambda s: -len(s.escalations))
    return (sorted(concerning, key=lambda s: s.urn) + escalated)[:MAX_SETTINGS]


def draw(result: ReplayResult, path: Path) -> Path:
    """Draw the concerning settings and those escalated (at most 12) into `path` (.svg or .png)."""
    rules = published_rules.published()
    source_of = {k: s.source for k, s in rules.signals.items()}
    settings = _chosen(result)
    sources = [s for s in COLOURS if s in set(rules.sources)]
    height = 1.1 + 0.9 * max(len(settings), 1)
    fig, ax = plt.subplots(figsize=(12, height))
    for row, setting in enumerate(reversed(settings)):
        for offset, source in enumerate(sources):
            points = [at for at, kind, _ in setting.signals if source_of.get(kind) == source]
            y = row + 0.35 - 0.7 * offset / max(len(sources) - 1, 1)
            ax.scatter(points, [y] * len(points), s=9, marker="|", color=COLOURS[source],
                       label=source if row == 0 else None, linewidths=1)
        # Good and outstanding judgements are drawn too (they count for nothing): the Hesley settings had them
        # while the signals above them rose.
        judged = [at for at, kind in setting.inspections if kind in REASSURING]
        ax.scatter(judged, [row - 0.42] * len(judged), s=22, marker="^", facecolors="none", edgecolors="#009E73",
                   linewidths=0.9, label="judged good or outstanding" if row == 0 else None)
        for i, escalation in enumerate(setting.escalations):
            ax.plot([escalation.fired_at] * 2, [row - 0.45, row + 0.45], color="#B00020",
                    linewidth=2.2 if i == 0 else 0.8, alpha=1 if i == 0 else 0.5)
        first = setting.first_escalation
        if first is not None:
            days = (first - setting.first_signal).days if setting.first_signal else None
            note = f"{setting.escalations[0].rule}, day {days}" if days is not None else setting.escalations[0].rule
            ax.annotate(note, (first, row + 0.45), xytext=(3, 0), textcoords="offset points", fontsize=7,
                        color="#B00020", va="top")
    ax.set_yticks(range(len(settings)), [f"{s.urn} {s.name}"[:48] for s in reversed(settings)], fontsize=8)
    ax.set_ylim(-0.6, max(len(settings), 1) - 0.4)
    ax.set_xlim(result.start, result.end)
    ax.xaxis.set_major_locator(mdates.MonthLocator(bymonth=(1, 7)))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#dddddd", linewidth=0.5)
    ax.set_title(f"{result.title}\nsignals by source; red: escalation (thick: the first), rules {result.rules_version}",
                 fontsize=9, loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(len(sources) + 1, 6), fontsize=7,
              frameon=False,
              markerscale=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # No date in the file and a fixed hash salt: the same replay draws the same bytes.
    plt.rcParams["svg.hashsalt"] = "sgx-oversight"
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, and read out by a screen reader
    metadata = {"Date": None} if path.suffix.lower() == ".svg" else {}
    fig.savefig(path, metadata=metadata, dpi=110)
    plt.close(fig)
    return path
