"""The config: TOML tables read into typed, frozen objects.

schema  the tables as dataclasses: each key's type, default and bounds, declared once
values  the checks of single values (addresses, time zones, times, URLs, header text)
load    the file to the objects: one generic reader, unknown keys, places in messages
"""

from digest.config.load import (
    DEFAULT_CONFIG_NAME,
    check_secrets,
    load_config,
    parse_config,
    parse_reader,
    reader_table,
    resolve_config_path,
)
from digest.config.schema import (
    DEFAULT_HF_API,
    DEFAULT_HF_PAGE,
    DEFAULT_MIN_SCORE,
    DELIVERY_METHODS,
    MAX_PAPERS,
    SECURITY_MODES,
    SOURCE_TYPES,
    Config,
    DeliveryConfig,
    DigestSettings,
    SourceConfig,
    Subscriber,
    WebConfig,
)
from digest.config.values import Place

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "DEFAULT_HF_API",
    "DEFAULT_HF_PAGE",
    "DEFAULT_MIN_SCORE",
    "DELIVERY_METHODS",
    "MAX_PAPERS",
    "SECURITY_MODES",
    "SOURCE_TYPES",
    "Config",
    "DeliveryConfig",
    "DigestSettings",
    "SourceConfig",
    "Subscriber",
    "WebConfig",
    "check_secrets",
    "load_config",
    "parse_config",
    "parse_reader",
    "reader_table",
    "Place",
    "resolve_config_path",
]
