from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class SanitationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SANITATION_", extra="ignore", populate_by_name=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/washfin_sanitation"
    #: how often lapsed contractor certifications are recorded on their own (seconds; 0: never, leaving it
    #: to POST /contractors/certification-expiries): hourly, so a lapse is recorded within the hour the
    #: cooperatives' day turns
    certification_sweep_interval_s: float = 3600.0
