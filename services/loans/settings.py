from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class LoansSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LOANS_", extra="ignore", populate_by_name=True)

    database_url: str = "postgresql://postgres@127.0.0.1:5432/washfin_loans"
    #: how often the service looks for financings without book rows (a book recorded before the rows
    #: existed, migration 0003) and writes them; it looks once at start in any case. 0: never
    book_backfill_interval_s: float = 3600.0
    #: loan-book imports (``POST /imports``, ``bulk_import``) that run at once in a process, each on a thread
    #: and a database connection of its own (never the request pool's); more wait their turn
    import_concurrency: int = Field(default=2, ge=1, le=16)
    #: events a consumer (members' and sanitation's events) reads, decodes and applies a batch, in the event
    #: loop that answers requests: 2,000 members' events held it 60-120 ms a batch while a cooperative's
    #: members arrived (``bench`` S5N); 250 hold it about a tenth of that, for a few more commits
    consumer_batch_size: int = Field(default=250, ge=1)
