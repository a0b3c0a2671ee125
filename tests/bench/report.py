#!/usr/bin/env python3
"""Turns mistore-bench's JSON output into the markdown tables of
docs/benchmarks.md: MB/s of plaintext and the ratio to memcpy of the same
buffers, per fragment size; the sum-of-stages bound of each pipeline and how
close the pipeline gets; the issue-3 targets, met or not.

    tests/bench/report.py RESULTS.json   (tests/bench/run.sh does both steps)

Rates are decimal (1 MB/s = 10^6 bytes per second). Single-thread figures use
CPU time (Google Benchmark's default), so other processes queueing for the
cores change them little; the two-thread figure uses the slower thread's CPU
time (both cores busy at once, shared caches and memory included), and its
wall-clock rate is printed beside it (meaningful on an idle machine only; the
load average is printed).
"""
import json
import re
import sys

STAGE_ORDER = [
    "memcpy", "chunking", "chunking_stream", "blake2b_keyed", "blake2b_fragments",
    "aead_seal", "aead_open", "rs_encode", "rs_encode_isal", "rs_encode_jerasure", "rs_decode_4_lost",
    "crc32c_fragments", "fragment_tags", "fragment_encode",
    "fragment_decode", "raw_jerasure_encode", "raw_aead_xchacha20poly1305", "raw_aead_aes256gcm", "raw_poly1305",
    "raw_sha256", "raw_crc32c", "pipeline_write", "pipeline_write_tagged", "pipeline_write_2threads",
    "pipeline_read",
    "pipeline_read_4_lost",
]
# What each pipeline is made of (stage, weight): per-byte costs add up.
# ENCODE stands for the backend the build uses: rs_encode_isal where ISA-L is
# built in, else rs_encode_jerasure (resolved in main()).
ENCODE = "ENCODE"
WRITE_STAGES = [("chunking", 1), ("blake2b_keyed", 1), ("aead_seal", 1), (ENCODE, 1),
                ("crc32c_fragments", 1)]
# Since manifest format 2 (issue 3) the client also tags the fragments: its
# own RS encode + Poly1305 of the 12 payloads (fragment_tags).
WRITE_TAGGED_STAGES = WRITE_STAGES + [("fragment_tags", 1)]
# All 12 present: CRC32C of 12 fragments, parity re-encoded from the data
# fragments and compared (the forgery cross-check), open, id check.
READ_STAGES = [("crc32c_fragments", 1), (ENCODE, 1), ("aead_open", 1), ("blake2b_keyed", 1)]
# 4 data fragments lost: 8 of the 12 fragments are checked, RS decodes (no
# spare fragment is left to cross-check).
READ_LOST_STAGES = [("crc32c_fragments", 8 / 12), ("rs_decode_4_lost", 1), ("aead_open", 1),
                    ("blake2b_keyed", 1)]


def load(path):
    with open(path) as f:
        doc = json.load(f)
    rates = {}  # (stage, frag) -> bytes per second
    real = {}   # (stage, frag) -> wall-clock MB/s (two-thread benchmark)
    # With --benchmark_repetitions, use the medians; else the single runs.
    medians = any(b.get("aggregate_name") == "median" for b in doc["benchmarks"])
    for b in doc["benchmarks"]:
        if medians and b.get("aggregate_name") != "median":
            continue
        if not medians and b.get("run_type", "iteration") != "iteration":
            continue
        if "bytes_per_second" not in b:
            continue
        m = re.match(r"BM_([a-z0-9_]+)/frag:(\d+)", b.get("run_name", b["name"]))
        if not m:
            continue
        rates[(m.group(1), int(m.group(2)))] = b["bytes_per_second"]
        if "real_MBps" in b:
            real[(m.group(1), int(m.group(2)))] = b["real_MBps"]
    ctx = dict(doc["context"])
    ctx["medians"] = medians
    return ctx, rates, real


def mbs(x):
    return f"{x / 1e6:,.0f}"


ENCODE_AS = "rs_encode_isal"


def bound(rates, stages, frag):
    return 1.0 / sum(w / rates[(ENCODE_AS if s == ENCODE else s, frag)] for s, w in stages)


def size_name(frag):
    return f"{frag // 1024} KiB" if frag < 1 << 20 else f"{frag >> 20} MiB"


def main():
    global ENCODE_AS
    ctx, rates, real = load(sys.argv[1])
    if not any(s == "rs_encode_isal" for s, _ in rates):
        ENCODE_AS = "rs_encode_jerasure"
    frags = sorted({f for _, f in rates})
    print(f"Run: {ctx.get('date', '?')}, {ctx.get('num_cpus', '?')} CPUs at "
          f"{ctx.get('mhz_per_cpu', '?')} MHz, load average at start "
          f"{', '.join(f'{x:.2f}' for x in ctx.get('load_avg', []))}"
          f"{'; medians of the repetitions' if ctx['medians'] else ''}.")
    print()
    head = "| benchmark | " + " | ".join(
        f"MB/s, frag {size_name(f)} (chunk {size_name(8 * f)}) | x memcpy" for f in frags) + " |"
    print(head)
    print("|---|" + "---:|---:|" * len(frags))
    for s in STAGE_ORDER:
        if not any((s, f) in rates for f in frags):
            continue
        cells = []
        for f in frags:
            r = rates.get((s, f))
            m = rates.get(("memcpy", f))
            cells.append("-" if r is None else mbs(r))
            cells.append("-" if r is None or m is None else f"{r / m:.3f}")
        print(f"| `{s}` | " + " | ".join(cells) + " |")
    print()
    print("| pipeline | frag | measured MB/s | sum-of-stages bound MB/s | measured / bound |")
    print("|---|---:|---:|---:|---:|")
    for name, stages in (("pipeline_write", WRITE_STAGES),
                         ("pipeline_write_tagged", WRITE_TAGGED_STAGES), ("pipeline_read", READ_STAGES),
                         ("pipeline_read_4_lost", READ_LOST_STAGES)):
        for f in frags:
            if (name, f) not in rates:
                continue
            b = bound(rates, stages, f)
            print(f"| `{name}` | {size_name(f)} | {mbs(rates[(name, f)])} | {mbs(b)} | "
                  f"{rates[(name, f)] / b:.0%} |")
    for f in frags:
        if ("pipeline_write_2threads", f) in rates and ("pipeline_write", f) in rates:
            two, one = rates[("pipeline_write_2threads", f)], rates[("pipeline_write", f)]
            wall = real.get(("pipeline_write_2threads", f))
            wall = f" (wall clock: {wall:,.0f})" if wall is not None else ""
            print(f"| `pipeline_write_2threads` | {size_name(f)} | {mbs(two)}{wall} | "
                  f"2 x {mbs(one)} = {mbs(2 * one)} | {two / (2 * one):.0%} |")
    print()
    print("Share of the write pipeline's per-byte cost, by stage (from the stage figures):")
    print()
    print("| frag | " + " | ".join(ENCODE_AS if s == ENCODE else s for s, _ in WRITE_STAGES) + " |")
    print("|---|" + "---:|" * len(WRITE_STAGES))
    for f in frags:
        costs = [w / rates[(ENCODE_AS if s == ENCODE else s, f)] for s, w in WRITE_STAGES]
        total = sum(costs)
        print(f"| {size_name(f)} | " + " | ".join(
            f"{c / total:.0%} ({c * 1e9:.2f} ns/B)" for c in costs) + " |")
    print()
    prod = 128 * 1024 if 128 * 1024 in frags else frags[0]
    print(f"Issue-3 targets (fragment size {size_name(prod)}, the production average chunk):")
    print()
    print("| target | wanted | measured | met |")
    print("|---|---:|---:|:---:|")

    def row(what, wanted, got, ok):
        print(f"| {what} | {wanted} | {got} | {'yes' if ok else 'no'} |")

    if ("rs_encode_jerasure", prod) in rates:
        enc = rates[("rs_encode_jerasure", prod)]
        row("RS(8,4) encode, one core, Jerasure (EncodeRegions)", "4,000 MB/s",
            mbs(enc) + " MB/s", enc >= 4e9)
    if ("rs_encode_isal", prod) in rates:
        enc = rates[("rs_encode_isal", prod)]
        row("RS(8,4) encode, one core, ISA-L (EncodeRegions)", "10,000 MB/s",
            mbs(enc) + " MB/s", enc >= 10e9)
    if ("raw_jerasure_encode", prod) in rates:
        raw = rates[("raw_jerasure_encode", prod)]
        row("RS(8,4) encode, one core (jerasure_matrix_encode alone)", "4,000 MB/s",
            mbs(raw) + " MB/s", raw >= 4e9)
    w = rates[("pipeline_write", prod)]
    row("write pipeline, one core", "450 MB/s", mbs(w) + " MB/s", w >= 450e6)
    wb = w / bound(rates, WRITE_STAGES, prod)
    row("write pipeline vs its sum-of-stages bound", ">= 90%", f"{wb:.0%}", wb >= 0.9)
    if ("pipeline_write_2threads", prod) in rates:
        w2 = rates[("pipeline_write_2threads", prod)]
        row("write pipeline, both cores", "850 MB/s", mbs(w2) + " MB/s", w2 >= 850e6)
    r = rates[("pipeline_read", prod)]
    row("read pipeline, one core", "800 MB/s", mbs(r) + " MB/s", r >= 800e6)


if __name__ == "__main__":
    main()
