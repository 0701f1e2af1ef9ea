#!/usr/bin/env python3
"""The word-count benchmark: dataflow against the one-core limit.

    python3 bench/bench.py              # full: 1M lines, 3 runs each, writes docs/performance.md
    python3 bench/bench.py --quick      # seconds: small input, 1 run, checks the counts (CI)

Input: lines of 8 comma-separated words drawn from a Zipf distribution over
100,000 words, seed 42: the algorithm of ../shared/peers/flink/gen_words.py,
ported below, so every system reads the very same bytes.
"""
import argparse
import bisect
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
WORK = os.path.join(tempfile.gettempdir(), "dataflow-bench")
GAMMA, M1, M2, MASK = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, (1 << 64) - 1


def generate(lines, path, words_per_line=8, vocab=100_000, seed=42):
    """gen_words.py's pure path: SplitMix64 in counter form through cumulative 1/r weights."""
    if os.path.exists(path):
        return path
    cum, acc = [], 0.0
    for r in range(1, vocab + 1):
        acc += 1.0 / float(r)
        cum.append(acc)
    total = cum[-1]
    names = ["w%d" % r for r in range(1, vocab + 1)]
    i = 0
    tmp = path + ".tmp"
    with open(tmp, "w") as out:
        for _ in range(lines):
            row = []
            for _ in range(words_per_line):
                i += 1
                z = (seed + i * GAMMA) & MASK
                z = ((z ^ (z >> 30)) * M1) & MASK
                z = ((z ^ (z >> 27)) * M2) & MASK
                z ^= z >> 31
                u = (z >> 11) * 2.0 ** -53
                row.append(names[min(bisect.bisect_right(cum, u * total), vocab - 1)])
            out.write(",".join(row) + "\n")
    os.replace(tmp, path)
    return path


def spec(name, data, parallelism, backend, checkpoint, mode="exactly_once", sink="out: {type: blackhole, inputs: [counts]}"):
    ck = ""
    if checkpoint:
        ck = (f"checkpoint:\n  interval: {checkpoint}\n  mode: {mode}\n  incremental: true\n"
              f"  store: file://{WORK}/checkpoints\n  retain: 1\n")
    return f"""name: {name}
parallelism: {parallelism}
{ck}state: {{backend: {backend}, dir: {WORK}/state}}
sources:
  lines: {{type: file, path: "{data}", parallelism: 1}}
transforms:
  words: {{type: flat_map, inputs: [lines], split: ","}}
  pairs: {{type: map, inputs: [words], expr: '{{"word": this, "count": 1}}'}}
  counts: {{type: sum, inputs: [pairs], key: word, field: count}}
sinks:
  {sink}
"""


def timed(cmd):
    """Runs cmd under /usr/bin/time -v; returns (seconds, peak RSS in MiB, stdout, stderr)."""
    started = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    secs = time.monotonic() - started
    if p.returncode != 0:
        sys.exit(f"benchmark run failed ({' '.join(cmd)}):\n{p.stderr[-2000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    return secs, (int(rss.group(1)) / 1024 if rss else float("nan")), p.stdout, p.stderr


def checkpoint_figures(stderr):
    m = re.search(r"checkpoints: (\d+) completed.*?duration median (\d+) ms max (\d+) ms, ([\d.]+ \w+) written, longest sync part ([\d.]+) ms", stderr)
    if not m:
        return {}
    return {"checkpoints": int(m.group(1)), "ckpt_median_ms": int(m.group(2)), "ckpt_max_ms": int(m.group(3)),
            "written": m.group(4), "sync_max_ms": float(m.group(5))}


def configurations(data):
    yield "limit", [os.path.join(BIN, "wordcount-limit"), data], {}
    for backend, ck, mode in [("memory", None, None), ("memory", "1s", "exactly_once"), ("sled", "1s", "exactly_once"),
                              ("memory", "1s", "at_least_once")]:
        for p in (1, 2):
            name = f"{backend}-p{p}" + (f"-ckpt-{mode}" if ck else "")
            path = os.path.join(WORK, name + ".yaml")
            with open(path, "w") as f:
                f.write(spec("bench-" + name, data, p, backend, ck, mode or "exactly_once"))
            yield name, [os.path.join(BIN, "dataflow"), "run", path], {}


def check_counts(data):
    """The engine's final counts equal the limit program's, at parallelism 1 and 2."""
    ref = {}
    out = subprocess.run([os.path.join(BIN, "wordcount-limit"), data, "--dump"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        w, n = line.split("\t")
        ref[w] = int(n)
    for p, backend in [(1, "memory"), (2, "sled")]:
        folder = os.path.join(WORK, f"check-p{p}-out")
        subprocess.run(["rm", "-rf", folder], check=True)
        path = os.path.join(WORK, f"check-p{p}.yaml")
        with open(path, "w") as f:
            f.write(spec(f"bench-check-p{p}", data, p, backend, "200ms",
                         sink=f'out: {{type: file, inputs: [counts], path: "{folder}"}}'))
        subprocess.run([os.path.join(BIN, "dataflow"), "run", "--quiet", path], check=True)
        got = {}
        for name in os.listdir(folder):
            if name.startswith("."):
                sys.exit(f"an uncommitted file is left in {folder}: {name}")
            for line in open(os.path.join(folder, name)):
                r = json.loads(line)
                got[r["word"]] = max(got.get(r["word"], 0), r["count"])
        if got != ref:
            diff = [w for w in set(ref) | set(got) if ref.get(w) != got.get(w)][:5]
            sys.exit(f"p{p} {backend}: counts differ from the limit program's, e.g. {[(w, ref.get(w), got.get(w)) for w in diff]}")
        print(f"counts check p{p} {backend}: {len(ref)} words, {sum(ref.values())} occurrences, all equal")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small input, one run, counts checked (for CI)")
    ap.add_argument("--lines", type=int, default=None)
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "performance.md"))
    a = ap.parse_args()
    lines = a.lines or (20_000 if a.quick else 1_000_000)
    runs = a.runs or (1 if a.quick else 3)
    os.makedirs(WORK, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--bins"], cwd=ROOT, check=True)
    data = generate(lines, os.path.join(WORK, f"words_{lines}.txt"))
    words = lines * 8
    check_counts(data)
    results = {}
    for r in range(runs):  # interleaved: each run goes through every configuration
        for name, cmd, _ in configurations(data):
            secs, rss, out, err = timed(cmd)
            if name == "limit":
                secs = json.loads(out)["seconds"]
            results.setdefault(name, []).append({"secs": secs, "rss": rss, **checkpoint_figures(err)})
    limit = statistics.median(x["secs"] for x in results["limit"])
    rows = []
    for name, rs in results.items():
        med = statistics.median(x["secs"] for x in rs)
        row = {"config": name, "words_per_s": words / med, "min": words / max(x["secs"] for x in rs),
               "max": words / min(x["secs"] for x in rs), "of_limit": limit / med,
               "rss_mib": statistics.median(x["rss"] for x in rs)}
        for k in ("checkpoints", "ckpt_median_ms", "ckpt_max_ms", "written", "sync_max_ms"):
            if k in rs[-1]:
                row[k] = rs[-1][k]
        rows.append(row)
    table = ["| configuration | words/s (median) | min–max | of limit | peak RSS MiB | checkpoints | ckpt median/max ms | written (last run) | longest sync ms |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['config']} | {r['words_per_s']/1e6:.2f} M | {r['min']/1e6:.2f}–{r['max']/1e6:.2f} M | {100*r['of_limit']:.0f}% | {r['rss_mib']:.0f} | "
                     f"{r.get('checkpoints', '')} | {r.get('ckpt_median_ms', '')}/{r.get('ckpt_max_ms', '')} | {r.get('written', '')} | {r.get('sync_max_ms', '')} |")
    print("\n".join(table))
    if not a.quick:
        with open(a.out, "w") as f:
            f.write(f"# Performance\n\nMeasured {time.strftime('%Y-%m-%d')} on this machine ({os.cpu_count()} cores) with\n"
                    f"`python3 bench/bench.py` ({lines:,} lines, {words:,} words, {runs} runs each, median with min–max).\n\n")
            f.write("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
