"""The personal-data vault: sealed values open only on their own row and field, under a listed key; the NIK
look-up hash is keyed and per cooperative; missing or malformed keys are refused with the setting named."""

from __future__ import annotations

import base64
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.members.personal_data import PersonalDataKeyError, Vault, new_key

# fixed test keys (test ids must be the same in every process that collects them: pytest-xdist)
K1, K2, LOOKUP = (base64.b64encode(bytes([n]) * 32).decode() for n in (1, 2, 3))
M = uuid.UUID("0c1102d1-1c5c-4d24-9cd7-8ea87f43e035")


def vault(keys: dict[str, str] | None = None, current: str | None = None, lookup: str | None = LOOKUP) -> Vault:
    return Vault.from_settings(keys if keys is not None else {"k1": K1}, current, lookup)


@given(st.text(max_size=200))
def test_a_sealed_value_opens_to_itself_and_never_shows_it(value: str) -> None:
    v = vault()
    sealed = v.seal("kopsyah-bmi", M, "nik", value)
    assert sealed is not None and v.open("kopsyah-bmi", M, "nik", sealed) == value
    if len(value) >= 4:
        assert value.encode() not in sealed
    # a fresh nonce each time: the same value never seals to the same bytes (no equality leak)
    assert v.seal("kopsyah-bmi", M, "nik", value) != sealed


@pytest.mark.parametrize("tenant, member, field", [
    ("koperasi-baik", M, "nik"),            # another cooperative's row
    ("kopsyah-bmi", uuid.uuid4(), "nik"),   # another member's row
    ("kopsyah-bmi", M, "phone"),            # another column
])
def test_a_sealed_value_moved_to_another_row_or_field_does_not_open(tenant: str, member: uuid.UUID, field: str) -> None:
    v = vault()
    sealed = v.seal("kopsyah-bmi", M, "nik", "3603124501800001")
    with pytest.raises(PersonalDataKeyError, match="altered or moved"):
        v.open(tenant, member, field, sealed)


def test_an_altered_value_does_not_open() -> None:
    v = vault()
    sealed = bytearray(v.seal("kopsyah-bmi", M, "name", "Siti Aminah") or b"")
    sealed[-1] ^= 1
    with pytest.raises(PersonalDataKeyError, match="altered"):
        v.open("kopsyah-bmi", M, "name", bytes(sealed))


def test_rotation_old_values_open_while_their_key_is_listed() -> None:
    old = vault({"k1": K1})
    sealed = old.seal("kopsyah-bmi", M, "phone", "081234567801")
    both = vault({"k1": K1, "k2": K2}, current="k2")
    assert Vault.key_id_of(sealed or b"") == "k1"
    assert both.open("kopsyah-bmi", M, "phone", sealed) == "081234567801"
    assert Vault.key_id_of(both.seal("kopsyah-bmi", M, "phone", "x") or b"") == "k2"
    with pytest.raises(PersonalDataKeyError, match="key 'k1', which is not among"):
        vault({"k2": K2}).open("kopsyah-bmi", M, "phone", sealed)


def test_the_nik_lookup_is_keyed_and_per_cooperative() -> None:
    v = vault()
    a = v.nik_lookup("kopsyah-bmi", "3603124501800001")
    assert a == v.nik_lookup("kopsyah-bmi", "3603124501800001") and len(a or b"") == 32
    assert a != v.nik_lookup("koperasi-baik", "3603124501800001")
    assert a != vault(lookup=new_key()).nik_lookup("kopsyah-bmi", "3603124501800001")
    assert v.nik_lookup("kopsyah-bmi", None) is None


@pytest.mark.parametrize("keys, current, lookup, message", [
    ({}, None, LOOKUP, "MEMBERS_PERSONAL_DATA_KEYS is not set"),
    ({"k1": K1, "k2": K2}, None, LOOKUP, "MEMBERS_PERSONAL_DATA_KEY_ID is not set"),
    ({"k1": K1}, "k9", LOOKUP, "'k9' is not among"),
    ({"k1": "not base64!"}, None, LOOKUP, "is not base64"),
    ({"k1": base64.b64encode(b"short").decode()}, None, LOOKUP, "must be 32 bytes"),
    ({"k1": K1}, None, None, "MEMBERS_PERSONAL_DATA_LOOKUP_KEY is not set"),
])
def test_missing_or_malformed_keys_are_refused_with_the_setting_named(
        keys: dict[str, str], current: str | None, lookup: str | None, message: str) -> None:
    with pytest.raises(PersonalDataKeyError, match=message):
        Vault.from_settings(keys, current, lookup)
