"""Alarm webhooks after each build: new camera, door and meter alarms to their subscribers."""

import dagster as dg

from linli.warehouse import connect_current
from pipelines.resources import LakeResource
from serving.api.alarms import ALARM_KINDS, Subscriptions, dispatch
from serving.api.keys import KeyStore


@dg.asset(
    key=["serving", "alarm_deliveries"],
    deps=[dg.AssetKey(k.table.split(".")) for k in ALARM_KINDS.values()],
    group_name="serving",
    kinds={"python"},
    description="Deliveries of new alarms to the webhooks apps subscribed (signed, retried, logged).",
)
def alarm_deliveries(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    state = lake.root / "api"
    result = dispatch(connect_current(lake.warehouse), Subscriptions(state / "alarms.sqlite"), KeyStore(state / "keys.sqlite"))
    if result["batches_failed"]:
        context.log.warning(f"{result['batches_failed']} alarm batches not delivered: they are retried at the next build")
    return dg.MaterializeResult(metadata=result)
