#!/usr/bin/env python3
"""Check Autobahn (kosoku) reports against the list of cases that should have run.

Usage:
    autobahn_check.py --expected CASES.txt [options] SUITE=DIR [SUITE=DIR ...]

CASES.txt lists the selected case ids, one per line. Each DIR is a kosoku
report directory. When it holds per-section index files (index-<section>.json,
written by scripts/autobahn.sh) they are merged into DIR/index.json first;
otherwise DIR/index.json is read as kosoku wrote it. An index maps
agent -> case id -> {"behavior", "behaviorClose", "remoteCloseCode",
"duration", "reportfile"}.

A case passes when its behavior is OK or INFORMATIONAL (or NON-STRICT with
--allow-non-strict) and its behaviorClose is OK or INFORMATIONAL. Everything
else fails: FAILED, UNIMPLEMENTED, ERROR (kosoku could not run the case, e.g.
connection refused), NON-STRICT by default, and every selected case that is
missing from the reports. Cases that were not selected are reported but do not
count.

Prints a table of verdict counts per suite, every failing or missing case, and
a closing "autobahn: N passed, M failed" line. Exits 1 if any case failed or
is missing, 0 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED", "ERROR"]
CLOSE_BEHAVIORS = [
    "OK",
    "INFORMATIONAL",
    "FAILED",
    "WRONG CODE",
    "UNCLEAN",
    "FAILED BY CLIENT",
]
PASS_CLOSE = {"OK", "INFORMATIONAL"}
# Report prose that says nothing beyond the verdict itself.
GENERIC_TEXT = {"Actual events match at least one expected.", "Connection was properly closed"}


def sort_key(case_id: str) -> list[int]:
    return [int(p) if p.isdigit() else 0 for p in case_id.split(".")]


def load_index(directory: Path) -> dict:
    """Return the agent -> case -> entry index of one report directory."""
    parts = sorted(directory.glob("index-*.json"))
    if parts:
        merged: dict[str, dict] = {}
        for part in parts:
            with part.open() as f:
                for agent, cases in json.load(f).items():
                    merged.setdefault(agent, {}).update(cases)
        for agent in merged:
            merged[agent] = dict(sorted(merged[agent].items(), key=lambda kv: sort_key(kv[0])))
        with (directory / "index.json").open("w") as f:
            json.dump(merged, f, indent=3, sort_keys=True)
        return merged
    index = directory / "index.json"
    if index.is_file():
        with index.open() as f:
            return json.load(f)
    return {}


def case_detail(directory: Path, entry: dict) -> str:
    """The result / resultClose prose of a case's own report, shortened."""
    try:
        with (directory / entry["reportfile"]).open() as f:
            report = json.load(f)
    except (OSError, KeyError, ValueError):
        return ""
    texts = []
    for key in ("result", "resultClose"):
        text = " ".join(str(report.get(key) or "").split())
        if text and text not in texts and text not in GENERIC_TEXT:
            texts.append(text)
    detail = " / ".join(texts)
    return detail if len(detail) <= 110 else detail[:107] + "..."


def table(title: str, columns: list[str], rows: list[tuple[str, list[object]]]) -> None:
    header = [title] + columns
    body = [[name] + [str(v) for v in values] for name, values in rows]
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    for row in [header] + body:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expected", required=True, type=Path, help="file of selected case ids")
    parser.add_argument("--agent", help="agent name the reports should carry (a mismatch is noted)")
    parser.add_argument("--allow-non-strict", action="store_true", help="count NON-STRICT as a pass")
    parser.add_argument(
        "--excluded-sections",
        default="",
        help="comma list of sections deliberately not run (noted if they show up anyway)",
    )
    parser.add_argument("suites", nargs="+", metavar="SUITE=DIR")
    args = parser.parse_args()

    expected = [line.strip() for line in args.expected.read_text().splitlines() if line.strip()]
    expected_set = set(expected)
    excluded_sections = {s.strip() for s in args.excluded_sections.split(",") if s.strip()}
    pass_behavior = {"OK", "INFORMATIONAL"} | ({"NON-STRICT"} if args.allow_non_strict else set())

    total_passed = total_failed = 0
    behavior_rows, close_rows = [], []
    seen_behaviors, seen_close = list(BEHAVIORS), list(CLOSE_BEHAVIORS)
    failures: list[str] = []
    notes: list[str] = []

    for spec in args.suites:
        name, sep, path = spec.partition("=")
        if not sep:
            parser.error(f"expected SUITE=DIR, got {spec!r}")
        directory = Path(path)
        index = load_index(directory)

        # case id -> (agent, entry); kosoku files a case under the peer's name,
        # or under host:port when the case could not even connect.
        results: dict[str, tuple[str, dict]] = {}
        for agent, cases in index.items():
            for case_id, entry in cases.items():
                if case_id in results:
                    notes.append(f"{name}: case {case_id} reported twice (agents {results[case_id][0]!r}, {agent!r})")
                    continue
                results[case_id] = (agent, entry)

        other_agents = sorted({a for a, _ in results.values()} - {args.agent}) if args.agent else []
        if other_agents:
            notes.append(
                f"{name}: reports filed under agent(s) {', '.join(map(repr, other_agents))}, "
                f"not {args.agent!r} (fuzzingclient mode names the agent after the server's "
                "Server header, or host:port without one; fuzzingserver mode after runCase's agent=)"
            )

        behavior_count: collections.Counter[str] = collections.Counter()
        close_count: collections.Counter[str] = collections.Counter()
        passed = 0
        suite_failures = []
        for case_id in expected:
            if case_id not in results:
                continue
            agent, entry = results[case_id]
            behavior, close = entry.get("behavior", "?"), entry.get("behaviorClose", "?")
            behavior_count[behavior] += 1
            close_count[close] += 1
            if behavior in pass_behavior and close in PASS_CLOSE:
                passed += 1
                continue
            if behavior == "UNIMPLEMENTED":
                # Only the 12.x/13.x cases give this verdict, when no
                # permessage-deflate was negotiated; their prose does not say so.
                detail = "permessage-deflate was not negotiated"
            else:
                detail = case_detail(directory, entry)
            suite_failures.append(
                f"  {name:<6} {case_id:<9} behavior={behavior:<13} behaviorClose={close:<16} "
                f"remoteCloseCode={entry.get('remoteCloseCode')}" + (f"  {detail}" if detail else "")
            )

        missing = [c for c in expected if c not in results]
        if missing:
            by_section: dict[str, list[str]] = collections.defaultdict(list)
            for case_id in missing:
                by_section[case_id.split(".")[0]].append(case_id)
            for section, ids in by_section.items():
                of = sum(1 for c in expected if c.split(".")[0] == section)
                shown = ", ".join(ids[:6]) + (", ..." if len(ids) > 6 else "")
                suite_failures.append(
                    f"  {name:<6} MISSING {len(ids)} of {of} selected cases of section {section}: {shown}"
                )

        unexpected = sorted((c for c in results if c not in expected_set), key=sort_key)
        if unexpected:
            sections = sorted({c.split(".")[0] for c in unexpected}, key=int)
            excluded_hit = [s for s in sections if s in excluded_sections]
            notes.append(
                f"{name}: {len(unexpected)} reported case(s) were not selected and are ignored "
                f"(sections {', '.join(sections)})"
                + (f"; sections {', '.join(excluded_hit)} should not have run at all" if excluded_hit else "")
            )

        for value in behavior_count:
            if value not in seen_behaviors:
                seen_behaviors.append(value)
        for value in close_count:
            if value not in seen_close:
                seen_close.append(value)
        failed = len(expected) - passed
        total_passed += passed
        total_failed += failed
        reported = len(expected) - len(missing)
        behavior_rows.append((name, reported, len(expected), behavior_count, failed))
        close_rows.append((name, close_count))
        failures.extend(suite_failures)

    print(f"Autobahn conformance: {len(expected)} selected cases per suite")
    print(
        f"(a case passes with behavior {'/'.join(sorted(pass_behavior))} "
        f"and behaviorClose {'/'.join(sorted(PASS_CLOSE))})"
    )
    print()
    table(
        "behavior",
        ["reported", "expected"] + seen_behaviors + ["failed+missing"],
        [(n, [r, e] + [c.get(v, 0) for v in seen_behaviors] + [f]) for n, r, e, c, f in behavior_rows],
    )
    print()
    table("behaviorClose", seen_close, [(n, [c.get(v, 0) for v in seen_close]) for n, c in close_rows])
    if notes:
        print()
        for note in notes:
            print(f"note: {note}")
    if failures:
        print()
        print("Failing or missing cases:")
        for line in failures:
            print(line)
    print()
    print(f"autobahn: {total_passed} passed, {total_failed} failed")
    return 1 if total_failed else 0


if __name__ == "__main__":
    sys.exit(main())
