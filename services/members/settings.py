from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class MembersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MEMBERS_", extra="ignore", populate_by_name=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/washfin_members"
    #: embedded event source: producing service -> its database URL, e.g. {"loans": "postgresql://..."}
    source_database_urls: dict[str, str] = {}
