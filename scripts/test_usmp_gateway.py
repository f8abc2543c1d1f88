"""Unit tests of usmp_gateway (standard library unittest).

Run with ``python3 -m unittest discover -s scripts -p 'test_usmp_gateway.py'``;
the Go test internal/registry TestPythonUnittest runs them too, and
TestPythonGateway checks the module against registries the Go code wrote.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import base64
import json
import os
import shutil
import sqlite3
import stat
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import usmp_gateway as gw  # noqa: E402

MASTER = "canary-master-0f1e2d3c4b5a69788796a5b4c3d2e1f0"


def derived(device_id: bytes, epoch: int = 0, master: str = MASTER) -> bytes:
    msg = device_id if epoch == 0 else device_id + b"\x00" + struct.pack(">I", epoch)
    return hmac.new(master.encode(), msg, hashlib.sha256).digest()


def record(device_id, source, epoch, status, key=None, master=MASTER):
    """A device row: (id, source, epoch, status, kcv, psk)."""
    k = key if key is not None else derived(device_id.encode(), epoch, master)
    stored = k if source != "derived" and status == "active" else None
    return (device_id, source, epoch, status, gw.kcv(k), stored)


def make_db(path, records, version=2):
    """A registry database with the columns the module reads."""
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE usmp_meta (id INTEGER PRIMARY KEY, schema_version INTEGER NOT NULL);
        CREATE TABLE usmp_devices (id TEXT PRIMARY KEY, source TEXT, epoch INTEGER, status TEXT,
            kcv TEXT, psk BLOB, psk_sealed BLOB);
        """
    )
    db.execute("INSERT INTO usmp_meta VALUES (1, ?)", (version,))
    for r in records:
        sealed = r[6] if len(r) > 6 else None
        db.execute("INSERT INTO usmp_devices VALUES (?, ?, ?, ?, ?, ?, ?)", tuple(r[:6]) + (sealed,))
    db.commit()
    db.close()
    return path


class TempDir(unittest.TestCase):
    def setUp(self) -> None:
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name

    def tearDown(self) -> None:
        self._tmp.cleanup()

    def write(self, name: str, obj) -> str:
        path = os.path.join(self.dir, name)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            if isinstance(obj, (bytes, str)):
                f.write(obj if isinstance(obj, str) else obj.decode())
            else:
                json.dump(obj, f)
        os.replace(tmp, path)  # like usmp-psk: a new inode every time
        return path


class DeriveTest(unittest.TestCase):
    def test_epoch0_is_gateway_hmac(self):
        want = hmac.new(MASTER.encode(), b"device-id-1", hashlib.sha256).digest()
        self.assertEqual(gw.derive_psk(MASTER.encode(), b"device-id-1"), want)

    def test_epochs(self):
        for n in (1, 2, 0xFFFFFFFF):
            want = hmac.new(MASTER.encode(), b"dev" + b"\x00" + struct.pack(">I", n), hashlib.sha256).digest()
            self.assertEqual(gw.derive_psk(MASTER.encode(), b"dev", n), want)
        with self.assertRaises(ValueError):
            gw.derive_psk(b"m", b"dev", -1)

    def test_kcv_golden(self):
        # design §3 golden vector
        key = bytes.fromhex("82f1373ae449ab63ca9dc14556934ddcdd7ec361c1d80030d316e9ca7355a40a")
        self.assertEqual(gw.kcv(key), "73b52cac")


class LoadExportTest(TempDir):
    def test_load(self):
        k1, k2 = os.urandom(32), os.urandom(16)
        path = self.write("export.json", {"dev-1": k1.hex(), "24:6F:28:AA": k2.hex().upper()})
        self.assertEqual(gw.load_psk_registry(path), {b"dev-1": k1, b"24:6F:28:AA": k2})

    def test_load_from_stream(self):
        k = os.urandom(32)
        stream = io.BytesIO(json.dumps({"dev": k.hex()}).encode())
        self.assertEqual(gw.load_psk_registry(stream), {b"dev": k})

    def test_errors_never_show_keys(self):
        k = os.urandom(32).hex()
        cases = {
            "not json": k[:40] + "{",
            "not a map": json.dumps([k]),
            "bad id": json.dumps({"bad id": k}),
            "bad hex": json.dumps({"dev": k[:-1] + "z"}),
            "odd hex": json.dumps({"dev": k[:-1]}),
            "duplicate": '{"dev": "%s", "dev": "%s"}' % (k, k),
            "not a string": json.dumps({"dev": 5}),
            "swapped": json.dumps({k: "device-1"}),
            "swapped twice": '{"%s": "d", "%s": "d"}' % (k, k),
            "swapped base64": json.dumps({base64.b64encode(bytes.fromhex(k)).decode(): "device-1"}),
            "swapped colons": json.dumps({":".join(k[i : i + 2] for i in range(0, 64, 2)): "device-1"}),
        }
        for name, text in cases.items():
            with self.subTest(name):
                path = self.write("bad.json", text)
                with self.assertRaises(gw.RegistryError) as cm:
                    gw.load_psk_registry(path)
                msg = str(cm.exception)
                for i in range(len(k) - 3):
                    self.assertNotIn(k[i : i + 4], msg)
                self.assertNotIn(base64.b64encode(bytes.fromhex(k)).decode()[:8], msg)

    def test_looks_like_key(self):
        # The rule of psk.LooksLikeKey (internal/psk/deviceid_test.go).
        for s, want in [
            ("device-id-1", False), ("24:6F:28:AA:BB:CC", False), ("0123456789abcdef0123456789abcde", False),
            ("123e4567-e89b-12d3-a456-426614174000", False), ("g" * 43, False),
            ("0123456789abcdef0123456789abcdef", True), ("x-" + "ab" * 16, True),
            (":".join(["9f"] * 16), True), (":".join(["9f"] * 15), False),
            (base64.b64encode(bytes(range(32))).decode(), True), (base64.b64encode(bytes(range(32))).decode().rstrip("="), True),
            (base64.urlsafe_b64encode(bytes(range(1, 33))).decode(), True),
        ]:
            with self.subTest(s):
                self.assertEqual(gw.looks_like_key(s), want)


class GetPSKTest(TempDir):
    def registry(self, *records):
        return make_db(os.path.join(self.dir, "usmp-registry.db"), records)

    def test_lookup(self):
        rnd = os.urandom(32)
        path = self.registry(
            record("d0", "derived", 0, "active"),
            record("d2", "derived", 2, "active"),
            record("rnd", "random", 1, "active", key=rnd),
            record("gone", "derived", 0, "revoked"),
        )
        get = gw.make_get_psk(path, master=MASTER)
        self.assertEqual(get(b"d0"), derived(b"d0"))
        self.assertEqual(get(b"d2"), derived(b"d2", 2))
        self.assertEqual(get(b"rnd"), rnd)
        self.assertEqual(get(b"unknown"), derived(b"unknown"))
        with self.assertRaises(KeyError):
            get(b"gone")
        strict = gw.make_get_psk(path, master=MASTER.encode(), strict=True)
        with self.assertRaises(KeyError):
            strict(b"unknown")
        self.assertEqual(strict(b"d2"), derived(b"d2", 2))
        # The database holds the registry: load_psk_registry reads it too.
        self.assertEqual(
            gw.load_psk_registry(path, master=MASTER),
            {b"d0": derived(b"d0"), b"d2": derived(b"d2", 2), b"rnd": rnd},
        )

    def test_master_from_env(self):
        path = self.registry(record("d1", "derived", 1, "active"))
        old = os.environ.get(gw.MASTER_ENV)
        os.environ[gw.MASTER_ENV] = MASTER
        try:
            self.assertEqual(gw.make_get_psk(path)(b"d1"), derived(b"d1", 1))
        finally:
            if old is None:
                del os.environ[gw.MASTER_ENV]
            else:
                os.environ[gw.MASTER_ENV] = old

    def test_no_master(self):
        path = self.registry(record("rnd", "random", 0, "active", key=os.urandom(32)))
        env = os.environ.pop(gw.MASTER_ENV, None)
        try:
            with self.assertRaises(gw.RegistryError):
                gw.make_get_psk(path)  # unknown devices need the master
            get = gw.make_get_psk(path, strict=True)  # stored keys only: fine
            self.assertEqual(len(get(b"rnd")), 32)
        finally:
            if env is not None:
                os.environ[gw.MASTER_ENV] = env

    def test_wrong_master(self):
        path = self.registry(record("d0", "derived", 0, "active"))
        get = gw.make_get_psk(path, master="another master")
        with self.assertRaises(gw.RegistryError):
            get(b"d0")

    def test_lookup_sees_changes(self):
        path = self.registry(record("d", "derived", 0, "active"))
        get = gw.make_get_psk(path, master=MASTER)
        self.assertEqual(get(b"d"), derived(b"d"))
        db = sqlite3.connect(path)
        db.execute("UPDATE usmp_devices SET epoch = 1, kcv = ? WHERE id = 'd'", (gw.kcv(derived(b"d", 1)),))
        db.commit()
        self.assertEqual(get(b"d"), derived(b"d", 1))
        db.execute("UPDATE usmp_devices SET status = 'revoked' WHERE id = 'd'")
        db.commit()
        db.close()
        with self.assertRaises(KeyError):
            get(b"d")

    def test_sealed_keys(self):
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:
            if os.environ.get("CI"):
                raise
            self.skipTest("cryptography is not installed")
        regkey = os.urandom(32)
        enc = hmac.new(regkey, b"usmp-psk registry psk encryption v1", hashlib.sha256).digest()
        kid = hmac.new(regkey, b"usmp-psk registry key id v1", hashlib.sha256).digest()[:4]
        k = os.urandom(32)
        header = b"\x01" + kid + os.urandom(12)
        blob = header + AESGCM(enc).encrypt(header[5:], k, b"usmp-psk registry psk v1\x00" + header + b"rnd")
        rec = ("rnd", "random", 0, "active", gw.kcv(k), None, blob)
        path = self.registry(rec)
        old = os.environ.pop(gw.REGISTRY_KEY_ENV, None)
        try:
            get = gw.make_get_psk(path, master=MASTER)
            with self.assertRaises(gw.RegistryError) as cm:
                get(b"rnd")
            self.assertIn(gw.REGISTRY_KEY_ENV, str(cm.exception))
            os.environ[gw.REGISTRY_KEY_ENV] = regkey.hex()
            self.assertEqual(gw.make_get_psk(path, master=MASTER)(b"rnd"), k)
            # The id is authenticated: a row moved to another device fails.
            path = self.registry(("other",) + rec[1:])
            with self.assertRaises(gw.RegistryError) as cm:
                gw.make_get_psk(path, master=MASTER)(b"other")
            self.assertNotIn(k.hex()[:8], str(cm.exception))
        finally:
            os.environ.pop(gw.REGISTRY_KEY_ENV, None)
            if old is not None:
                os.environ[gw.REGISTRY_KEY_ENV] = old

    def test_damaged_registry(self):
        k = os.urandom(32)
        cases = {
            "kcv mismatch": [("rnd", "random", 0, "active", "00000000", k)],
        }
        for name, recs in cases.items():
            with self.subTest(name):
                path = self.registry(*recs)
                with self.assertRaises(gw.RegistryError) as cm:
                    gw.make_get_psk(path, master=MASTER)(b"rnd")
                msg = str(cm.exception)
                for i in range(len(k.hex()) - 3):
                    self.assertNotIn(k.hex()[i : i + 4], msg)
        with self.assertRaises(gw.RegistryError):
            gw.make_get_psk(make_db(os.path.join(self.dir, "v1.db"), [], version=1), master=MASTER)
        legacy = self.write("usmp-registry.json", {"version": 1, "devices": []})
        with self.assertRaises(gw.RegistryError) as cm:
            gw.make_get_psk(legacy, master=MASTER)
        self.assertIn("registry migrate", str(cm.exception))
        # the same hint when it is loaded as if it were an export, under any name
        for name in ("usmp-registry.json", "old-registry"):
            legacy = self.write(name, {"version": 1, "audit": {"seq": 1, "hash": "0" * 64}, "devices": []})
            with self.subTest(name), self.assertRaises(gw.RegistryError) as cm:
                gw.load_psk_registry(legacy)
            self.assertIn("registry migrate", str(cm.exception))
        # a registry that is not there is named as missing, not as damaged
        missing = os.path.join(self.dir, "nonexistent.db")
        with self.assertRaises(gw.RegistryError) as cm:
            gw.make_get_psk(missing, master=MASTER)
        self.assertIn("does not exist", str(cm.exception))
        self.assertFalse(os.path.exists(missing))


def needs_age(test: unittest.TestCase) -> None:
    """Skip without the age commands, except in CI, which must run these."""
    missing = [c for c in ("age", "age-keygen") if shutil.which(c) is None]
    if missing:
        if os.environ.get("CI"):
            test.fail(f"{', '.join(missing)} not installed; CI must run the age tests (apt-get install age)")
        test.skipTest(f"{', '.join(missing)} not installed")


def assert_no_key(test: unittest.TestCase, msg: str, keys) -> None:
    """No 8 consecutive hex digits of any key in msg (R9)."""
    low = msg.lower()
    for k in keys:
        h = k.hex()
        for i in range(len(h) - 7):
            test.assertNotIn(h[i : i + 8], low, f"the message holds key bytes: {msg!r}")


class AgeExportTest(TempDir):
    """load_psk_registry(path, identity=...) decrypts an age-encrypted export
    with the age command, into memory (issue 15 part 2)."""

    def setUp(self) -> None:
        super().setUp()
        needs_age(self)
        self.keys = {"dev-1": os.urandom(32), "24:6F:28:AA": os.urandom(32)}
        self.plain = json.dumps({k: v.hex() for k, v in sorted(self.keys.items())}, indent=2).encode() + b"\n"
        self.identity = self.keygen("gw.key")
        self.other = self.keygen("other.key")

    def keygen(self, name: str) -> str:
        path = os.path.join(self.dir, name)
        subprocess.run(["age-keygen", "-o", path], check=True, capture_output=True)
        return path

    def recipient(self, identity: str) -> str:
        return subprocess.run(["age-keygen", "-y", identity], check=True, capture_output=True, text=True).stdout.strip()

    def encrypt(self, name: str, armor: bool = False, data: bytes = None) -> str:
        path = os.path.join(self.dir, name)
        argv = ["age", "-r", self.recipient(self.identity), "-o", path] + (["-a"] if armor else [])
        subprocess.run(argv, input=self.plain if data is None else data, check=True, capture_output=True)
        return path

    def want(self):
        return {k.encode(): v for k, v in self.keys.items()}

    def test_file_binary_and_armored(self):
        for armor in (False, True):
            with self.subTest(armor=armor):
                path = self.encrypt("export.json.age", armor)
                self.assertEqual(gw.load_psk_registry(path, identity=self.identity), self.want())

    def test_stream(self):
        path = self.encrypt("export.json.age")
        with open(path, "rb") as f:
            self.assertEqual(gw.load_psk_registry(f, identity=self.identity), self.want())
        with open(path, "rb") as f:
            self.assertEqual(gw.load_psk_registry(io.BytesIO(f.read()), identity=self.identity), self.want())

    def test_no_plaintext_file(self):
        path = self.encrypt("export.json.age")
        tmp = os.path.join(self.dir, "tmp")
        os.mkdir(tmp)
        before = sorted(os.listdir(self.dir))
        old = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = tmp
        try:
            gw.load_psk_registry(path, identity=self.identity)
        finally:
            if old is None:
                del os.environ["TMPDIR"]
            else:
                os.environ["TMPDIR"] = old
        self.assertEqual(sorted(os.listdir(self.dir)), before)
        self.assertEqual(os.listdir(tmp), [])

    def test_wrong_identity(self):
        path = self.encrypt("export.json.age")
        with self.assertRaises(gw.RegistryError) as cm:
            gw.load_psk_registry(path, identity=self.other)
        msg = str(cm.exception)
        self.assertIn("export.json.age", msg)
        self.assertIn("is not one the export was encrypted to", msg)
        assert_no_key(self, msg, self.keys.values())

    def test_errors_never_show_keys(self):
        enc = self.encrypt("export.json.age")
        with open(enc, "rb") as f:
            ct = bytearray(f.read())
        tampered = bytearray(ct)
        tampered[-5] ^= 1
        notid = os.path.join(self.dir, "not-an-identity")
        with open(notid, "wb") as f:
            f.write(self.plain)
        cases = {
            "tampered": (bytes(tampered), self.identity, "does not authenticate"),
            "cut short": (bytes(ct[: len(ct) - 20]), self.identity, "does not authenticate"),
            "header cut": (bytes(ct[:40]), self.identity, "header is damaged"),
            "plaintext given an identity": (self.plain, self.identity, "not an age-encrypted export"),
            "identity is no identity": (bytes(ct), notid, "is not an age identity file"),
            "identity missing": (bytes(ct), os.path.join(self.dir, "nope.key"), "does not exist"),
        }
        for name, (data, ident, want) in cases.items():
            with self.subTest(name):
                path = os.path.join(self.dir, "case.age")
                with open(path, "wb") as f:
                    f.write(data)
                with self.assertRaises(gw.RegistryError) as cm:
                    gw.load_psk_registry(path, identity=ident)
                msg = str(cm.exception)
                self.assertIn(want, msg)
                assert_no_key(self, msg, self.keys.values())

    def test_encrypted_without_identity(self):
        for armor in (False, True):
            path = self.encrypt("export.json.age", armor)
            with self.assertRaises(gw.RegistryError) as cm:
                gw.load_psk_registry(path)
            self.assertIn("identity=", str(cm.exception))

    def test_damaged_plaintext_inside(self):
        path = self.encrypt("export.json.age", data=b'{"dev-1": "zz' + self.keys["dev-1"].hex().encode() + b'"}')
        with self.assertRaises(gw.RegistryError) as cm:
            gw.load_psk_registry(path, identity=self.identity)
        self.assertIn("export.json.age: device 'dev-1': the key is not hex", str(cm.exception))
        assert_no_key(self, str(cm.exception), self.keys.values())

    def test_age_missing(self):
        path = self.encrypt("export.json.age")
        with self.assertRaises(gw.RegistryError) as cm:
            gw.load_psk_registry(path, identity=self.identity, age_cmd=os.path.join(self.dir, "no-age"))
        self.assertIn("is not installed", str(cm.exception))


@unittest.skipIf(os.name != "posix", "a shell script stands in for age")
class AgeChildTest(TempDir):
    """What the age child gets: PATH alone in its environment, paths and
    flags in its argv, never a secret; its standard input is not the
    gateway's."""

    def test_child_env_and_argv(self):
        log = os.path.join(self.dir, "age.log")
        fake = os.path.join(self.dir, "fake-age")
        with open(fake, "w") as f:
            f.write('#!/bin/sh\n{ echo ARGV "$@"; env; } > "%s"\nprintf \'{"dev": "%s"}\'\n' % (log, "ab" * 32))
        os.chmod(fake, stat.S_IRWXU)
        ident = os.path.join(self.dir, "gw.key")
        with open(ident, "w") as f:
            f.write("AGE-SECRET-KEY-1PLACEHOLDERNOTAREALKEY\n")
        path = os.path.join(self.dir, "export.json.age")
        with open(path, "wb") as f:
            f.write(b"age-encryption.org/v1\n")
        old = os.environ.get(gw.MASTER_ENV)
        os.environ[gw.MASTER_ENV] = MASTER
        try:
            got = gw.load_psk_registry(path, identity=ident, age_cmd=fake)
        finally:
            if old is None:
                del os.environ[gw.MASTER_ENV]
            else:
                os.environ[gw.MASTER_ENV] = old
        self.assertEqual(got, {b"dev": bytes.fromhex("ab" * 32)})
        with open(log) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], f"ARGV --decrypt --identity {ident} -- {path}")
        names = sorted(line.split("=", 1)[0] for line in lines[1:] if "=" in line)
        self.assertTrue(set(names) <= {"PATH", "PWD", "SHLVL", "_", "OLDPWD"}, names)
        self.assertIn("PATH", names)
        self.assertNotIn(MASTER, "\n".join(lines))


if __name__ == "__main__":
    unittest.main()
