"""What Conversations tells the outside about a new conversation, participant or message: the parameters of its
webhook events (post-events `onConversationAdded`, `onParticipantAdded`, `onMessageAdded`, and the pre-events
`onConversationAdd`, `onParticipantAdd`, `onMessageAdd`, which carry what exists before the SID is given). Studio's
`trigger.conversation` is the same data. No HTTP here: webhooks.py sends them."""

PRE_EVENTS = {"onConversationAdded": "onConversationAdd", "onParticipantAdded": "onParticipantAdd",
              "onMessageAdded": "onMessageAdd"}
NOT_YET = {"onConversationAdd": ("ConversationSid", "DateCreated", "State"),
           "onParticipantAdd": ("ParticipantSid", "DateCreated"),
           "onMessageAdd": ("MessageSid", "Index", "DateCreated")}
DEFAULT_FILTERS = ("onMessageAdded",)


def _common(conversation, source="MESSENGER"):
    return {"AccountSid": conversation["account_sid"], "ChatServiceSid": conversation["chat_service_sid"],
            "ConversationSid": conversation["sid"], "MessagingServiceSid": conversation["messaging_service_sid"],
            "Source": source, "RetryCount": 0}


def conversation_added(conversation, participant):
    binding = participant["messaging_binding"]
    return {"EventType": "onConversationAdded", **_common(conversation), "FriendlyName": conversation["friendly_name"],
            "UniqueName": conversation["unique_name"], "Attributes": conversation["attributes"],
            "DateCreated": conversation["date_created"], "State": conversation["state"],
            "MessagingBinding.Address": binding["address"], "MessagingBinding.ProxyAddress": binding["proxy_address"]}


def participant_added(conversation, participant):
    binding = participant["messaging_binding"]
    return {"EventType": "onParticipantAdded", **_common(conversation), "ParticipantSid": participant["sid"],
            "Identity": participant["identity"], "RoleSid": participant["role_sid"],
            "Attributes": participant["attributes"], "DateCreated": participant["date_created"],
            "MessagingBinding.Address": binding["address"], "MessagingBinding.ProxyAddress": binding["proxy_address"]}


def message_added(conversation, message):
    return {"EventType": "onMessageAdded", **_common(conversation), "MessageSid": message["sid"],
            "Index": message["index"], "DateCreated": message["date_created"], "Body": message["body"],
            "Author": message["author"], "ParticipantSid": message["participant_sid"],
            "Attributes": message["attributes"], "Media": message["media"]}


def selected(events, filters):
    """The (event name, params) pairs a webhook with `filters` receives, pre-events before their post-events."""
    wanted = set(filters or DEFAULT_FILTERS)
    chosen = []
    for params in events:
        post = params["EventType"]
        pre = PRE_EVENTS[post]
        if pre in wanted:
            chosen.append((pre, {**{k: v for k, v in params.items() if k not in NOT_YET[pre]}, "EventType": pre}))
        if post in wanted:
            chosen.append((post, params))
    return chosen
