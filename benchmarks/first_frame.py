"""Time to the app's first frame, from a cold interpreter, and whether torch had been imported by then.

Each run is a fresh process: the clock starts before textual is imported and stops when the app receives
Ready (Textual sends it once the first frame has been drawn). The app is run headless at the given size.
Last line: `first_frame_s=X torch_before_first_frame=False`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import time
t0 = time.perf_counter()
import sys, json
from initlab.tui.app import InitlabApp

class Timed(InitlabApp):
    def on_ready(self):
        self.first = (time.perf_counter() - t0, "torch" in sys.modules)
        self.exit()

app = Timed()
app.run(headless=True, size=({w}, {h}))
print(json.dumps({{"seconds": app.first[0], "torch": app.first[1]}}))
"""


def one(width: int, height: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD.format(w=width, h=height)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--size", default="120x40", help="terminal size, WxH")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    runs = [one(w, h) for _ in range(args.runs)]
    secs = [r["seconds"] for r in runs]
    for i, r in enumerate(runs, 1):
        print(f"run {i}: first frame after {r['seconds']:.3f} s, torch imported: {r['torch']}")
    print(f"median {statistics.median(secs):.3f} s, min {min(secs):.3f} s, max {max(secs):.3f} s at {w}x{h}")
    print(f"first_frame_s={statistics.median(secs):.3f} torch_before_first_frame={any(r['torch'] for r in runs)}")


if __name__ == "__main__":
    main()
