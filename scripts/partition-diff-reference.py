#!/usr/bin/env python3
"""Differential test of `usmp-psk partition show` against ESP-IDF's
gen_esp32part.py: random partition tables in ESP-IDF's CSV dialect, and
damaged copies of the binaries the reference writes.

The CSVs mix what real tables hold with what they should not: comments,
blank lines, CRLF, spaces and tabs around fields, missing trailing fields,
extra fields; names up to and past 16 bytes, some non-ASCII; types and
subtypes as names in any case (app/data; factory, ota_N, test, tee_N; nvs,
nvs_keys, phy, ota, coredump, efuse, undefined, fat, spiffs, littlefs,
esphttpd, tee_ota, …) or as numbers (custom types 0x40-0xFE); offsets given
or left for the generator to compute; sizes in decimal, 0x, 0o, 0b, with
'_', with a K or M suffix, or negative ("ends at"); the encrypted and
readonly flags. About half the tables carry a fault: overlaps, misaligned
offsets or app sizes, offsets below the table, duplicate names, unknown
types, subtypes or flags, empty fields, bad numbers, otadata of the wrong
size or twice, read-only otadata/coredump/small NVS, too many partitions,
sizes past 4 GiB, $VARIABLES, a BOM, unusual whitespace.

For each CSV the reference runs (CSV -> BIN, default options: table at
0x8000, MD5 record on) and so does `usmp-psk partition show --json`, on the
CSV and on the reference's binary. The script reads the reference's binary
itself (32-byte entries with magic AA 50, the MD5 record EB EB, the 0xFF end
marker) and requires, when the reference accepts the table, that our tool
accepts it too and reports every partition's name, type, subtype, offset,
size and flags the same, from the CSV and from the binary. When the
reference refuses a table (or crashes on it), our tool must refuse it too,
with exit code 2. Valid binaries are then damaged (bit flips with and
without a fixed-up MD5 record, fields set to bad values, truncation, the
MD5 record dropped, an entry after it) and fed to both: the reference's
bin -> csv direction and our tool must accept and refuse the same ones, and
agree on the content when both accept. Our tool must never exit with
anything but 0 or 2.

Some differences are deliberate and documented in docs/partitions.md
("Where usmp-psk differs from gen_esp32part.py"); cases that show one of
them are counted under its name, not as failures. Everything else is a
discrepancy: the script prints each one and exits 1.

Usage:
  GEN_ESP32PART=/path/to/gen_esp32part.py \\
    scripts/partition-diff-reference.py [--seed N] [--cases N] [--bin usmp-psk]
                                        [--keep DIR] [--jobs N]

The reference is Espressif's code and is not part of this repository:
docs/partitions.md says which version was used and where to get it. Without
--bin the script builds ./cmd/usmp-psk into a temporary directory first.
--keep DIR keeps every discrepancy's inputs and outputs in DIR/NAME/.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import re
import shutil
import string
import struct
import subprocess
import sys
import tempfile

TABLE_END = 0x9000  # default table at 0x8000, one 4 KiB sector
MAX_LENGTH = 0xC00
ENV = {"PT_NVS_SIZE": "0x6000", "PT_APP_OFFSET": "0x10000"}

# (type keyword or None, type value, subtype keyword or None, subtype value)
APP_SUBTYPES = [("factory", 0x00), ("test", 0x20)] + \
    [("ota_%d" % i, 0x10 + i) for i in range(16)] + [("tee_0", 0x30), ("tee_1", 0x31)]
DATA_SUBTYPES = [("ota", 0x00), ("phy", 0x01), ("nvs", 0x02), ("coredump", 0x03),
                 ("nvs_keys", 0x04), ("efuse", 0x05), ("undefined", 0x06),
                 ("esphttpd", 0x80), ("fat", 0x81), ("spiffs", 0x82), ("littlefs", 0x83),
                 ("tee_ota", 0x90), ("tee_sec_stg", 0x91)]
NAMES = ["nvs", "otadata", "phy_init", "factory", "ota_0", "ota_1", "coredump", "storage",
         "nvs_keys", "fctry", "spiffs", "fat", "efuse_em", "cfg", "test", "app2", "log",
         "ro_cfg", "sec_cert", "my nvs", "data", "model", "www"]


# ---------------------------------------------------------------- numbers

def fmt_num(r, v):
    """v in one of the forms gen_esp32part's parse_int reads."""
    forms = ["hex", "hex", "hex", "dec"]
    if v % (1 << 20) == 0 and v:
        forms += ["M", "M", "m"]
    if v % 1024 == 0 and v:
        forms += ["K", "K", "k", "hexK"]
    forms += ["HEX", "oct", "bin", "under", "plus", "spaceK"]
    f = r.choice(forms)
    if f == "hex":
        return "0x%x" % v
    if f == "HEX":
        return r.choice(["0X%X", "0x%X"]) % v
    if f == "dec":
        return str(v)
    if f == "M":
        return "%dM" % (v >> 20)
    if f == "m":
        return "%dm" % (v >> 20)
    if f == "K":
        return "%dK" % (v >> 10)
    if f == "k":
        return "%dk" % (v >> 10)
    if f == "hexK":
        return "0x%xK" % (v >> 10)
    if f == "oct":
        return "0o%o" % v
    if f == "bin":
        return "0b" + format(v, "b") if v < 1 << 20 else "0x%x" % v
    if f == "under":
        return "{:_}".format(v) if r.random() < 0.5 else "0x{:_x}".format(v)
    if f == "plus":
        return "+%d" % v
    if f == "spaceK":
        return "%d K" % (v >> 10) if v % 1024 == 0 else "0x%x" % v
    raise AssertionError(f)


BAD_NUMBERS = ["010", "0x", "12KB", "1G", "1.5M", "K", "0xzz", "1 000", "0_", "1__0",
               "4096.0", "0x1000 0x2000", "٣٢K", "1KK", "0x10kK", "--4096", "0xfffffffffK"]


def fmt_kw(r, name):
    c = r.random()
    if c < 0.1:
        return name.upper()
    if c < 0.15:
        return name.capitalize()
    return name


def fmt_byte(r, v):
    return r.choice(["%d", "0x%x", "0x%02x", "0X%X"]) % v


# ---------------------------------------------------------------- tables

class Row:
    def __init__(self, name, typ, sub, size, flags=()):
        self.name, self.typ, self.sub, self.size, self.flags = name, typ, sub, size, list(flags)
        self.offset = None      # None: left out of the CSV
        self.fields = None      # the text of each field, once formatted
        self.place = None       # where gen_esp32part will put it


def random_name(r, used):
    c = r.random()
    if c < 0.55:
        n = r.choice(NAMES)
    elif c < 0.85:
        n = "".join(r.choice(string.ascii_letters + string.digits + "_-.")
                    for _ in range(r.randint(1, 16)))
    elif c < 0.92:
        n = "".join(r.choice(string.ascii_lowercase) for _ in range(16))
    else:
        n = r.choice(["näme", "nvs_ü", "数据", "ota-é", "cfg\u00a0x"])
    if n in used:
        n = (n + str(len(used)))[-16:] if len(n) < 15 else n[:14] + str(len(used) % 100)
    return n


def random_row(r, used):
    c = r.random()
    name = random_name(r, used)
    if c < 0.35:
        kw, sub = r.choice(DATA_SUBTYPES[:7] * 2 + DATA_SUBTYPES)
        size = {"ota": 0x2000, "tee_ota": 0x2000, "phy": 0x1000, "nvs_keys": 0x1000,
                "efuse": 0x2000}.get(kw) or r.choice(
            [0x3000, 0x4000, 0x5000, 0x6000, 0x10000, 0x20000, 0x100000, 0x1234, 0x40000])
        row = Row(name, ("data", 1), (kw, sub), size)
        if kw == "nvs_keys" and r.random() < 0.7:
            row.flags.append("encrypted")
        if kw == "nvs" and r.random() < 0.15:
            row.size = r.choice([0x1000, 0x2000])
            row.flags.append("readonly")
        return row
    if c < 0.7:
        kw, sub = r.choice(APP_SUBTYPES[:4] * 3 + APP_SUBTYPES)
        size = r.choice([0x100000, 0x100000, 0x180000, 0x1e0000, 0x10000, 1500 << 10, 0x3000])
        row = Row(name, ("app", 0), (kw, sub), size)
        if r.random() < 0.1:
            row.flags.append("encrypted")
        return row
    if c < 0.9:
        t = r.randint(0x40, 0xFE)
        s = r.randint(0, 0xFE)
        return Row(name, (None, t), (None, s), r.choice([0x1000, 0x2000, 0x10000, 0x1800, 0x123]))
    t = r.randint(4, 0x3F)
    return Row(name, (None, t), (None, r.randint(0, 0xFE)), r.choice([0x1000, 0x8000]))


def layout(rows, r):
    """Give rows offsets the way gen_esp32part would lay them out, some
    left out and some written with a gap."""
    last = TABLE_END
    for row in rows:
        align = 0x10000 if row.typ[1] == 0 else 0x1000
        start = (last + align - 1) // align * align
        if r.random() < 0.45:
            row.offset = None
            row.place = start
        else:
            gap = r.choice([0, 0, 0, align, 4 * align])
            row.offset = start + gap
            row.place = row.offset
        last = row.place + row.size


def place_new(rows):
    """Give rows that faults inserted a place after the row before them."""
    last = TABLE_END
    for row in rows:
        if row.place is None:
            row.place = last
        if isinstance(row.size, int) and isinstance(row.place, int):
            last = row.place + row.size


def format_row(r, row, spaces):
    def sp(s):
        if not spaces:
            return s
        return r.choice(["", " ", "  ", "\t"]) + s + r.choice(["", " ", " \t"])

    tkw, tv = row.typ
    skw, sv = row.sub
    typ = fmt_kw(r, tkw) if tkw and r.random() < 0.85 else fmt_byte(r, tv)
    if skw is None or r.random() < 0.15:
        sub = fmt_byte(r, sv)
    else:
        sub = fmt_kw(r, skw)
    if tkw == "data" and skw == "undefined" and r.random() < 0.5:
        sub = ""
    off = "" if row.offset is None else fmt_num(r, row.offset)
    if row.offset is not None and r.random() < 0.05:
        size = "-" + fmt_num(r, row.offset + row.size)
    else:
        size = fmt_num(r, row.size)
    if len(row.flags) < 2 and row.flags and r.random() < 0.1:
        row.flags.append(r.choice(["readonly", "encrypted"]))
    flags = r.choice([":", ":", ":", " : ", ": ", " :"]).join(row.flags)
    fields = [row.name, typ, sub, off, size, flags]
    if not flags and r.random() < 0.5:
        fields = fields[:5]
    elif r.random() < 0.05:
        fields.append("extra")
    row.fields = [sp(f) for f in fields]


# Faults: each takes (r, rows, meta) and damages the table. meta["tags"]
# records what was done, for the report.
def numeric(row):
    """Whether an earlier fault left row's numbers as numbers."""
    return isinstance(row.size, int) and isinstance(row.place, int) and \
        (row.offset is None or isinstance(row.offset, int)) and row.typ[1] is not None


def f_overlap(r, rows, meta):
    if not all(numeric(x) for x in rows):
        return
    i = r.randrange(1, len(rows)) if len(rows) > 1 else 0
    prev = rows[i - 1] if i else None
    if prev is None:
        rows[i].offset = r.choice([0x8000, 0x0, 0x8800])
    else:
        rows[i].offset = prev.place + max(0, prev.size - r.choice([0x1000, 1, prev.size]))
    meta["tags"].append("overlap")


def f_misalign(r, rows, meta):
    row = r.choice(rows)
    if not numeric(row):
        return
    if row.typ[1] == 0 and r.random() < 0.5:
        row.size += r.choice([0x100, 0x800, 1])
        meta["tags"].append("app-size-misaligned")
    else:
        base = row.place if row.offset is None else row.offset
        row.offset = base + r.choice([4, 0x800, 0x1000 if row.typ[1] == 0 else 0x100])
        meta["tags"].append("offset-misaligned")


def f_dupname(r, rows, meta):
    if len(rows) > 1:
        a, b = r.sample(range(len(rows)), 2)
        rows[b].name = rows[a].name
        meta["tags"].append("duplicate-name")


def f_unknown(r, rows, meta):
    row = r.choice(rows)
    what = r.choice(["type", "sub", "sub", "flag"])
    if what == "type":
        row.typ = (r.choice(["dta", "application", "App_", "nvs", "0x100", "-1", "256", "appk",
                             "datak", "0x1_", "bootloader", "partİtion_table"]), None)
    elif what == "sub":
        row.sub = (r.choice(["nvsx", "ota_16", "tee_2", "factory_", "0x100", "-2", "ota0",
                             "tee_sec_storage", "phy ", "factoryk", "nvs_key", "primary",
                             "nvs_\u212aeys", "undefİned"]), None)
    else:
        row.flags.append(r.choice(["secure", "Encrypted", " readonly", "readonly ", "ro", "1",
                                   "encrypted ", "# comment"]))
    meta["tags"].append("unknown-" + what)


def f_empty(r, rows, meta):
    row = r.choice(rows)
    what = r.choice(["type", "sub", "size", "name"])
    if what == "type":
        row.typ = ("", None)
    elif what == "sub":
        row.sub = ("", None)
    elif what == "size":
        row.size = None
    else:
        row.name = ""
    meta["tags"].append("empty-" + what)


def f_badnum(r, rows, meta):
    row = r.choice(rows)
    bad = r.choice(BAD_NUMBERS)
    if r.random() < 0.5:
        row.size = bad
    else:
        row.offset = bad
    meta["tags"].append("bad-number")


def f_otadata(r, rows, meta):
    c = r.random()
    if c < 0.4:
        rows.insert(r.randrange(len(rows) + 1), Row("ota" + str(r.randint(0, 9)), ("data", 1), ("ota", 0),
                                                     r.choice([0x1000, 0x3000, 0x2000, 0x2000])))
    elif c < 0.7:
        rows.insert(0, Row("otadata", ("data", 1), ("ota", 0), 0x2000))
        rows.append(Row("otadata2", ("data", 1), ("ota", 0), 0x2000))
    else:
        rows.insert(0, Row("teeota", ("data", 1), ("tee_ota", 0x90), r.choice([0x2000, 0x1000])))
        if r.random() < 0.5:
            rows.append(Row("teeota2", ("data", 1), ("tee_ota", 0x90), 0x2000))
    meta["tags"].append("otadata")


def f_readonly(r, rows, meta):
    kw, v = r.choice([("ota", 0), ("coredump", 3), ("nvs", 2), ("nvs", 2), ("phy", 1)])
    size = 0x2000 if kw == "ota" else r.choice([0x1000, 0x2000, 0x3000, 0x10000])
    row = Row("ro" + kw, ("data", 1), (kw, v), size, ["readonly"] if r.random() < 0.7 else [])
    rows.insert(r.randrange(len(rows) + 1), row)
    meta["tags"].append("readonly")


def f_many(r, rows, meta):
    n = r.choice([93, 94, 95, 96, 120])
    while len(rows) < n:
        rows.append(Row("p%d" % len(rows), ("data", 1), ("undefined", 6), 0x1000))
    meta["tags"].append("many-%d" % n)


def f_huge(r, rows, meta):
    row = r.choice(rows)
    c = r.random()
    if c < 0.4:
        row.size = r.choice([0xFFFFF000, 0x100000000, 0xFFFFFFFF + 1 - 0x9000, 4 << 30])
    elif c < 0.7:
        row.offset = r.choice([0xFFFF0000, 0x100000000, 0xFFFFF000])
    else:
        row.size = r.choice([0x1000000, 0x2000000, 0x7F000000])
    meta["tags"].append("huge")


def f_longname(r, rows, meta):
    row = r.choice(rows)
    row.name = r.choice(["a" * 17, "partition_name_17", "ééééééééé", "x" * 40])
    meta["tags"].append("long-name")


def f_envvar(r, rows, meta):
    row = r.choice(rows)
    c = r.random()
    if c < 0.4:
        row.size = r.choice(["$PT_NVS_SIZE", "${PT_NVS_SIZE}"])
    elif c < 0.6:
        row.offset = "$PT_APP_OFFSET"
    elif c < 0.8:
        row.name = r.choice(["$PT_NOPE", "nvs$PT_NOPE", "$PT_NVS_SIZE"])
    else:
        row.name = "$"
    meta["tags"].append("envvar")


def f_below(r, rows, meta):
    rows[0].offset = r.choice([0x0, 0x1000, 0x8000, 0x8fff, 0x5000])
    meta["tags"].append("below-table")


def f_ff(r, rows, meta):
    row = r.choice(rows)
    if r.random() < 0.5:
        row.typ = (None, 0xFF)
    else:
        row.sub = (None, 0xFF)
    meta["tags"].append("ff")


def f_negsize(r, rows, meta):
    row = r.choice(rows)
    if not numeric(row):
        return
    if row.offset is None:
        row.offset = row.place
    row.size = "-" + hex(max(0, row.offset - r.choice([0x1000, 0])))
    meta["tags"].append("negative-size")


def f_special_types(r, rows, meta):
    row = r.choice(rows)
    c = r.random()
    if c < 0.5:
        row.typ, row.sub = ("partition_table", 3), (r.choice(["primary", "ota", "0x1"]), None)
    else:
        row.typ, row.sub = ("bootloader", 2), (r.choice(["primary", "ota", "recovery"]), None)
    meta["tags"].append("special-type")


FAULTS = [f_overlap, f_misalign, f_dupname, f_unknown, f_empty, f_badnum, f_otadata,
          f_readonly, f_many, f_huge, f_longname, f_envvar, f_below, f_ff, f_negsize,
          f_special_types]


def gen_csv(r):
    """A random CSV table: its text (str) and meta (tags)."""
    meta = {"tags": []}
    used = set()
    rows = []
    if r.random() < 0.3:
        # Start from something like ESP-IDF's own tables.
        rows.append(Row("nvs", ("data", 1), ("nvs", 2), r.choice([0x4000, 0x5000, 0x6000])))
        if r.random() < 0.5:
            rows.append(Row("otadata", ("data", 1), ("ota", 0), 0x2000))
        rows.append(Row("phy_init", ("data", 1), ("phy", 1), 0x1000))
        rows.append(Row("factory", ("app", 0), ("factory", 0), 0x100000))
        used.update(x.name for x in rows)
    for _ in range(r.choice([0, 1, 1, 2, 3, 4, 6, 10])):
        row = random_row(r, used)
        used.add(row.name)
        rows.append(row)
    if not rows and r.random() < 0.8:
        rows.append(random_row(r, used))
    layout(rows, r)
    if rows and r.random() < 0.5:
        for f in r.sample(FAULTS, r.choice([1, 1, 1, 2])):
            f(r, rows, meta)
            place_new(rows)
    spaces = r.random() < 0.3
    for row in rows:
        format_row_safe(r, row, spaces)

    lines = []
    if r.random() < 0.6:
        lines.append(r.choice(["# ESP-IDF Partition Table",
                               "# Name,   Type, SubType, Offset,  Size, Flags",
                               "# Note: if you have increased the bootloader size, make sure to update the offsets",
                               "  # indented comment, with commas, $PT_NVS_SIZE and $NOPE", "#"]))
    for row in rows:
        if r.random() < 0.1:
            lines.append(r.choice(["", "   ", "# comment", "\t", "#nvs,data,nvs,0x9000,0x6000,"]))
        lines.append(",".join(row.fields))
    if r.random() < 0.1:
        lines.append("")
    eol = "\r\n" if r.random() < 0.1 else "\n"
    text = eol.join(lines)
    if r.random() < 0.8:
        text += eol
    c = r.random()
    if c < 0.02:
        text = "\ufeff" + text
        meta["tags"].append("bom")
    elif c < 0.05 and lines:
        # Whitespace that Python's str.strip/splitlines and Go treat differently.
        ch = r.choice(["\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\u2028", "\u00a0", "\u3000"])
        pos = [m.start() for m in re.finditer(",", text)]
        if pos:
            p = r.choice(pos) + 1
            text = text[:p] + ch + text[p:]
            meta["tags"].append("odd-space-%02x" % ord(ch))
    return text, meta


def format_row_safe(r, row, spaces):
    # Faults may have put text (str) where numbers (int) were.
    size, off = row.size, row.offset
    tkw, tv = row.typ
    skw, sv = row.sub
    if tv is None or sv is None or not isinstance(size, int) or (off is not None and not isinstance(off, int)):
        format_row(r, Row(row.name, ("data", 1), ("nvs", 2), 0x1000), spaces)
        f = [row.name,
             tkw if tv is None else (fmt_kw(r, tkw) if tkw else fmt_byte(r, tv)),
             skw if sv is None else (fmt_kw(r, skw) if skw else fmt_byte(r, sv)),
             "" if off is None else (off if isinstance(off, str) else fmt_num(r, off)),
             "" if size is None else (size if isinstance(size, str) else fmt_num(r, size)),
             ":".join(row.flags)]
        row.fields = f
        return
    format_row(r, row, spaces)


# ---------------------------------------------------------------- binaries

def parse_bin(b):
    """Read a binary table as gen_esp32part's from_binary does. Returns
    (partitions, extras) or raises ValueError. extras notes what the
    documented differences depend on."""
    md5 = hashlib.md5()
    parts, extras = [], set()
    seen_md5 = False
    for o in range(0, len(b), 32):
        e = b[o:o + 32]
        if len(e) != 32:
            raise ValueError("length not a multiple of 32")
        if e == b"\xff" * 32:
            if o >= MAX_LENGTH:
                extras.add("end-after-0xc00")
            return parts, extras
        if e[:2] == b"\xeb\xeb":
            if e[16:] != md5.digest():
                raise ValueError("md5 mismatch")
            seen_md5 = True
            continue
        md5.update(e)
        if seen_md5:
            extras.add("entry-after-md5")
        magic, typ, sub, off, size, name, flags = struct.unpack("<2sBBLL16sL", e)
        if magic != b"\xaa\x50":
            raise ValueError("bad magic")
        name = name.split(b"\x00")[0]
        parts.append({"name": name.decode("utf-8"), "type": typ, "subtype": sub,
                      "offset": off, "size": size, "flags": flags})
    raise ValueError("no end marker")


def entries_of(b):
    """The number of partition entries before the MD5 record."""
    n = 0
    while b[n * 32:n * 32 + 2] == b"\xaa\x50":
        n += 1
    return n


def fix_md5(b, n):
    b = bytearray(b)
    b[n * 32:n * 32 + 16] = b"\xeb\xeb" + b"\xff" * 14
    b[n * 32 + 16:n * 32 + 32] = hashlib.md5(bytes(b[:n * 32])).digest()
    return bytes(b)


def mutate(r, good):
    """A damaged copy of a valid binary table and a label."""
    n = entries_of(good)
    b = bytearray(good)
    c = r.random()
    if c < 0.2 or n == 0:
        i = r.randrange(0, (n + 2) * 32)
        b[i] ^= 1 << r.randrange(8)
        return bytes(b), "bitflip@%d" % i
    if c < 0.45:
        i = r.randrange(0, n * 32)
        b[i] ^= 1 << r.randrange(8)
        return fix_md5(b, n), "bitflip+md5@%d" % i
    if c < 0.7:
        k = r.randrange(n)
        e = k * 32
        field = r.choice(["type", "subtype", "offset", "size", "flags", "name", "magic"])
        if field == "type":
            b[e + 2] = r.choice([0xFF, 0x00, 0x01, 0x40, 0xFE, 0x02, 0x03])
        elif field == "subtype":
            b[e + 3] = r.choice([0xFF, 0x00, 0x02, 0x10, 0x90, 0x04])
        elif field == "offset":
            v = r.choice([0, 0x8000, 0x9000, 0x9004, 0x10000, 0x11000, 0xFFFFF000, 0x80000000])
            b[e + 4:e + 8] = struct.pack("<L", v)
        elif field == "size":
            v = r.choice([0, 0x1000, 0x1001, 0x2000, 0x3000, 0xFFFFFFFF, 0x80000000])
            b[e + 8:e + 12] = struct.pack("<L", v)
        elif field == "flags":
            v = r.choice([1, 2, 3, 4, 0x80000000, 0xFFFFFFFF])
            b[e + 28:e + 32] = struct.pack("<L", v)
        elif field == "name":
            other = b[r.randrange(n) * 32 + 12:][:16] if n > 1 else b"x" * 16
            v = r.choice([b"\x00" * 16, b"abcdefghijklmnop", b"\xff\xfe" + b"\x00" * 14,
                          b"ab\x00cd" + b"\x00" * 11, bytes(other), "é".encode() + b"\x00" * 14,
                          b"\xc3" + b"\x00" * 15])
            b[e + 12:e + 28] = v[:16]
        else:
            b[e:e + 2] = r.choice([b"\xaa\x51", b"\x00\x00", b"\xeb\xeb", b"\xff\xff"])
        return fix_md5(b, n), "set-%s#%d" % (field, k)
    if c < 0.82:
        cut = r.choice([r.randrange(len(good)), n * 32, (n + 1) * 32, (n + 2) * 32 - 1,
                        (n + 1) * 32 + 16, 0, 1, 2, 31, 32])
        return bytes(b[:cut]), "truncate@%d" % cut
    if c < 0.9:
        # Drop the MD5 record.
        return bytes(b[:n * 32] + b[(n + 1) * 32:]), "no-md5"
    if c < 0.95:
        # An entry after the MD5 record.
        e = bytearray(b[(n - 1) * 32:n * 32])
        e[12:28] = b"after_md5\x00\x00\x00\x00\x00\x00\x00"
        e[4:8] = struct.pack("<L", 0x7F000000)
        out = b[:(n + 1) * 32] + e + b[(n + 1) * 32:]
        return bytes(out[:len(good)]), "entry-after-md5"
    # Swap two entries, fix the MD5 record.
    if n > 1:
        i, j = r.sample(range(n), 2)
        ei, ej = bytes(b[i * 32:i * 32 + 32]), bytes(b[j * 32:j * 32 + 32])
        b[i * 32:i * 32 + 32], b[j * 32:j * 32 + 32] = ej, ei
        return fix_md5(b, n), "swap-%d-%d" % (i, j)
    return bytes(b[:(n + 1) * 32]) + b"\x00" * 32, "no-end-marker"


# ---------------------------------------------------------------- running

def run(argv, env):
    p = subprocess.run(argv, capture_output=True, env=env, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def first_error(err):
    """The reference's message: its first line that is not a warning."""
    lines = [x for x in err.strip().splitlines() if x.strip() and not x.startswith("WARNING")]
    if any(x.startswith("Traceback") for x in lines):
        return lines[-1][:300]
    return lines[0][:300] if lines else ""


def ref_status(rc, err):
    if rc == 0:
        return "accept"
    if rc == 2 and "Traceback" not in err:
        return "refuse"
    return "crash"


def ours_status(rc):
    return {0: "accept", 2: "refuse"}.get(rc, "crash")


def ours_parts(out):
    return [{k: p[k] for k in ("name", "type", "subtype", "offset", "size", "flags")}
            for p in json.loads(out)["partitions"]]


# Documented deliberate differences (docs/partitions.md). Each returns True
# when the case shows it: parts is the reference's table (or None when it
# refused), text the CSV (or None for a binary), err our tool's message.
def d_envvar(parts, text, err, extras):
    return re.search(r"environment variables (such as \S+ )?are not expanded", err) is not None


def d_suffix(parts, text, err, extras):
    return "more than one K or M suffix" in err or "a K or M suffix does not apply to names" in err


def d_ascii(parts, text, err, extras):
    # Python's int() reads any Unicode digits; str.lower() folds KELVIN SIGN.
    return "use ASCII digits" in err or (text is not None and "\u212a" in text and "unknown" in err)


def d_long_name(parts, text, err, extras):
    # gen_esp32part cuts the name to 16 bytes, even inside a character.
    return text is not None and "bytes long; at most 16 fit" in err


def d_empty_name(parts, text, err, extras):
    return parts is not None and "partition name is empty" in err and any(p["name"] == "" for p in parts)


def d_ff(parts, text, err, extras):
    return parts is not None and "is reserved (it means any" in err and \
        any(p["type"] == 0xFF or p["subtype"] == 0xFF for p in parts)


def d_nvs_min(parts, text, err, extras):
    return parts is not None and "must be flagged readonly" in err and any(
        p["type"] == 1 and p["subtype"] == 2 and p["size"] < 0x3000 and not p["flags"] & 2 for p in parts)


def d_4gib(parts, text, err, extras):
    return parts is not None and "beyond 4 GiB" in err and \
        any(p["offset"] + p["size"] > 1 << 32 for p in parts)


def d_after_md5(parts, text, err, extras):
    return "entry-after-md5" in extras and "follows the md5 record" in err


def d_bom(parts, text, err, extras, got=None):
    # gen_esp32part 1.4 keeps a UTF-8 BOM as part of the first line; 1.5
    # and usmp-psk skip it.
    if text is None or not text.startswith("\ufeff") or err:
        return False
    if parts is None:
        return True
    fixed = [dict(p) for p in parts]
    if fixed and fixed[0]["name"].startswith("\ufeff"):
        fixed[0]["name"] = fixed[0]["name"][1:].strip()
    return fixed == got


def d_empty_binary(parts, text, err, extras):
    # A binary table with no partitions starts with the MD5 record, which
    # gen_esp32part does not take for a binary.
    return "empty-binary" in extras and err == ""


DOCUMENTED = {
    "envvar": d_envvar, "k-m-suffix": d_suffix, "ascii-only": d_ascii, "long-name": d_long_name, "empty-name": d_empty_name,
    "type-or-subtype-0xff": d_ff, "nvs-min-size": d_nvs_min, "past-4GiB": d_4gib,
    "entry-after-md5": d_after_md5, "utf8-bom": d_bom, "empty-binary-table": d_empty_binary,
}


def documented(parts, text, err, extras, got=None):
    """The name of the documented difference the case shows, or None. got
    is our tool's table when both accepted."""
    if got is not None:
        return "utf8-bom" if d_bom(parts, text, err, extras, got) else None
    for name, f in DOCUMENTED.items():
        if f(parts, text, err, extras):
            return name
    return None


class Result:
    def __init__(self):
        self.counts = {}
        self.problems = []
        self.discrepancies = 0

    def count(self, key):
        self.counts[key] = self.counts.get(key, 0) + 1


def compare(res, kind, label, ref_st, ref_err, parts, ours_rc, ours_out, ours_err, text, extras, files, keep):
    """Record one comparison of the kind (csv, reference bin, damaged bin).
    parts: the reference's table when it accepted."""
    def tally(key):
        res.count("%-14s %s" % (kind + ":", key))

    st = ours_status(ours_rc)
    err = ours_err.strip()
    if st == "crash":
        why = "our tool exited %d" % ours_rc
    elif ref_st == "accept" and st == "accept":
        got = ours_parts(ours_out)
        if got == parts:
            tally("accepted by both")
            return
        doc = documented(parts, text, err, extras, got)
        if doc:
            tally("documented difference: " + doc)
            return
        why = "both accept, content differs:\n  reference %s\n  ours      %s" % (parts, got)
    elif ref_st != "accept" and st == "refuse":
        tally("refused by both" if ref_st == "refuse" else "refused by ours, reference crashed")
        return
    else:
        doc = documented(parts if ref_st == "accept" else None, text, err if st == "refuse" else "", extras)
        if doc:
            tally("documented difference: " + doc)
            return
        if ref_st == "accept":
            why = "reference accepts, ours refuses"
        else:
            why = "reference %ss, ours accepts" % ("crashe" if ref_st == "crash" else "refuse")
    tally("DISCREPANCY")
    res.discrepancies += 1
    msg = "%s: %s\n  ours: exit %d %s" % (label, why, ours_rc, err[:300])
    if ref_st != "accept":
        msg += "\n  reference: %s" % (first_error(ref_err) or ref_st)
    if text is not None:
        msg += "\n  csv: %r" % text[:600]
    res.problems.append(msg)
    if keep:
        d = os.path.join(keep, re.sub(r"[^A-Za-z0-9_.@#-]", "_", label))
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as fh:
                fh.write(data)
        with open(os.path.join(d, "report.txt"), "w") as fh:
            fh.write(msg + "\n")


def one_case(args, idx):
    r = random.Random("%d/%d" % (args.seed, idx))
    res = Result()
    env = dict(os.environ, **ENV)
    d = tempfile.mkdtemp(prefix="ptdiff-")
    try:
        text, meta = gen_csv(r)
        csv_path = os.path.join(d, "in.csv")
        with open(csv_path, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        bin_path = os.path.join(d, "ref.bin")
        rc, _, rerr = run([sys.executable, args.ref, "-q", csv_path, bin_path], env)
        ref_st = ref_status(rc, rerr)
        parts, refbin, extras = None, b"", set()
        if ref_st == "accept":
            with open(bin_path, "rb") as fh:
                refbin = fh.read()
            try:
                parts, extras = parse_bin(refbin)
            except (ValueError, UnicodeDecodeError) as e:
                # It wrote a table it cannot read back (a name cut inside a
                # character): compare as a refusal.
                ref_st, rerr = "crash", "wrote a binary it cannot read back: %s" % e
            if not parts and refbin[:2] == b"\xeb\xeb":
                extras.add("empty-binary")
        label = "seed%d-case%d" % (args.seed, idx)
        orc, oout, oerr = run([args.bin, "partition", "show", "--json", csv_path], env)
        files = {"in.csv": text.encode("utf-8"), "ref.bin": refbin,
                 "ours.out": oout.encode(), "ours.err": oerr.encode(), "ref.err": rerr.encode()}
        compare(res, "csv", label + " csv", ref_st, rerr, parts, orc, oout, oerr, text, extras, files, args.keep)
        for t in meta["tags"]:
            res.count("tag " + t)
        if ref_st != "accept":
            return res
        # Our tool on the reference's binary, and the reference on its own.
        orc, oout, oerr = run([args.bin, "partition", "show", "--json", bin_path], env)
        brc, _, berr = run([sys.executable, args.ref, "-q", bin_path, os.path.join(d, "rt.csv")], env)
        compare(res, "reference bin", label + " bin", ref_status(brc, berr), berr, parts, orc, oout, oerr, None,
                extras, {"ref.bin": refbin, "ours.err": oerr.encode(), "ref.err": berr.encode()}, args.keep)
        # Damaged copies.
        for m in range(args.mutations):
            bad, how = mutate(r, refbin)
            mpath = os.path.join(d, "m%d.bin" % m)
            with open(mpath, "wb") as fh:
                fh.write(bad)
            brc, _, berr = run([sys.executable, args.ref, "-q", mpath, os.path.join(d, "m.csv")], env)
            bst = ref_status(brc, berr)
            mparts, mextras = None, set()
            try:
                mparts, mextras = parse_bin(bad)
            except (ValueError, UnicodeDecodeError):
                pass
            if bad[:2] != b"\xaa\x50" and bad[:2] in (b"\xeb\xeb",) and mparts == []:
                mextras.add("empty-binary")
            if bst == "accept" and bad[:2] != b"\xaa\x50":
                # Not a binary to gen_esp32part (it looks at the first two
                # bytes only): it read the file as CSV and wrote a binary.
                try:
                    with open(os.path.join(d, "m.csv"), "rb") as fh:
                        mparts, mextras = parse_bin(fh.read())
                except (OSError, ValueError, UnicodeDecodeError):
                    mparts = None
            if bst == "accept" and mparts is None:
                bst = "crash"  # accepted something we cannot read: compare as a refusal
            orc, oout, oerr = run([args.bin, "partition", "show", "--json", mpath], env)
            compare(res, "damaged bin", "%s mut%d %s" % (label, m, how), bst, berr, mparts if bst == "accept" else None,
                    orc, oout, oerr, None, mextras,
                    {"m.bin": bad, "ours.err": oerr.encode(), "ref.err": berr.encode()}, args.keep)
        return res
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--bin", help="the usmp-psk binary (default: build ./cmd/usmp-psk)")
    ap.add_argument("--keep", help="keep the inputs and outputs of each discrepancy in DIR/NAME/")
    ap.add_argument("--mutations", type=int, default=3, help="damaged binaries per accepted table")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()

    args.ref = os.environ.get("GEN_ESP32PART")
    if not args.ref or not os.path.isfile(args.ref):
        sys.exit("set GEN_ESP32PART to ESP-IDF's gen_esp32part.py (see docs/partitions.md)")
    with open(args.ref, encoding="utf-8") as fh:
        m = re.search(r"""__version__\s*=\s*['"]([^'"]+)""", fh.read())
    version = m.group(1) if m else "?"
    if version < "1.4":
        print("warning: gen_esp32part.py %s predates the MD5 record, readonly and nvs_keys; "
              "expect many discrepancies (docs/partitions.md names the version to use)" % version,
              file=sys.stderr)

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tmp = None
    if not args.bin:
        tmp = tempfile.mkdtemp(prefix="ptdiff-bin-")
        args.bin = os.path.join(tmp, "usmp-psk")
        subprocess.run(["go", "build", "-o", args.bin, "./cmd/usmp-psk"], cwd=root, check=True)
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    try:
        total = Result()
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as ex:
            for res in ex.map(lambda i: one_case(args, i), range(args.cases)):
                for k, v in res.counts.items():
                    total.counts[k] = total.counts.get(k, 0) + v
                total.problems.extend(res.problems)
                total.discrepancies += res.discrepancies
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    for p in total.problems:
        print(p + "\n")
    print("gen_esp32part.py %s, seed %d, %d tables:" % (version, args.seed, args.cases))
    for k in sorted(total.counts):
        if not k.startswith("tag "):
            print("  %-60s %d" % (k, total.counts[k]))
    tags = sorted((k[4:], v) for k, v in total.counts.items() if k.startswith("tag "))
    print("  faults: " + ", ".join("%s %d" % kv for kv in tags))
    n = total.discrepancies
    print("%d discrepancies" % n)
    sys.exit(1 if n else 0)


if __name__ == "__main__":
    main()
