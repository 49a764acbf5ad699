from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class SanitationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SANITATION_", extra="ignore", populate_by_name=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/washfin_sanitation"
