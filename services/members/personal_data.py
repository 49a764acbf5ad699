"""Personal data sealed by the application before it reaches the database (issue 14 item 3).

A member's name, NIK and phone live only in ``member_personal_data``, never in an event. Each value is
sealed there with AES-256-GCM (the ``cryptography`` package):

    sealed = b"\\x01" | len(key_id) | key_id | nonce (12 bytes) | ciphertext and tag

The associated data binds the ciphertext to its row and field (cooperative, member id, field name), so a
sealed NIK copied onto another member's row, or into the phone column, does not open. The key id travels
with the ciphertext: keys rotate without a flag day (``washfin members reseal`` re-seals every value under
the current key; the old key can then be removed).

Look-up and uniqueness by NIK use a keyed hash (HMAC-SHA-256 over the cooperative and the NIK) with a key
of its own, so the database holds no NIK in the clear and no unkeyed hash anyone could reverse by
enumerating the 16-digit space.

Keys come from settings (``MEMBERS_PERSONAL_DATA_KEYS``: a JSON object key id -> base64 of 32 bytes;
``MEMBERS_PERSONAL_DATA_KEY_ID``: the key that seals new values; ``MEMBERS_PERSONAL_DATA_LOOKUP_KEY``:
base64 of 32 bytes), i.e. from the environment or a secret store; ``washfin members new-key`` prints a
fresh one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from asyncpg import UniqueViolationError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT = 1
NONCE_BYTES = 12
KEY_BYTES = 32
#: the fields sealed in member_personal_data (the members domain's PERSONAL_FIELDS)
SEALED_FIELDS = ("name", "nik", "phone")


class ResealConflict(Exception):
    """Re-sealing found two members of a cooperative with one NIK: the operator must correct one."""


class PersonalDataKeyError(ValueError):
    """A missing, malformed or unknown personal-data key: the service cannot seal or open."""


def new_key() -> str:
    """A fresh key: base64 of 32 random bytes."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def _decode_key(name: str, value: str) -> bytes:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise PersonalDataKeyError(f"{name} is not base64") from None
    if len(raw) != KEY_BYTES:
        raise PersonalDataKeyError(f"{name} must be {KEY_BYTES} bytes (base64 of 32 random bytes), not {len(raw)}")
    return raw


@dataclass(frozen=True)
class Vault:
    """Seals and opens personal values; computes the NIK look-up hash."""

    keys: Mapping[str, AESGCM]
    current: str
    lookup_key: bytes

    @classmethod
    def from_settings(cls, keys: Mapping[str, str], current: str | None, lookup_key: str | None) -> Vault:
        if not keys:
            raise PersonalDataKeyError("MEMBERS_PERSONAL_DATA_KEYS is not set: the members service seals names, NIKs "
                            "and phone numbers with it (a JSON object key id -> base64 of 32 bytes; "
                            "`washfin members new-key` prints one)")
        if current is None:
            if len(keys) != 1:
                raise PersonalDataKeyError("MEMBERS_PERSONAL_DATA_KEY_ID is not set and there are several keys: name the "
                                "one that seals new values")
            current = next(iter(keys))
        if current not in keys:
            raise PersonalDataKeyError(f"MEMBERS_PERSONAL_DATA_KEY_ID {current!r} is not among MEMBERS_PERSONAL_DATA_KEYS")
        for kid in keys:
            if not kid or len(kid.encode()) > 64 or not kid.isascii():
                raise PersonalDataKeyError(f"personal-data key id {kid!r} must be 1-64 ASCII characters")
        if not lookup_key:
            raise PersonalDataKeyError("MEMBERS_PERSONAL_DATA_LOOKUP_KEY is not set: NIKs are found and kept unique by a "
                            "keyed hash made with it (base64 of 32 bytes)")
        return cls({kid: AESGCM(_decode_key(f"personal-data key {kid!r}", v)) for kid, v in keys.items()},
                   current, _decode_key("MEMBERS_PERSONAL_DATA_LOOKUP_KEY", lookup_key))

    @staticmethod
    def _aad(tenant_id: str, member_id: uuid.UUID | str, field: str) -> bytes:
        return f"washfin.members\x1f{tenant_id}\x1f{member_id}\x1f{field}".encode()

    def seal(self, tenant_id: str, member_id: uuid.UUID | str, field: str, value: str | None) -> bytes | None:
        if value is None:
            return None
        kid = self.current.encode()
        nonce = os.urandom(NONCE_BYTES)
        body = self.keys[self.current].encrypt(nonce, value.encode(), self._aad(tenant_id, member_id, field))
        return bytes([FORMAT, len(kid)]) + kid + nonce + body

    @staticmethod
    def key_id_of(sealed: bytes) -> str:
        if len(sealed) < 2 or sealed[0] != FORMAT:
            raise PersonalDataKeyError("not a sealed personal value (unknown format)")
        return sealed[2:2 + sealed[1]].decode()

    def open(self, tenant_id: str, member_id: uuid.UUID | str, field: str, sealed: bytes | None) -> str | None:
        if sealed is None:
            return None
        kid = self.key_id_of(sealed)
        key = self.keys.get(kid)
        if key is None:
            raise PersonalDataKeyError(f"personal data sealed with key {kid!r}, which is not among MEMBERS_PERSONAL_DATA_KEYS")
        start = 2 + sealed[1]
        nonce, body = sealed[start:start + NONCE_BYTES], sealed[start + NONCE_BYTES:]
        try:
            return key.decrypt(nonce, body, self._aad(tenant_id, member_id, field)).decode()
        except InvalidTag:
            raise PersonalDataKeyError(f"a sealed {field} of member {member_id} does not open: it was altered or moved "
                            "from another row") from None

    def nik_lookup(self, tenant_id: str, nik: str | None) -> bytes | None:
        """The keyed hash that finds a NIK within a cooperative (and keeps it unique there)."""
        if nik is None:
            return None
        return hmac.new(self.lookup_key, f"{tenant_id}\x1f{nik}".encode(), hashlib.sha256).digest()


async def reseal(conn: Any, vault: Vault, batch: int = 500) -> dict[str, Any]:
    """Re-seal every personal value not sealed under the current key, and recompute every NIK look-up hash
    (so a new look-up key takes effect too): ``washfin members reseal``, after a key is added and made
    current. Runs as the table's owner (its policy spans cooperatives), in batches of ``batch`` rows, each
    in its own transaction; safe to repeat and to interrupt. Returns what it found and did."""
    before: dict[str, int] = {}
    resealed = 0
    after_key: tuple[str, Any] = ("", None)
    while True:
        async with conn.transaction():
            rows = await conn.fetch(
                """SELECT tenant_id, member_id, name_sealed, nik_sealed, phone_sealed FROM member_personal_data
                   WHERE (tenant_id, member_id) > ($1, $2::uuid) OR $2::uuid IS NULL
                   ORDER BY tenant_id, member_id LIMIT $3 FOR UPDATE""", after_key[0], after_key[1], batch)
            if not rows:
                break
            for r in rows:
                tenant, member = r["tenant_id"], r["member_id"]
                kids = {Vault.key_id_of(r[f"{f}_sealed"]) for f in SEALED_FIELDS if r[f"{f}_sealed"] is not None}
                for kid in kids:
                    before[kid] = before.get(kid, 0) + 1
                clear = {f: vault.open(tenant, member, f, r[f"{f}_sealed"]) for f in SEALED_FIELDS}
                lookup = vault.nik_lookup(tenant, clear["nik"])
                try:
                    resealed += await _reseal_row(conn, vault, tenant, member, kids, clear, lookup)
                except UniqueViolationError:
                    raise ResealConflict(
                        f"cooperative {tenant}: member {member} has the NIK of another member (registered while "
                        "the look-up key changed); correct one of them, then run reseal again") from None
            after_key = (rows[-1]["tenant_id"], rows[-1]["member_id"])
    return {"current_key": vault.current, "rows_by_key_before": before, "resealed": resealed}


async def _reseal_row(conn: Any, vault: Vault, tenant: str, member: Any, kids: set[str],
                      clear: dict[str, str | None], lookup: bytes | None) -> int:
    if kids == {vault.current}:
        await conn.execute("UPDATE member_personal_data SET nik_lookup = $3 "
                           "WHERE tenant_id = $1 AND member_id = $2 AND nik_lookup IS DISTINCT FROM $3",
                           tenant, member, lookup)
        return 0
    await conn.execute(
        """UPDATE member_personal_data SET name_sealed = $3, nik_sealed = $4, phone_sealed = $5,
                  nik_lookup = $6 WHERE tenant_id = $1 AND member_id = $2""",
        tenant, member, *(vault.seal(tenant, member, f, clear[f]) for f in SEALED_FIELDS), lookup)
    return 1
