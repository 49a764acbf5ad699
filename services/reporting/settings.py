from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore", populate_by_name=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/washfin_reporting"
    run_relay: bool = False  # reporting publishes nothing
    #: embedded event source: producing service -> its database URL, e.g. {"members": "postgresql://..."}
    source_database_urls: dict[str, str] = {}
