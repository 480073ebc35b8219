"""Conversations v1 routes (conversations.twilio.com)."""
from werkzeug.routing import Rule

from . import responses as r
from .models import LIST_PATH

SERVICE = "/v1/Services/<chat_service_sid>/Conversations"
participants, messages = r.children("participant", "participants"), r.children("message", "messages")

RULES = [
    Rule(LIST_PATH, methods=["GET"], endpoint=r.list_addresses),
    Rule(LIST_PATH, methods=["POST"], endpoint=r.create_address),
    Rule(f"{LIST_PATH}/<sid>", methods=["GET"], endpoint=r.fetch_address),
    Rule(f"{LIST_PATH}/<sid>", methods=["POST"], endpoint=r.update_address),
    Rule(f"{LIST_PATH}/<sid>", methods=["DELETE"], endpoint=r.delete_address),
    Rule("/v1/Configuration", methods=["GET"], endpoint=r.fetch_configuration),
    Rule("/v1/Services", methods=["GET"], endpoint=r.list_services),
    Rule("/v1/Services/<sid>", methods=["GET"], endpoint=r.fetch_service),
    Rule("/v1/Conversations", methods=["GET"], endpoint=r.list_conversations),
    Rule("/v1/Conversations/<sid>", methods=["GET"], endpoint=r.fetch_conversation),
    Rule("/v1/Conversations/<sid>", methods=["POST"], endpoint=r.update_conversation),
    Rule("/v1/Conversations/<conversation_sid>/Participants", methods=["GET"], endpoint=participants),
    Rule("/v1/Conversations/<conversation_sid>/Messages", methods=["GET"], endpoint=messages),
    Rule(SERVICE, methods=["GET"], endpoint=r.list_service_conversations),
    Rule(f"{SERVICE}/<sid>", methods=["GET"], endpoint=r.fetch_conversation),
    Rule(f"{SERVICE}/<sid>", methods=["POST"], endpoint=r.update_conversation),
    Rule(f"{SERVICE}/<conversation_sid>/Participants", methods=["GET"], endpoint=participants),
    Rule(f"{SERVICE}/<conversation_sid>/Messages", methods=["GET"], endpoint=messages),
]
