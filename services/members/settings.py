from pydantic import PrivateAttr, SecretStr
from pydantic_settings import SettingsConfigDict

from services.members.personal_data import Vault
from shared.settings import ServiceSettings


class MembersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEMBERS_", extra="ignore", populate_by_name=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/washfin_members"
    #: keys that seal names, NIKs and phone numbers (services/members/personal_data.py): key id -> base64 of
    #: 32 bytes, as JSON; old keys stay listed until `washfin members reseal` has moved every value off them
    personal_data_keys: dict[str, SecretStr] = {}
    #: the key that seals new values (may be left out when there is one key)
    personal_data_key_id: str | None = None
    #: the key of the NIK look-up hash (base64 of 32 bytes); changing it needs `washfin members reseal`
    personal_data_lookup_key: SecretStr | None = None

    _vault: Vault | None = PrivateAttr(default=None)

    def vault(self) -> Vault:
        """The personal-data vault of these settings (refuses to build without keys)."""
        if self._vault is None:
            self._vault = Vault.from_settings(
                {k: v.get_secret_value() for k, v in self.personal_data_keys.items()}, self.personal_data_key_id,
                self.personal_data_lookup_key.get_secret_value() if self.personal_data_lookup_key else None)
        return self._vault
