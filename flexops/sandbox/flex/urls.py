"""Flex v1 routes (flex-api.twilio.com)."""
from werkzeug.routing import Rule

from . import responses as r

RULES = [
    Rule("/v1/Configuration", methods=["GET"], endpoint=r.fetch_configuration),
    Rule("/v1/Interactions", methods=["POST"], endpoint=r.create_interaction),
    Rule("/v1/Interactions/<sid>", methods=["GET"], endpoint=r.fetch_interaction),
    Rule("/v1/Interactions/<interaction_sid>/Channels", methods=["GET"], endpoint=r.list_interaction_channels),
    Rule("/v1/Interactions/<interaction_sid>/Channels/<sid>", methods=["GET"], endpoint=r.fetch_interaction_channel),
    Rule("/v1/Interactions/<interaction_sid>/Channels/<sid>", methods=["POST"],
         endpoint=r.update_interaction_channel),
    Rule("/v1/FlexFlows", methods=["GET"], endpoint=r.list_flex_flows),
    Rule("/v1/FlexFlows", methods=["POST"], endpoint=r.create_flex_flow),
    Rule("/v1/FlexFlows/<sid>", methods=["GET"], endpoint=r.fetch_flex_flow),
    Rule("/v1/FlexFlows/<sid>", methods=["POST"], endpoint=r.update_flex_flow),
    Rule("/v1/FlexFlows/<sid>", methods=["DELETE"], endpoint=r.delete_flex_flow),
]
