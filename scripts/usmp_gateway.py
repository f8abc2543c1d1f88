"""Gateway-side keys from usmp-psk (standard library only, Python 3.9+).

A USMP gateway needs the same pre-shared key as each device. ``USMPServer``
takes it in one of two forms, and this module provides both:

* a ``dict[bytes, bytes]`` of device id to key, from the file that
  ``usmp-psk registry export`` writes: :func:`load_psk_registry`;
* a callable ``get_psk(device_id: bytes) -> bytes`` that reads the registry
  itself (``usmp-registry.json``) and derives keys from the master secret
  where the registry holds none: :func:`make_get_psk`. It re-reads the
  registry when the file changes, so a rotation or a revocation takes effect
  without restarting the gateway.

Derivation is the gateway's own (usmp-psk design §2.1 and §3)::

    epoch 0:  hmac.new(master, device_id, hashlib.sha256).digest()
    epoch n:  hmac.new(master, device_id + b"\\x00" + struct.pack(">I", n),
                       hashlib.sha256).digest()

where ``master`` is the UTF-8 bytes of ``USMP_MASTER_SECRET`` as they are.

Errors name files, fields and device ids, never key bytes. Keys are compared
only through their key check values (KCV), in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import struct
import threading
from typing import Any, Callable, Dict, Optional, Tuple, Union

__all__ = [
    "MASTER_ENV",
    "RegistryError",
    "derive_psk",
    "kcv",
    "load_psk_registry",
    "make_get_psk",
]

#: The environment variable the master secret is read from.
MASTER_ENV = "USMP_MASTER_SECRET"

#: The registry file format this module reads.
SCHEMA_VERSION = 1

_KCV_MESSAGE = b"usmp-psk kcv v1"
_ID_RE = re.compile(rb"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")
_HEX_RE = re.compile(r"\A(?:[0-9a-fA-F]{2})+\Z")
_KCV_RE = re.compile(r"\A[0-9a-f]{8}\Z")
_SOURCES = ("derived", "random", "imported")
_STATUSES = ("active", "revoked")


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
    return isinstance(device_id, str) and device_id.isascii() and _ID_RE.match(device_id.encode("ascii")) is not None


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


def load_psk_registry(path: Any) -> dict[bytes, bytes]:
    """Load an export of ``usmp-psk registry export``: ``{id: hex psk}``.

    ``path`` is a file path (a named pipe works) or a binary file object
    such as ``sys.stdin.buffer``. Returns ``{device_id: psk}`` as bytes, the
    dict ``USMPServer(psk=...)`` takes. Revoked devices are not in an
    export. Raises :class:`RegistryError` for a damaged file.
    """
    data, name = _read(path)
    try:
        obj = json.loads(data, object_pairs_hook=_no_duplicates(name))
    except RegistryError:
        raise
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(f"{name}: not a JSON map of device id to hex key") from None
    if not isinstance(obj, dict):
        raise RegistryError(f"{name}: not a JSON map of device id to hex key")
    out: dict[bytes, bytes] = {}
    for device_id, hexkey in obj.items():
        if not _valid_id(device_id):
            raise RegistryError(f"{name}: an entry has an invalid device id")
        if not isinstance(hexkey, str) or not _HEX_RE.match(hexkey):
            raise RegistryError(f"{name}: device {device_id!r}: the key is not hex")
        out[device_id.encode("ascii")] = bytes.fromhex(hexkey)
    return out


# A registry record as the lookup needs it: status, source, epoch, kcv and
# the stored key (None for derived devices and revoked ones).
_Record = Tuple[str, str, int, str, Optional[bytes]]


def _parse_registry(data: bytes, name: str) -> Dict[bytes, _Record]:
    """Parse and validate a registry file (usmp-psk's version 1 schema)."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(f"{name}: not a usmp-psk registry (not JSON)") from None
    if not isinstance(obj, dict) or "version" not in obj:
        raise RegistryError(f"{name}: not a usmp-psk registry (no version)")
    if obj["version"] != SCHEMA_VERSION or isinstance(obj["version"], bool):
        raise RegistryError(f"{name}: unsupported registry version (this module reads version {SCHEMA_VERSION})")
    devices = obj.get("devices")
    if not isinstance(devices, list):
        raise RegistryError(f"{name}: devices: missing or not a list")
    out: Dict[bytes, _Record] = {}
    for i, d in enumerate(devices):
        where = f"{name}: device #{i + 1}"
        if not isinstance(d, dict):
            raise RegistryError(f"{where}: not an object")
        device_id = d.get("id")
        if not _valid_id(device_id):
            raise RegistryError(f"{where}: id: not a valid device id")
        where = f"{name}: device {device_id!r}"
        source, status, epoch, check = d.get("source"), d.get("status"), d.get("epoch"), d.get("kcv")
        if source not in _SOURCES:
            raise RegistryError(f"{where}: source: not one of {', '.join(_SOURCES)}")
        if status not in _STATUSES:
            raise RegistryError(f"{where}: status: not one of {', '.join(_STATUSES)}")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch <= 0xFFFFFFFF:
            raise RegistryError(f"{where}: epoch: not a whole number from 0 to 2^32-1")
        if not isinstance(check, str) or not _KCV_RE.match(check):
            raise RegistryError(f"{where}: kcv: not 8 lowercase hex digits")
        key: Optional[bytes] = None
        hexkey = d.get("psk")
        if source == "derived" and hexkey is not None:
            raise RegistryError(f"{where}: psk: a derived device must not hold key bytes")
        if status == "active" and source != "derived":
            if not isinstance(hexkey, str) or not _HEX_RE.match(hexkey):
                raise RegistryError(f"{where}: psk: missing or not hex")
            key = bytes.fromhex(hexkey)
            if not hmac.compare_digest(kcv(key), check):
                raise RegistryError(f"{where}: kcv: does not match the stored key")
        bid = device_id.encode("ascii")
        if bid in out:
            raise RegistryError(f"{where}: the id appears twice")
        out[bid] = (status, source, epoch, check, key)
    return out


class _RegistryFile:
    """A registry file, re-read whenever its identity or content changes."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._signature: Optional[Tuple[int, int, int, int]] = None
        self._devices: Dict[bytes, _Record] = {}
        self._load()

    @staticmethod
    def _sig(st: os.stat_result) -> Tuple[int, int, int, int]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self) -> None:
        try:
            with open(self._path, "rb") as f:
                sig = self._sig(os.fstat(f.fileno()))
                data = f.read()
        except OSError as e:
            raise RegistryError(f"{self._path}: cannot read the registry: {e.strerror}") from None
        # usmp-psk replaces the file atomically (rename), so what was read
        # is one whole registry: the old or the new.
        self._devices = _parse_registry(data, self._path)
        self._signature = sig

    def devices(self) -> Dict[bytes, _Record]:
        try:
            sig = self._sig(os.stat(self._path))
        except OSError as e:
            raise RegistryError(f"{self._path}: cannot read the registry: {e.strerror}") from None
        if sig != self._signature:
            with self._lock:
                if sig != self._signature:
                    self._load()
        return self._devices

    def has_derived(self) -> bool:
        return any(r[1] == "derived" and r[0] == "active" for r in self._devices.values())


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
) -> Callable[[bytes], bytes]:
    """Return ``get_psk(device_id: bytes) -> bytes`` over a usmp-psk registry.

    ``registry_path`` is the registry JSON file (``usmp-registry.json``).
    ``master`` is the master secret: a str is UTF-8 encoded (like the
    gateway's own ``os.environ["USMP_MASTER_SECRET"].encode()``), bytes are
    used as they are, ``None`` reads ``USMP_MASTER_SECRET``.

    ``get_psk`` returns the device's stored key (random or imported
    devices) or its key derived from the master at the device's epoch,
    checked against the registry's KCV (a mismatch — a wrong master secret —
    raises :class:`RegistryError`). A revoked device raises ``KeyError``. An
    unknown device gets its epoch-0 derived key, what the USMP
    documentation's own ``get_psk`` does, or raises ``KeyError`` when
    ``strict`` is true.

    The registry is read now (errors surface at start-up) and again whenever
    the file changes (inode, size or modification time), so a rotation or a
    revocation takes effect without a restart. If the changed file cannot be
    read or is damaged, ``get_psk`` raises :class:`RegistryError` rather than
    keep using keys that may have been revoked.
    """
    path = os.fspath(registry_path)
    secret = _master_bytes(master)
    registry = _RegistryFile(path)
    if secret is None and (not strict or registry.has_derived()):
        raise RegistryError(
            f"{path}: the master secret is needed (pass master= or set {MASTER_ENV}): "
            + ("unknown devices get derived keys" if not strict else "the registry has derived devices")
        )

    def get_psk(device_id: bytes) -> bytes:
        """Return the PSK of ``device_id`` (bytes); see make_get_psk."""
        if not isinstance(device_id, (bytes, bytearray, memoryview)):
            raise TypeError("device_id must be bytes")
        device_id = bytes(device_id)
        rec = registry.devices().get(device_id)
        if rec is None:
            if strict:
                raise KeyError(device_id)
            return _derive(device_id, 0)
        status, source, epoch, check, key = rec
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
    return get_psk
