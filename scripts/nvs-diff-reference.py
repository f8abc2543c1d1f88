#!/usr/bin/env python3
"""Differential test of `usmp-psk nvs generate|encrypt` against Espressif's
nvs_partition_gen.py: random CSVs (every integer type at its limits, strings
up to the length limit with non-ASCII and CSV quoting, hex2bin, base64, file
rows, blob_fill/blob_sz_fill, several namespaces, multi-page blobs), random
sizes, versions 1 and 2, and 1 in 5 encrypted with a random keys partition.

For each case both tools run in a scratch directory. The script fails when
the reference writes an image and ours writes a different one, or refuses the
input, or when ours writes an image for an input the reference refuses.
Inputs both refuse are counted, not compared (the reference's messages differ
by design; docs/nvs.md lists where it is wrong and we refuse on purpose).

Usage:
  NVS_PARTITION_GEN=/path/to/nvs_partition_gen.py \\
    scripts/nvs-diff-reference.py [--seed N] [--cases N] [--bin usmp-psk] [--keep DIR]

The reference is not part of this repository: docs/factory.md says how to get
version 0.2.0. Without --bin the script builds ./cmd/usmp-psk first.
"""
import argparse
import base64
import os
import random
import shutil
import string
import struct
import subprocess
import sys
import tempfile
import zlib

INTS = {"u8": (0, 255), "i8": (-128, 127), "u16": (0, 65535), "i16": (-32768, 32767),
        "u32": (0, 2**32 - 1), "i32": (-2**31, 2**31 - 1),
        "u64": (0, 2**64 - 1), "i64": (-2**63, 2**63 - 1)}
SIZES = ["0x3000", "0x4000", "0x6000", "0x10000", "0x20000", "0x40000", "0x40000", "24576"]


def name(r, most=15):
    n = min(most, r.choice([1, 1, 2, 5, 8, 15, 15]))
    return "".join(r.choice(string.ascii_letters + string.digits + "_") for _ in range(n))


def quote(s):
    if any(c in s for c in ',"\n') or s != s.strip():
        return '"' + s.replace('"', '""') + '"'
    return s


def text(r, n):
    alphabet = string.ascii_letters + string.digits + " ,.;\"'-_éü"
    return "".join(r.choice(alphabet) for _ in range(n))


def int_text(r, v):
    # Forms Python's int() takes: a sign, leading zeros, spaces, underscores.
    form = r.random()
    if form < 0.1 and v >= 0:
        return "+" + str(v)
    if form < 0.2 and v >= 0:
        return "00" + str(v)
    if form < 0.3:
        return " " + str(v) + " "
    return str(v)


def make_csv(r, d, ver):
    lines = []
    if r.random() < 0.3:
        lines.append("# a comment, with a comma")
    lines.append("key,type,encoding,value")
    files = 0
    for ns in range(r.choice([1, 1, 2, 3])):
        lines.append(f"{name(r, 12)}n{ns},namespace,,")
        used = set()
        count = r.choice([1, 3, 10, 40, 130]) if r.random() < 0.5 else r.choice([1, 2, 5, 12])
        for _ in range(count):
            k = name(r)
            while k in used:
                k = name(r)
            used.add(k)
            t = r.random()
            if t < 0.4:
                enc = r.choice(list(INTS))
                lo, hi = INTS[enc]
                v = r.choice([lo, hi, 0, r.randint(lo, hi)])
                lines.append(f"{k},data,{enc},{quote(int_text(r, v))}")
            elif t < 0.6:
                limit = 1983 if ver == "1" else 3967
                v = text(r, r.choice([0, 1, 5, 30, 31, 32, 33, 100, 500, 1000, 1983, 2000, 3967]))
                while len(v.encode()) > limit:
                    v = v[:-1]
                lines.append(f"{k},data,string,{quote(v)}")
            elif t < 0.75:
                n = r.choice([1, 2, 16, 31, 32, 33, 64, 100, 500, 1984, 2000, 4000, 4100, 6000])
                n = min(n, 1984) if ver == "1" else n
                lines.append(f"{k},data,hex2bin,{r.randbytes(n).hex()}")
            elif t < 0.85:
                n = r.choice([1, 2, 3, 32, 100, 700, 1488, 1985])
                n = min(n, 1488) if ver == "1" else n
                lines.append(f"{k},data,base64,{base64.b64encode(r.randbytes(n)).decode()}")
            elif t < 0.92:
                n = r.choice([1, 10, 300, 1984, 3000, 9000])
                n = min(n, 1984) if ver == "1" else n
                fn = f"f{files}.bin"
                files += 1
                with open(os.path.join(d, fn), "wb") as f:
                    f.write(r.randbytes(n))
                lines.append(f"{k},file,binary,{fn}")
            else:
                n = r.choice([1, 4, 32, 64])
                fill = r.choice(["blob_fill", "blob_sz_fill"])
                v = text(r, r.randint(0, n)).replace(",", "").replace('"', "").strip()
                lines.append(f"{k},data,{fill}({n + r.choice([0, 3, 20])};0x{r.randint(0, 255):02x}),{v}")
    with open(os.path.join(d, "in.csv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def keys_partition(r):
    key = r.randbytes(64)
    return key + struct.pack("<I", zlib.crc32(key, 0xFFFFFFFF) & 0xFFFFFFFF) + b"\xff" * (4096 - 68)


def run(argv, cwd):
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--bin", help="the usmp-psk binary (default: build ./cmd/usmp-psk)")
    ap.add_argument("--keep", help="keep the scratch directories of failing cases here")
    args = ap.parse_args()
    ref = os.environ.get("NVS_PARTITION_GEN")
    if not ref or not os.path.isfile(ref):
        sys.exit("nvs-diff-reference: set NVS_PARTITION_GEN to Espressif's nvs_partition_gen.py (docs/factory.md)")
    ref = os.path.abspath(ref)
    py = os.environ.get("PYTHON", sys.executable)
    scratch = tempfile.mkdtemp(prefix="nvs-diff-")
    try:
        ours = os.path.abspath(args.bin) if args.bin else os.path.join(scratch, "usmp-psk")
        if not args.bin:
            root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
            subprocess.run(["go", "build", "-o", ours, "./cmd/usmp-psk"], cwd=root, check=True)
        stats = {"identical": 0, "both refused": 0}
        failures = []
        for i in range(args.cases):
            r = random.Random(args.seed * 1_000_003 + i)
            d = os.path.join(scratch, f"case{i}")
            os.makedirs(d)
            size, ver = r.choice(SIZES), r.choice(["1", "2", "2"])
            make_csv(r, d, ver)
            argv = ["in.csv", "out.bin", size, "--version", ver]
            if r.random() < 0.2:
                with open(os.path.join(d, "k.bin"), "wb") as f:
                    f.write(keys_partition(r))
                argv = ["encrypt"] + argv + ["--inputkey", "k.bin"]
            else:
                argv = ["generate"] + argv
            rc, out = run([py, ref] + argv, d)
            want = None
            if rc == 0 and "Created NVS binary" in out and os.path.exists(os.path.join(d, "out.bin")):
                with open(os.path.join(d, "out.bin"), "rb") as f:
                    want = f.read()
            if os.path.exists(os.path.join(d, "out.bin")):
                os.rename(os.path.join(d, "out.bin"), os.path.join(d, "ref.bin"))
            rc2, out2 = run([ours, "nvs"] + argv, d)
            got = None
            if rc2 == 0:
                with open(os.path.join(d, "out.bin"), "rb") as f:
                    got = f.read()
            problem = None
            if want is not None and got == want:
                stats["identical"] += 1
            elif want is None and got is None:
                stats["both refused"] += 1
            elif want is None:
                problem = "the reference refused, usmp-psk wrote an image"
            elif got is None:
                problem = f"usmp-psk refused (exit {rc2}): " + (out2.strip().splitlines() or [""])[0]
            else:
                problem = "images differ"
            if problem:
                failures.append(f"case {i} ({' '.join(argv)}): {problem}")
                if args.keep:
                    shutil.copytree(d, os.path.join(args.keep, f"seed{args.seed}-case{i}"), dirs_exist_ok=True)
            shutil.rmtree(d)
        print(f"nvs-diff-reference: seed {args.seed}, {args.cases} cases: "
              f"{stats['identical']} byte-identical, {stats['both refused']} refused by both, {len(failures)} failed")
        for f in failures:
            print("  " + f)
        sys.exit(1 if failures else 0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
