"""Noisy lines, big: intact messages recovered, damaged ones emitted, over many seeds.

    .venv/bin/python bench/noisy_line.py                         # 10 x 100,000 frames per link
    .venv/bin/python bench/noisy_line.py --lines 3 --frames 20000 --damage 0.1 --link mbus

The same generator and accounting as ``tests/link/test_noisy_stream.py`` (see
``tests/noisy.py``), with random seeds, more frames and optionally more
damage. "Lost" and "invented" count what the independent oracle cannot
explain by chance; "chance frames" counts the damaged windows whose
checksums matched anyway, and what they did is reported separately.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from noisy import compare, feed_in_chunks, make_pipeline, noisy_line

FIELDS = (
    "frames",
    "damaged",
    "expected",
    "recovered",
    "lost",
    "invented",
    "chance_frames",
    "lost_to_chance",
    "invented_by_chance",
    "silent",
)


def run_line(frames: int, seed: int, link: str, framing: str, damage: float) -> dict[str, int]:
    line = noisy_line(
        frames,
        seed,
        link=link,
        damage_rate=damage,
        junk_rate=damage * 0.3,
        duplicate_rate=damage * 0.2,
    )
    events = feed_in_chunks(make_pipeline(framing), line.data, random.Random(seed), 4096)
    outcome = compare(line, events)
    tolerated = line.lost_to_chance()
    invented_by_chance = min(len(outcome.invented), len(line.chance))
    return {
        "frames": line.frames,
        "damaged": line.damaged,
        "expected": outcome.expected,
        "recovered": outcome.recovered,
        "lost": len(set(outcome.lost) - tolerated),
        "invented": len(outcome.invented) - invented_by_chance,
        "chance_frames": len(line.chance),
        "lost_to_chance": len(set(outcome.lost) & tolerated),
        "invented_by_chance": invented_by_chance,
        "silent": outcome.silent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--frames", type=int, default=100_000, help="frames per line")
    parser.add_argument("--damage", type=float, default=0.01, help="share of frames damaged")
    parser.add_argument("--link", action="append", help="hdlc, mbus (default: both)")
    parser.add_argument("--framing", default=None, help="pipeline framing (default: the link)")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: random)")
    args = parser.parse_args()
    first = args.seed if args.seed is not None else random.randrange(1 << 30)
    for link in args.link or ["hdlc", "mbus"]:
        totals = dict.fromkeys(FIELDS, 0)
        started = time.perf_counter()
        for seed in range(first, first + args.lines):
            result = run_line(args.frames, seed, link, args.framing or link, args.damage)
            for key in FIELDS:
                totals[key] += result[key]
        elapsed = time.perf_counter() - started
        share = totals["recovered"] / totals["expected"] if totals["expected"] else 1.0
        print(
            f"{link} (framing {args.framing or link}), seeds {first}..{first + args.lines - 1},"
            f" damage {args.damage:.1%}: {totals['frames']:,} frames, {totals['damaged']:,}"
            f" damaged; intact messages recovered {totals['recovered']:,}/{totals['expected']:,}"
            f" ({share:.4%}); lost {totals['lost']}, invented {totals['invented']},"
            f" silent {totals['silent']}; chance frames {totals['chance_frames']}"
            f" (lost to them {totals['lost_to_chance']}, messages from them"
            f" {totals['invented_by_chance']}); {elapsed:.0f} s"
        )


if __name__ == "__main__":
    main()
