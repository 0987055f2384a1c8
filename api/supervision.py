"""What every API replica keeps running in the background: the cluster's detached actors.

The alert notifier is one detached Ray actor; every replica makes sure it runs and listens
(creating it, or restarting its LISTEN after Ray restarted it), and that every shard runs
its clock over its recently active devices (after Ray restarted one, too). Both calls are
idempotent, so any number of replicas may make them.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from actors import metrics
from actors.notifier import NotifierConfig
from actors.router import ShardRouter, keep_notifier_listening
from api.config import ApiConfig
from api.mailer import smtp_settings
from storage import ops_metrics

log = logging.getLogger(__name__)
CHECK_S = 30.0


def notifier_config(config: ApiConfig) -> NotifierConfig:
    """The alert notifier's configuration, from the API's."""
    return NotifierConfig(
        database_url=config.database_url,
        smtp=smtp_settings(config),
        webhook_allow_private=config.webhook_allow_private,
        push=config.push,
        db_pool_max=config.notifier_db_pool_max,
        retry=config.delivery_retry(),
        queue_poll_s=config.delivery_queue_poll_s,
    )


async def keep_actors_running(config: ApiConfig, shards: ShardRouter) -> None:
    notifier = notifier_config(config)
    while True:
        try:
            await keep_notifier_listening(notifier, config.namespace)
        except Exception:
            log.warning("alert notifier not reachable", exc_info=True)
        try:
            await shards.reload_layout()  # a shard-count change another process made
        except Exception:
            log.warning("shard layout not readable", exc_info=True)
        try:
            await shards.start_all()
        except Exception:
            log.warning("a device shard is not reachable", exc_info=True)
        await asyncio.sleep(CHECK_S)


GAUGES_S = 15.0


async def sample_gauges(pool: asyncpg.Pool) -> None:
    """Every ``GAUGES_S``: this replica's pool use, and the database's replication lag and
    last backup (every replica reports the same value; the alert rules take the max)."""
    while True:
        try:
            metrics.set_gauge("vigil_db_pool_connections", pool.get_size(), state="open")
            in_use = pool.get_size() - pool.get_idle_size()
            metrics.set_gauge("vigil_db_pool_connections", in_use, state="in_use")
            standbys, lag_s = await ops_metrics.replication(pool)
            metrics.set_gauge("vigil_db_standbys", standbys)
            metrics.set_gauge("vigil_db_replication_lag_seconds", lag_s)
            backup_s = await ops_metrics.last_backup_s(pool)
            if backup_s is not None:
                metrics.set_gauge("vigil_backup_last_success_timestamp_seconds", backup_s)
        except Exception:
            log.warning("database gauges not sampled", exc_info=True)
        await asyncio.sleep(GAUGES_S)
