"""The operator's configuration: one table of settings, resolved in one place.

Every setting the operator reads is a row of `table` (key, kind, default, parser,
meaning, secret or not), so a value has exactly one meaning, one default and one
error message, and the startup log can say where each value came from. Resolution
order, as the seed system did it:

    environment → ConfigMap data (a secret: Secret data) → a file → default

The rooms: `parsers` (text → typed value, or a `ConfigError` naming key and
source), `table` (the rows), `resolve` (pure: mappings in, frozen `OperatorConfig`
and `WebhookConfig` out, with sources), `sources` (the file, the ConfigMap and
Secret, and `load_config` at startup). Nothing here knows a provider: the place that
builds providers turns these plain values into theirs.
"""

from reef_operator.config.parsers import ConfigError
from reef_operator.config.resolve import (
    SOURCE_DEFAULT,
    SOURCE_ENV,
    OperatorConfig,
    WebhookConfig,
    is_given,
    read_env,
    resolve,
    webhook_config,
)
from reef_operator.config.sources import (
    config_file_path,
    load_config,
    load_file,
    read_cluster_sources,
)
from reef_operator.config.table import (
    BY_KEY,
    CONFIGMAP_KEYS,
    DEFAULT_CONFIGMAP,
    DEFAULT_PLATFORM_BURST,
    DEFAULT_PLATFORM_RATE,
    DEFAULT_SECRET,
    KEYS,
    KUBERNETES_SERVICE_HOST,
    LOCATION_SETTINGS,
    NOT_SET,
    OPERATOR_SETTINGS,
    REEF_CONFIG_FILE,
    REEF_CONFIGMAP,
    REEF_NAMESPACE,
    REEF_SECRET,
    SECRET_KEYS,
    SETTINGS,
    WEBHOOK_SETTINGS,
    Setting,
    default_local_root,
    shown,
)

__all__ = [
    "BY_KEY", "CONFIGMAP_KEYS", "DEFAULT_CONFIGMAP", "DEFAULT_PLATFORM_BURST",
    "DEFAULT_PLATFORM_RATE", "DEFAULT_SECRET", "KEYS", "KUBERNETES_SERVICE_HOST",
    "LOCATION_SETTINGS", "NOT_SET", "OPERATOR_SETTINGS", "REEF_CONFIGMAP", "REEF_CONFIG_FILE",
    "REEF_NAMESPACE", "REEF_SECRET", "SECRET_KEYS", "SETTINGS", "SOURCE_DEFAULT", "SOURCE_ENV",
    "WEBHOOK_SETTINGS", "ConfigError", "OperatorConfig", "Setting", "WebhookConfig",
    "config_file_path", "default_local_root", "is_given", "load_config", "load_file",
    "read_cluster_sources", "read_env", "resolve", "shown", "webhook_config",
]
