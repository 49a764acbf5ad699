"""12-factor settings. Each service has its own env prefix (MEMBERS_, LOANS_, ...); platform-wide
values (Kafka, the credential database) fall back to WASHFIN_* and the conventional names."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.kafka import KafkaConnection


def _platform(name: str, *extra: str) -> AliasChoices:
    return AliasChoices(f"WASHFIN_{name}", *extra)


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set ``model_config`` with their env prefix."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 0
    database_url: str = "postgresql://postgres@127.0.0.1:5432/washfin"
    #: the logins a request's SQL runs on (``shared/rls.py``): the service's own, ``washfin_<svc>_app`` (and,
    #: for reporting, ``washfin_reporting_reader``), members of ``washfin_app`` / ``washfin_reader`` that may
    #: connect to this service's database only; unset, ``database_url`` with its user replaced by that login
    #: (and the same password). Never the owner: a request connection has no owner to return to.
    request_database_url: str | None = None
    reader_database_url: str | None = None
    #: a login that may read this service's event log (``events``) and nothing else, for the other services'
    #: embedded event source (``make run`` names ``washfin_<svc>_log``): the migration grants it SELECT and a
    #: policy of its own. It must exist (an administrator makes it); unset: no such grant
    event_log_reader: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    db_pool_min: int = 1
    #: connections for requests; background workers (relay, consumers, schedules) have their own pool
    db_pool_max: int = 10
    db_worker_pool_max: int = 4
    #: connections to the platform database, where every request's API key is looked up: with fewer than
    #: the requests in flight, the look-ups queue (S4's 16 clients against 4: GET p99 2-3x longer)
    platform_pool_max: int = Field(default=4, ge=1)
    #: a request waits at most this long for a connection, then answers 503 with Retry-After
    db_acquire_timeout_s: float = 5.0
    #: at start, how long the service waits for its database to accept connections (it may be restarting)
    #: before it gives up and exits
    db_start_wait_s: float = 120.0
    #: every statement a request runs is cancelled after this long (PostgreSQL statement_timeout); a
    #: request's transaction left idle this long is ended by the server (idle_in_transaction_session_timeout)
    db_statement_timeout_s: float = 30.0
    #: PostgreSQL plan_cache_mode for request connections ("auto": PostgreSQL's default; reporting uses
    #: force_custom_plan so a query is planned for the scope it is given, one cooperative or a hundred)
    db_plan_cache_mode: Literal["auto", "force_custom_plan", "force_generic_plan"] = "auto"
    #: /healthz fails (the orchestrator restarts the process) when the request pool has handed out or taken
    #: back no connection for this long while one was wanted, or a consumer has neither applied a batch nor
    #: found itself caught up for this long
    liveness_stall_s: float = 60.0
    #: seconds between calls of glibc's malloc_trim(0), which gives memory freed inside the heaps back to
    #: the operating system (shared.memory: without it a replica's RSS keeps growing under steady traffic);
    #: 0 turns it off
    malloc_trim_s: float = 60.0
    #: failed API keys (shared.throttle): past this many refusals within the window, from one client address
    #: or at one key id, attempts get 429 with Retry-After until the window has room; 0 turns a limit off
    auth_failures_per_address: int = 30
    auth_failures_per_key: int = 10
    auth_failure_window_s: float = 60.0
    #: the cooperatives' time zone (IANA): business dates ("today") are its local dates; one setting for
    #: every service (<SVC>_BUSINESS_TIMEZONE), the same value in all four
    business_timezone: str = "Asia/Jakarta"
    #: serve the API documentation (/docs, /redoc, /openapi.json); off where a deployment must not describe
    #: its API to whoever reaches it (the routes then answer 404)
    api_docs: bool = True
    #: serve Prometheus metrics at /metrics (no authentication: keep it to the scraper's network, or off)
    metrics: bool = True
    #: how often the interpreter hands itself from a thread to another (``sys.setswitchinterval``; Python's
    #: default 5 ms): the event loop thread gives it up at every select and socket call, and each time waits up
    #: to this long to get it back from a thread doing CPU work (an import's validation, a rebuild's fold), so
    #: a request of a few loop turns waited tens of milliseconds behind one. 0: Python's default
    gil_switch_interval_ms: float = Field(default=1.0, ge=0, le=100)
    #: log every hold of the event loop longer than this many milliseconds, with where (``shared.loopwatch``,
    #: a diagnosis tool: the benchmarks turn it on); 0: off
    loop_watchdog_ms: float = Field(default=0.0, ge=0)
    #: once the app's runtime has started (its lifespan, ``shared.serve``), move every object held then out
    #: of the collector's sight (``gc.freeze``; ``shared.runtime.freeze_heap``; unfrozen as the app stops):
    #: otherwise each full collection, which a consumer's batch of 2,000 events sets off, walks the whole
    #: start-up heap while it holds the event loop (seen: 160-380 ms in reporting during an import, S5N).
    #: False: Python's default
    gc_freeze: bool = True
    log_level: str = "INFO"
    log_json: bool = True
    # where other services' events come from: Kafka (scale-out), or by tailing their event logs
    # directly (the single-machine embedded default)
    event_source: Literal["kafka", "embedded", "none"] = "kafka"
    #: embedded event source: producing service -> its database URL (``{"members": "postgresql://..."}``),
    #: one for each producer the service's consumers name; a service missing one does not start
    source_database_urls: dict[str, str] = {}
    run_relay: bool = True
    run_consumers: bool = True
    #: largest request body accepted (bulk imports included); larger ones get 413 unread
    max_request_bytes: int = 20 * 1024 * 1024
    relay_batch_size: int = 5000
    consumer_batch_size: int = 2000
    platform_database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/washfin_platform",
        validation_alias=_platform("PLATFORM_DATABASE_URL"),
    )
    #: OTLP/HTTP endpoint for traces (e.g. http://otel-collector:4318/v1/traces); unset: not exported
    otlp_endpoint: str | None = Field(default=None, validation_alias=_platform("OTLP_ENDPOINT"))
    kafka_bootstrap_servers: str | None = Field(
        default=None, validation_alias=_platform("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS")
    )
    #: prefix of every topic and consumer group, so several deployments (or test runs) share a cluster
    kafka_namespace: str = Field(default="", validation_alias=_platform("KAFKA_NAMESPACE"))
    kafka_topic_partitions: int = Field(default=6, validation_alias=_platform("KAFKA_TOPIC_PARTITIONS"))
    kafka_replication_factor: int = Field(default=1, validation_alias=_platform("KAFKA_REPLICATION_FACTOR"))
    #: how the service logs in to the brokers: PLAINTEXT (no authentication: a development broker only),
    #: SASL_PLAINTEXT (loopback), SASL_SSL (everywhere else), with its own principal and password
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = Field(
        default="PLAINTEXT", validation_alias=_platform("KAFKA_SECURITY_PROTOCOL"))
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        default="SCRAM-SHA-512", validation_alias=_platform("KAFKA_SASL_MECHANISM"))
    kafka_sasl_username: str | None = Field(default=None, validation_alias=_platform("KAFKA_SASL_USERNAME"))
    kafka_sasl_password: SecretStr | None = Field(default=None, validation_alias=_platform("KAFKA_SASL_PASSWORD"))
    #: CA bundle that signed the brokers' certificates (SSL / SASL_SSL); unset: the system's trust store
    kafka_ssl_cafile: str | None = Field(default=None, validation_alias=_platform("KAFKA_SSL_CAFILE"))

    @field_validator("business_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"business_timezone {value!r} is not an IANA time zone (e.g. Asia/Jakarta, "
                             "Asia/Makassar, Asia/Jayapura)") from None
        return value

    def business_today(self) -> date:
        """Today in the cooperatives' time zone: every business date (default dates, "not in the future")
        is a local date, so a field officer entering today's date at 06:00 WIB, still yesterday in UTC,
        is not told it is the future."""
        return datetime.now(ZoneInfo(self.business_timezone)).date()

    @model_validator(mode="after")
    def _kafka_credentials(self) -> "ServiceSettings":
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs kafka_sasl_username "
                             "and kafka_sasl_password (WASHFIN_KAFKA_SASL_USERNAME / _PASSWORD)")
        return self

    def kafka_connection(self) -> KafkaConnection | None:
        """How this service's clients reach the brokers (None: no Kafka configured)."""
        if not self.kafka_bootstrap_servers:
            return None
        password = self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
        return KafkaConnection(self.kafka_bootstrap_servers, self.kafka_security_protocol, self.kafka_sasl_mechanism,
                               self.kafka_sasl_username, password, self.kafka_ssl_cafile)


def login_url(database_url: str, role: str) -> str:
    """``database_url`` with its user replaced by ``role`` (host, port, database, password and options kept)."""
    from urllib.parse import urlsplit, urlunsplit

    u = urlsplit(database_url)
    netloc = u.netloc.rsplit("@", 1)[-1]
    password = u.password
    auth = role + (f":{password}" if password else "")
    return urlunsplit((u.scheme, f"{auth}@{netloc}", u.path, u.query, u.fragment))

