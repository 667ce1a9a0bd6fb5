#!/usr/bin/env python3
"""Mean session time per day and arm, split by whether the session starts on
a new release, and the release-start sessions by whether their first
recommendation is a release too: the measurement behind the README's
account of the learning loop's day-6 drop ("The learning loop").

    python3 scripts/release-starts.py --logs log/loop --experiment LOOP --world data/world-42

A release is a track the world added after it was generated: an id at or
past the number of tracks in the world's own tracks.jsonl (the catalog the
run serves grows by the releases; their ids follow). A session starts on a
release when its first track, the listener's own pick, is one. A session's
time is the sum of the listens after the first track, as `analysis ab`
counts it; sessions still open at the end of a day's logs are left out.
"""

import argparse
import collections
import json
import pathlib
import re
import sys


def day_folders(logs):
    """The `day-<n>` folders of `logs`, in day order."""
    folders = [p for p in pathlib.Path(logs).iterdir() if re.fullmatch(r"day-\d+", p.name)]
    if not folders:
        sys.exit(f"{logs}: no day-<n> folders (the output of `sim run --days N --log-dir`)")
    return sorted(folders, key=lambda p: int(p.name[4:]))


def day_sessions(folder, experiment, initial_tracks):
    """(arm, starts on a release, first answer a release) → [total time,
    sessions] for one day's logs (the last key None for sessions that do
    not start on a release)."""
    totals = collections.defaultdict(lambda: [0.0, 0])
    for path in sorted(folder.glob("*.jsonl")):
        open_sessions = {}
        with path.open() as f:
            for line in f:
                event = json.loads(line)
                user = event["user"]
                release = event["track"] >= initial_tracks
                if user not in open_sessions:
                    arm = event.get("experiments", {}).get(experiment)
                    open_sessions[user] = [arm, release, None, 0.0]
                else:
                    session = open_sessions[user]
                    if session[2] is None:
                        session[2] = release
                    session[3] += event["time"]
                if event["message"] == "last":
                    arm, starts, answer, time = open_sessions.pop(user)
                    if arm is not None:
                        key = (arm, starts, bool(answer) if starts else None)
                        totals[key][0] += time
                        totals[key][1] += 1
    return totals


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--logs", required=True, help="a `sim run --days N` log folder")
    parser.add_argument("--experiment", default="LOOP", help="the experiment whose arms to split by")
    parser.add_argument("--world", required=True, help="the world folder the run was played on")
    args = parser.parse_args(argv)
    with (pathlib.Path(args.world) / "tracks.jsonl").open() as f:
        initial_tracks = sum(1 for line in f if line.strip())
    print(
        "day  arm   other starts: sessions  time  |  release starts: sessions  time"
        "  |  of which answered with a release: share  time"
    )
    for folder in day_folders(args.logs):
        totals = day_sessions(folder, args.experiment, initial_tracks)
        for arm in sorted({key[0] for key in totals}):
            ot, on = totals[(arm, False, None)]
            at, an = totals[(arm, True, True)]
            bt, bn = totals[(arm, True, False)]
            rn = an + bn
            print(
                f"{folder.name[4:]:>3}  {arm:<4} {on:>21}  {ot / max(on, 1):5.2f}  |"
                f"  {rn:>24}  {(at + bt) / max(rn, 1):5.2f}  |"
                f"  {an / max(rn, 1):>40.1%}  {at / max(an, 1):5.2f}"
            )


if __name__ == "__main__":
    sys.exit(main())
