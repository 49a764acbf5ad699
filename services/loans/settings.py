from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class LoansSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LOANS_", extra="ignore", populate_by_name=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/washfin_loans"
    #: embedded event source: producing service -> its database URL ({"members": ..., "sanitation": ...})
    source_database_urls: dict[str, str] = {}
    #: business dates ("today") are the cooperatives' local dates
    business_timezone: str = "Asia/Jakarta"
