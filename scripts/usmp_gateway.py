"""Gateway-side keys from usmp-psk (standard library only, Python 3.9+).

A USMP gateway needs the same pre-shared key as each device. ``USMPServer``
takes it in one of two forms, and this module provides both:

* a ``dict[bytes, bytes]`` of device id to key: :func:`load_psk_registry`,
  from the file that ``usmp-psk registry export`` writes (or a pipe), also
  when it is encrypted with age (``identity=``), or from the registry
  database itself;
* a callable ``get_psk(device_id: bytes) -> bytes`` that looks each device
  up in the registry — a SQLite database (``usmp-registry.db``, read-only,
  one query per call) or a PostgreSQL registry (``postgres://…``, cached
  and kept current by the writers' notifications) — and derives keys from
  the master secret where the registry holds none: :func:`make_get_psk`. A
  rotation or a revocation takes effect without restarting the gateway.

Derivation is the gateway's own (docs/design.md, "Key material")::

    epoch 0:  hmac.new(master, device_id, hashlib.sha256).digest()
    epoch n:  hmac.new(master, device_id + b"\\x00" + struct.pack(">I", n),
                       hashlib.sha256).digest()

where ``master`` is the UTF-8 bytes of ``USMP_MASTER_SECRET`` as they are.

An export encrypted with age (``registry export --recipient``) is decrypted
by the ``age`` command (Debian: age) into memory, never into a file, with
an environment of ``PATH`` alone.

Stored keys sealed with ``USMP_REGISTRY_KEY`` (AES-256-GCM) are opened with
the ``cryptography`` package (Debian: python3-cryptography), imported only
when a sealed key is met; a PostgreSQL registry is read with ``psycopg``
(Debian: python3-psycopg), imported only when a postgres:// URL is given.
Otherwise the module needs nothing but the standard library. Errors name files, fields and device ids, never
key bytes. Keys are compared only through their key check values (KCV), in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import select
import sqlite3
import struct
import subprocess
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, Optional, Tuple, Union

__all__ = [
    "MASTER_ENV",
    "REGISTRY_KEY_ENV",
    "RegistryError",
    "derive_psk",
    "kcv",
    "load_psk_registry",
    "make_get_psk",
]

#: The environment variable the master secret is read from.
MASTER_ENV = "USMP_MASTER_SECRET"

#: The environment variable of the key that seals stored keys.
REGISTRY_KEY_ENV = "USMP_REGISTRY_KEY"

#: The registry schema version this module reads.
SCHEMA_VERSION = 2

_KCV_MESSAGE = b"usmp-psk kcv v1"
_ID_RE = re.compile(rb"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")
_HEX_RE = re.compile(r"\A(?:[0-9a-fA-F]{2})+\Z")
_SQLITE_HEADER = b"SQLite format 3\x00"
_AGE_INTRO = b"age-encryption.org/"
_AGE_ARMOR = b"-----BEGIN AGE ENCRYPTED FILE-----"

#: How long the age command may take to decrypt an export (seconds).
AGE_TIMEOUT = 60


class RegistryError(Exception):
    """A registry or export file is missing, damaged or inconsistent.

    The message names the file, the field and the device id, never key
    bytes.
    """


def derive_psk(master: bytes, device_id: bytes, epoch: int = 0) -> bytes:
    """Return the PSK of ``device_id`` derived from ``master`` at ``epoch``.

    Epoch 0 is ``HMAC-SHA256(master, device_id)``, exactly the USMP
    documentation's ``get_psk``; epoch n >= 1 is
    ``HMAC-SHA256(master, device_id || 0x00 || uint32_be(n))``.
    """
    if not 0 <= epoch <= 0xFFFFFFFF:
        raise ValueError("epoch out of range")
    msg = bytes(device_id)
    if epoch:
        msg += b"\x00" + struct.pack(">I", epoch)
    return hmac.new(bytes(master), msg, hashlib.sha256).digest()


def kcv(key: bytes) -> str:
    """Return the key check value of ``key``: 8 lowercase hex digits.

    It is the first 4 bytes of ``HMAC-SHA256(key, b"usmp-psk kcv v1")``, the
    only form in which usmp-psk shows a key.
    """
    return hmac.new(bytes(key), _KCV_MESSAGE, hashlib.sha256).digest()[:4].hex()


def _valid_id(device_id: Any) -> bool:
    """A device id as usmp-psk accepts it: the id syntax, and nothing that
    looks like a key (a file whose columns are swapped must not have a key
    repeated as a "device id" in a message)."""
    return (isinstance(device_id, str) and device_id.isascii() and _ID_RE.match(device_id.encode("ascii")) is not None
            and not looks_like_key(device_id))


_HEX_RUN_RE = re.compile(r"[0-9A-Fa-f]{32}")
_COLON_HEX_RE = re.compile(r"\A[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){15,}\Z")
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def looks_like_key(s: str) -> bool:
    """Does s look like key material rather than a name? usmp-psk's rule
    (psk.LooksLikeKey): 32 or more hex digits in a row, 16 or more
    colon-separated hex bytes, or base64 of exactly 32 bytes."""
    return bool(_HEX_RUN_RE.search(s) or _COLON_HEX_RE.match(s) or _is_base64_key32(s))


def _is_base64_key32(s: str) -> bool:
    padded = s.endswith("=")
    body = s[:-1] if padded else s
    if len(body) != 43:
        return False
    std = url = upper = lower = digit = False
    for c in body:
        if "A" <= c <= "Z":
            upper = True
        elif "a" <= c <= "z":
            lower = True
        elif "0" <= c <= "9":
            digit = True
        elif c in "+/":
            std = True
        elif c in "-_":
            url = True
        else:
            return False
    if std and url:
        return False
    last = body[42]
    value = 62 if last in "+-" else 63 if last in "/_" else _B64_ALPHABET.index(last)
    if value & 3:
        return False
    return padded or (upper and lower and digit)


def _read(source: Any) -> Tuple[bytes, str]:
    """Read all bytes of a path or a binary file object (a pipe works)."""
    if hasattr(source, "read"):
        data = source.read()
        name = getattr(source, "name", "<stream>")
        if isinstance(data, str):
            data = data.encode("utf-8")
        return data, str(name)
    path = os.fspath(source)
    try:
        with open(path, "rb") as f:
            return f.read(), str(path)
    except OSError as e:
        raise RegistryError(f"{path}: cannot read: {e.strerror}") from None


def _no_duplicates(name: str) -> Callable[[list], Dict[str, Any]]:
    def hook(pairs: list) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                where = f"device {k!r}" if _valid_id(k) else "a key"
                raise RegistryError(f"{name}: {where} appears twice")
            out[k] = v
        return out

    return hook


def _is_database(path: Any) -> bool:
    """Is path a registry database (a SQLite file) rather than an export?"""
    if hasattr(path, "read"):
        return False
    try:
        with open(os.fspath(path), "rb") as f:
            return f.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        return False


def _sealer(name: str) -> Optional[Callable[[str, bytes], bytes]]:
    """Return open(device_id, blob) -> key for keys sealed with
    USMP_REGISTRY_KEY, or None when the variable is not set."""
    value = os.environ.get(REGISTRY_KEY_ENV)
    if value is None:
        return None
    value = value.strip()
    if len(value) != 64 or not _HEX_RE.match(value):
        raise RegistryError(f"${REGISTRY_KEY_ENV}: want exactly 64 hex digits (a 256-bit key)")
    key = bytes.fromhex(value)
    enc = hmac.new(key, b"usmp-psk registry psk encryption v1", hashlib.sha256).digest()
    key_id = hmac.new(key, b"usmp-psk registry key id v1", hashlib.sha256).digest()[:4]
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise RegistryError(
            f"{name}: the registry's keys are sealed with ${REGISTRY_KEY_ENV}: opening them needs the "
            "cryptography package (Debian: apt-get install python3-cryptography)"
        ) from None
    aead = AESGCM(enc)

    def open_sealed(device_id: str, blob: bytes) -> bytes:
        if len(blob) < 1 + 4 + 12 + 16 + 1 or blob[0] != 1:
            raise RegistryError(f"{name}: device {device_id!r}: psk_sealed: damaged")
        if blob[1:5] != key_id:
            raise RegistryError(
                f"{name}: device {device_id!r}: sealed with registry key {blob[1:5].hex()}, "
                f"not with ${REGISTRY_KEY_ENV} (key {key_id.hex()})"
            )
        header = blob[:17]
        ad = b"usmp-psk registry psk v1\x00" + header + device_id.encode("ascii")
        try:
            return aead.decrypt(header[5:], blob[17:], ad)
        except Exception:
            raise RegistryError(f"{name}: device {device_id!r}: psk_sealed: cannot be decrypted (damaged, or moved from another row)") from None

    return open_sealed


def _legacy_error(path: Any) -> "RegistryError":
    return RegistryError(
        f"{path}: a JSON registry of an earlier usmp-psk: move it with "
        f"'usmp-psk registry migrate --registry {path} --to usmp-registry.db' and use the database"
    )


def _is_legacy(obj: Any) -> bool:
    """Is obj a JSON registry of an earlier usmp-psk (not an export)?"""
    return isinstance(obj, dict) and "version" in obj and isinstance(obj.get("devices"), list)


class _Database:
    """A registry database, read-only: one query per look-up, so what a
    writer committed is seen by the next call."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        if not _is_database(path):
            if not os.path.lexists(path):
                raise RegistryError(f"{path}: the registry does not exist")
            if str(path).endswith(".json"):
                raise _legacy_error(path)
            raise RegistryError(f"{path}: not a usmp-psk registry database (a SQLite file)")
        uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 5000")
            row = self._db.execute("SELECT schema_version FROM usmp_meta WHERE id = 1").fetchone()
        except sqlite3.Error as e:
            raise RegistryError(f"{path}: cannot read the registry: {e}") from None
        if row is None or row[0] != SCHEMA_VERSION:
            raise RegistryError(f"{path}: unsupported registry schema (this module reads version {SCHEMA_VERSION})")
        self._open_sealed: Optional[Callable[[str, bytes], bytes]] = None
        self._sealer_loaded = False

    def _unseal(self, device_id: str, blob: bytes) -> bytes:
        if not self._sealer_loaded:
            self._open_sealed = _sealer(self._path)
            self._sealer_loaded = True
        if self._open_sealed is None:
            raise RegistryError(f"{self._path}: device {device_id!r}: the key is sealed; set ${REGISTRY_KEY_ENV} to the registry key")
        return self._open_sealed(device_id, blob)

    def _record(self, row: Tuple) -> Tuple[str, str, int, str, Optional[bytes]]:
        return _check_record(self, row)

    def name(self) -> str:
        return self._path

    _COLUMNS = "id, status, source, epoch, kcv, psk, psk_sealed"

    def lookup(self, device_id: str) -> Optional[Tuple[str, str, int, str, Optional[bytes]]]:
        try:
            with self._lock:
                row = self._db.execute(f"SELECT {self._COLUMNS} FROM usmp_devices WHERE id = ?", (device_id,)).fetchone()
        except sqlite3.Error as e:
            raise RegistryError(f"{self._path}: cannot read the registry: {e}") from None
        return None if row is None else self._record(row)

    def active(self) -> Dict[str, Tuple[str, str, int, str, Optional[bytes]]]:
        try:
            with self._lock:
                rows = self._db.execute(f"SELECT {self._COLUMNS} FROM usmp_devices WHERE status = 'active' ORDER BY id").fetchall()
        except sqlite3.Error as e:
            raise RegistryError(f"{self._path}: cannot read the registry: {e}") from None
        return {row[0]: self._record(row) for row in rows}

    def has_derived(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM usmp_devices WHERE source = 'derived' AND status = 'active' LIMIT 1").fetchone() is not None


#: How long a PostgreSQL gateway may serve keys from its cache without a
#: live notification listener (seconds): past it, every look-up asks the
#: database, and fails rather than serve a key that may have been revoked.
DEFAULT_MAX_STALE = 5.0

#: The channel prefix usmp-psk's writers notify on (and the schema after it).
NOTIFY_CHANNEL = "usmp_registry_"

_KEYWORD_DSN = re.compile(r"\A\s*(host|hostaddr|port|dbname|user|password|sslmode|service|passfile|options)\s*=", re.I)


def _is_postgres(registry: Any) -> bool:
    return isinstance(registry, str) and registry.startswith(("postgres://", "postgresql://"))


def _check_pg_url(url: str) -> None:
    """Refuse a URL that holds a password, without repeating it."""
    parsed = urllib.parse.urlsplit(url)
    query = {k.lower() for k in urllib.parse.parse_qs(parsed.query)}
    if parsed.password is not None or "password" in query or "sslpassword" in query:
        raise RegistryError(
            "the registry URL holds a password: remove it and put it in $PGPASSWORD or ~/.pgpass "
            "(or the file $PGPASSFILE names, mode 0600)"
        )


class _Postgres:
    """A PostgreSQL registry. Looked-up devices are cached; a listener
    thread LISTENs on the registry's channel and drops what a writer
    changed (the writers NOTIFY with their commit), so a rotation or a
    revocation reaches the gateway within moments. The cache is used only
    while the listener is known to be connected (it confirms it every half
    second); after ``max_stale`` seconds without that, look-ups go to the
    database, and fail when it cannot be reached."""

    _COLUMNS = "id, status, source, epoch, kcv, NULL, psk_sealed"

    def __init__(self, url: str, max_stale: float) -> None:
        _check_pg_url(url)
        try:
            import psycopg
        except ImportError:
            raise RegistryError(
                "reading a PostgreSQL registry needs psycopg (Debian: apt-get install python3-psycopg)"
            ) from None
        self._psycopg = psycopg
        self._url = url
        self._max_stale = max_stale
        self._lock = threading.Lock()
        self._cache: Dict[str, Tuple[str, str, int, str, Optional[bytes]]] = {}
        self._gen = 0
        self._alive = 0.0
        self._conn = None
        self._open_sealed: Optional[Callable[[str, bytes], bytes]] = None
        self._sealer_loaded = False
        with self._lock:
            self._schema = self._connect()
        self._stop = threading.Event()
        self._listener = threading.Thread(target=self._listen, name="usmp-registry-listener", daemon=True)
        self._listener.start()

    def _error(self, what: str, err: Exception) -> RegistryError:
        # psycopg's messages carry no password (the URL holds none, and
        # libpq does not print the one from PGPASSWORD or .pgpass).
        return RegistryError(f"{self._url}: {what}: {str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}")

    def _connect(self) -> str:
        """Open the query connection (the lock is held); return the schema."""
        try:
            self._conn = self._psycopg.connect(self._url, autocommit=True, connect_timeout=5)
            row = self._conn.execute("SELECT schema_version, current_schema() FROM usmp_meta WHERE id = 1").fetchone()
        except self._psycopg.Error as e:
            self._conn = None
            raise self._error("cannot read the registry", e) from None
        if row is None or row[0] != SCHEMA_VERSION:
            raise RegistryError(f"{self._url}: unsupported registry schema (this module reads version {SCHEMA_VERSION})")
        return row[1]

    def _forget(self, payload: str) -> None:
        with self._lock:
            self._gen += 1
            if payload == "*":
                self._cache.clear()
                return
            for device_id in payload.split():
                self._cache.pop(device_id, None)

    def _listen(self) -> None:
        from psycopg import sql

        channel = sql.Identifier(NOTIFY_CHANNEL + self._schema)
        while not self._stop.is_set():
            try:
                conn = self._psycopg.connect(self._url, autocommit=True, connect_timeout=5)
            except self._psycopg.Error:
                self._stop.wait(0.5)
                continue
            try:
                conn.add_notify_handler(lambda n: self._forget(n.payload))
                conn.execute(sql.SQL("LISTEN {}").format(channel))
                self._forget("*")  # anything may have changed while no one listened
                while not self._stop.is_set():
                    self._alive = time.monotonic()
                    select.select([conn.fileno()], [], [], 0.5)
                    conn.execute("SELECT 1")  # delivers pending notifications; fails on a lost connection
            except (self._psycopg.Error, OSError, ValueError):
                self._alive = 0.0
            finally:
                try:
                    conn.close()
                except Exception:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._listener.join(timeout=2)
        with self._lock:
            if self._conn is not None:
                self._conn.close()

    def _unseal(self, device_id: str, blob: bytes) -> bytes:
        if not self._sealer_loaded:
            self._open_sealed = _sealer(self._url)
            self._sealer_loaded = True
        if self._open_sealed is None:
            raise RegistryError(f"{self._url}: device {device_id!r}: the key is sealed; set ${REGISTRY_KEY_ENV} to the registry key")
        return self._open_sealed(device_id, blob)

    def _fresh(self) -> bool:
        return self._alive > 0 and time.monotonic() - self._alive <= self._max_stale

    def lookup(self, device_id: str) -> Optional[Tuple[str, str, int, str, Optional[bytes]]]:
        with self._lock:
            if self._fresh() and device_id in self._cache:
                return self._cache[device_id]
            gen = self._gen
            row = self._query(device_id)
            rec = None if row is None else _check_record(self, row)
            if self._gen == gen and self._fresh() and rec is not None:
                self._cache[device_id] = rec
            return rec

    def _query(self, device_id: str):
        """Read one device (the lock is held), reconnecting once."""
        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    self._connect()
                return self._conn.execute(f"SELECT {self._COLUMNS} FROM usmp_devices WHERE id = %s", (device_id,)).fetchone()
            except self._psycopg.Error as e:
                self._conn = None
                if attempt == 2:
                    raise self._error("cannot read the registry", e) from None
        return None

    def name(self) -> str:
        return self._url

    def has_derived(self) -> bool:
        with self._lock:
            try:
                return self._conn.execute("SELECT 1 FROM usmp_devices WHERE source = 'derived' AND status = 'active' LIMIT 1").fetchone() is not None
            except self._psycopg.Error as e:
                raise self._error("cannot read the registry", e) from None


def _check_record(db: Any, row: Tuple) -> Tuple[str, str, int, str, Optional[bytes]]:
    """A device row (id, status, source, epoch, kcv, psk, psk_sealed) as
    (status, source, epoch, kcv, stored key or None), the key checked
    against its KCV."""
    device_id, status, source, epoch, check, plain, sealed = row
    key: Optional[bytes] = None
    if status == "active" and source != "derived":
        key = bytes(plain) if plain is not None else db._unseal(device_id, bytes(sealed or b""))
        if not hmac.compare_digest(kcv(key), check):
            raise RegistryError(f"{db.name()}: device {device_id!r}: kcv: does not match the stored key")
    return status, source, int(epoch), check, key


def _is_age(head: bytes) -> bool:
    """Does a file starting with head hold age ciphertext (binary or armored)?"""
    return head.startswith(_AGE_INTRO) or head.lstrip().startswith(_AGE_ARMOR)


def _age_failure(stderr: bytes, returncode: int, identity: str) -> str:
    """Say why age failed, in our words.

    age's own message is not passed on: for input that is no age file it
    quotes the input's first line, which for a plaintext export holds a key.
    """
    text = stderr.decode("utf-8", "replace")
    if "no identity matched" in text:
        return f"the identity {identity} is not one the export was encrypted to (wrong identity file, or an export for another gateway)"
    if "passphrase" in text:
        return f"the identity {identity} is protected by a passphrase, which cannot be asked for here: give the gateway an unencrypted identity file (mode 0600)"
    if "failed to open file" in text or "no such file" in text.lower():
        return f"cannot read the identity {identity}"
    if "identity" in text or "secret key" in text or "error at line" in text:
        return f"{identity} is not an age identity file (age-keygen writes one)"
    if "payload" in text:
        return "the export is damaged: its ciphertext does not authenticate (cut short or altered)"
    if "header" in text or "intro" in text or "armor" in text:
        return "not an age-encrypted export, or its header is damaged"
    return f"age could not decrypt the export (exit status {returncode})"


def _age_decrypt(source: Any, identity: Union[str, "os.PathLike[str]"], age_cmd: str) -> Tuple[bytes, str]:
    """Decrypt an age-encrypted export with the age command, into memory.

    ``source`` is a path (given to age as its input) or a binary file
    object (its bytes go to age's standard input). The plaintext comes back
    through a pipe: no plaintext file is ever written. age runs with an
    environment of PATH alone (it needs nothing else, and the gateway's
    environment may hold USMP_MASTER_SECRET), in a session of its own, so
    a passphrase-protected identity fails at once instead of prompting on
    the gateway's terminal.
    """
    ident = os.fspath(identity)
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            data = data.encode("utf-8")
        name = str(getattr(source, "name", "<stream>"))
        head, argv, stdin, feed = data[:64], [age_cmd, "--decrypt", "--identity", ident], None, data
    else:
        name = os.fspath(source)
        try:
            with open(name, "rb") as f:
                head = f.read(64)
        except OSError as e:
            raise RegistryError(f"{name}: cannot read: {e.strerror}") from None
        argv, stdin, feed = [age_cmd, "--decrypt", "--identity", ident, "--", name], subprocess.DEVNULL, None
    if not _is_age(head):
        raise RegistryError(f"{name}: not an age-encrypted export (for a plaintext export, leave out identity=)")
    if not os.path.isfile(ident):
        raise RegistryError(f"{name}: the identity {ident} does not exist or is not a file")
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    try:
        proc = subprocess.run(
            argv, input=feed, stdin=stdin, capture_output=True, env=env,
            timeout=AGE_TIMEOUT, start_new_session=True, check=False,
        )
    except FileNotFoundError:
        raise RegistryError(f"{name}: the age command ({age_cmd}) is not installed (Debian: apt-get install age)") from None
    except subprocess.TimeoutExpired:
        raise RegistryError(f"{name}: age did not finish within {AGE_TIMEOUT} s") from None
    except OSError as e:
        raise RegistryError(f"{name}: cannot run age ({age_cmd}): {e.strerror}") from None
    if proc.returncode != 0:
        raise RegistryError(f"{name}: {_age_failure(proc.stderr, proc.returncode, ident)}")
    return proc.stdout, name


def _load_export(path: Any, decrypted: Optional[Tuple[bytes, str]] = None) -> dict[bytes, bytes]:
    data, name = decrypted if decrypted is not None else _read(path)
    if decrypted is None and _is_age(data[:64]):
        raise RegistryError(f"{name}: the export is encrypted with age: pass identity= (the gateway's age identity file)")
    try:
        obj = json.loads(data, object_pairs_hook=_no_duplicates(name))
    except RegistryError:
        raise
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(f"{name}: not a JSON map of device id to hex key") from None
    if not isinstance(obj, dict):
        raise RegistryError(f"{name}: not a JSON map of device id to hex key")
    if _is_legacy(obj):
        raise _legacy_error(name)
    out: dict[bytes, bytes] = {}
    for device_id, hexkey in obj.items():
        if not _valid_id(device_id):
            hint = " that looks like a key (are the id and the key swapped?)" if isinstance(device_id, str) and looks_like_key(device_id) else ""
            raise RegistryError(f"{name}: an entry has an invalid device id{hint}")
        if not isinstance(hexkey, str) or not _HEX_RE.match(hexkey):
            raise RegistryError(f"{name}: device {device_id!r}: the key is not hex")
        out[device_id.encode("ascii")] = bytes.fromhex(hexkey)
    return out


def load_psk_registry(
    path: Any,
    master: Union[str, bytes, None] = None,
    identity: Union[str, "os.PathLike[str]", None] = None,
    age_cmd: str = "age",
) -> dict[bytes, bytes]:
    """Load the keys of every active device: ``{device_id: psk}`` as bytes,
    the dict ``USMPServer(psk=...)`` takes.

    ``path`` is an export of ``usmp-psk registry export`` (``{id: hex psk}``;
    a file path, a named pipe, or a binary file object such as
    ``sys.stdin.buffer``) or the registry database (``usmp-registry.db``),
    whose derived keys come from ``master`` (see :func:`make_get_psk`).
    Revoked devices are left out. Raises :class:`RegistryError` for a
    damaged file.

    An export encrypted with age (``registry export --recipient``) needs
    ``identity``, the path of the gateway's age identity file: the ``age``
    command (``age_cmd``) decrypts it into memory. A wrong identity, a
    damaged file or a missing ``age`` raise :class:`RegistryError`, whose
    message never holds key bytes.
    """
    if identity is not None:
        return _load_export(path, _age_decrypt(path, identity, age_cmd))
    if not _is_database(path):
        return _load_export(path)
    name = os.fspath(path)
    db = _Database(name)
    secret = _master_bytes(master)
    out: dict[bytes, bytes] = {}
    for device_id, (_, source, epoch, check, key) in db.active().items():
        if key is None:
            if secret is None:
                raise RegistryError(f"{name}: the registry has derived devices: the master secret is needed (pass master= or set {MASTER_ENV})")
            key = derive_psk(secret, device_id.encode("ascii"), epoch)
            if not hmac.compare_digest(kcv(key), check):
                raise RegistryError(f"{name}: device {device_id!r}: the master secret does not reproduce the registry's KCV at epoch {epoch} (wrong master secret?)")
        out[device_id.encode("ascii")] = key
    return out


def _master_bytes(master: Union[str, bytes, bytearray, memoryview, None]) -> Optional[bytes]:
    if master is None:
        value = os.environ.get(MASTER_ENV)
        if value is None:
            return None
        master = value
    if isinstance(master, str):
        # Exactly the gateway's os.environ[...].encode(): UTF-8, no trimming.
        b = master.encode("utf-8")
    elif isinstance(master, (bytes, bytearray, memoryview)):
        b = bytes(master)
    else:
        raise TypeError("master must be str, bytes or None")
    if not b:
        raise ValueError("the master secret is empty")
    return b


def make_get_psk(
    registry_path: Union[str, "os.PathLike[str]"],
    master: Union[str, bytes, None] = None,
    strict: bool = False,
    max_stale: float = DEFAULT_MAX_STALE,
) -> Callable[[bytes], bytes]:
    """Return ``get_psk(device_id: bytes) -> bytes`` over a usmp-psk registry.

    ``registry_path`` is the registry database (``usmp-registry.db``), opened
    read-only with Python's ``sqlite3``, or a PostgreSQL registry URL
    (``postgres://user@host/db``, no password in it: libpq takes it from
    ``PGPASSWORD`` or ``~/.pgpass``), read with psycopg: looked-up devices are
    cached, and the cache follows the writers' notifications (LISTEN), so a
    rotation or revocation reaches the gateway within a second; it is never
    used longer than ``max_stale`` seconds without a live listener (then
    look-ups ask the database, and fail rather than serve a revoked key).
    ``get_psk.close()`` stops the listener. ``master`` is the master secret: a
    str is UTF-8 encoded (like the gateway's own
    ``os.environ["USMP_MASTER_SECRET"].encode()``), bytes are used as they
    are, ``None`` reads ``USMP_MASTER_SECRET``.

    ``get_psk`` looks the device up (one query per call: a rotation or a
    revocation is seen at the next call, without a restart) and returns its
    stored key (random or imported devices; sealed keys are opened with
    ``USMP_REGISTRY_KEY``) or its key derived from the master at the
    device's epoch, checked against the registry's KCV (a mismatch — a wrong
    master secret — raises :class:`RegistryError`). A revoked device raises
    ``KeyError``. An unknown device gets its epoch-0 derived key, what the
    USMP documentation's own ``get_psk`` does, or raises ``KeyError`` when
    ``strict`` is true.
    """
    path = registry_path if _is_postgres(registry_path) else os.fspath(registry_path)
    if isinstance(path, str) and _KEYWORD_DSN.match(path):
        raise RegistryError("a keyword connection string is no registry location: give a postgres://user@host/database URL")
    secret = _master_bytes(master)
    db: Any = _Postgres(path, max_stale) if _is_postgres(path) else _Database(path)
    path = db.name()
    if secret is None and (not strict or db.has_derived()):
        raise RegistryError(
            f"{path}: the master secret is needed (pass master= or set {MASTER_ENV}): "
            + ("unknown devices get derived keys" if not strict else "the registry has derived devices")
        )

    def get_psk(device_id: bytes) -> bytes:
        """Return the PSK of ``device_id`` (bytes); see make_get_psk."""
        if not isinstance(device_id, (bytes, bytearray, memoryview)):
            raise TypeError("device_id must be bytes")
        device_id = bytes(device_id)
        if _ID_RE.match(device_id) is None:
            raise KeyError(device_id)
        rec = db.lookup(device_id.decode("ascii"))
        if rec is None:
            if strict:
                raise KeyError(device_id)
            return _derive(device_id, 0)
        status, _source, epoch, check, key = rec
        if status != "active":
            raise KeyError(device_id)
        if key is not None:
            return key
        derived = _derive(device_id, epoch)
        if not hmac.compare_digest(kcv(derived), check):
            raise RegistryError(
                f"{path}: device {device_id.decode('ascii')!r}: the master secret does not reproduce "
                f"the registry's KCV at epoch {epoch} (wrong master secret?)"
            )
        return derived

    def _derive(device_id: bytes, epoch: int) -> bytes:
        if secret is None:
            raise RegistryError(f"{path}: the master secret is needed (pass master= or set {MASTER_ENV})")
        return derive_psk(secret, device_id, epoch)

    get_psk.registry_path = path  # type: ignore[attr-defined]
    get_psk.close = getattr(db, "close", lambda: None)  # type: ignore[attr-defined]
    return get_psk
