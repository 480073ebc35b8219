"""The Twilio error codes seen on the way from a Messenger message to a Flex agent: which hop each one breaks and
what to do about it, in one sentence. An unknown code is still shown, with Twilio's link.

Sources: Twilio's error pages (https://www.twilio.com/docs/api/errors/<code>). Keep remedies to what an ops engineer
can act on in the Console or with flexops.
"""
from dataclasses import dataclass

HOPS = ("address", "conversation", "studio", "webhook", "flex", "agent")


@dataclass(frozen=True)
class TwilioErrorInfo:
    code: int
    hop: str  # one of HOPS, or "" when the code is not in the catalogue
    title: str
    remedy: str

    @property
    def link(self):
        return f"https://www.twilio.com/docs/api/errors/{self.code}"

    @property
    def known(self):
        return bool(self.hop)


CATALOGUE = {info.code: info for info in (
    TwilioErrorInfo(63003, "conversation", "Channel could not find the To address",
                    "Reply to the customer's own Messenger address from the Page they wrote to, within the "
                    "conversation that holds both."),
    TwilioErrorInfo(63007, "address", "No channel with the specified From address",
                    "Connect the Facebook Page in Console > Messaging > Senders > Facebook Messenger, in the account "
                    "(or subaccount) whose credentials send, and wait until it is no longer pending."),
    TwilioErrorInfo(63008, "address", "Channel module misconfigured",
                    "Check the Page's sender in Console > Messaging > Senders and that the address is "
                    "messenger:<facebook page id>."),
    TwilioErrorInfo(63016, "conversation", "Outside the messaging window",
                    "Messenger allows free-form replies for 24 hours after the customer's last message: answer "
                    "sooner, or wait for the customer to write again."),
    TwilioErrorInfo(63039, "conversation", "Outside the allowed response window",
                    "Reply within 24 hours of the customer's last message; later replies need the customer to write "
                    "again."),
    TwilioErrorInfo(81009, "flex", "Send to Flex could not create the TaskRouter task",
                    "Point the flow's Send to Flex widget at a workflow and task channel (Programmable Chat) that "
                    "exist in Flex's TaskRouter workspace, then publish the flow."),
    TwilioErrorInfo(81011, "studio", "Studio failed to send a message",
                    "Fix the Send Message widget (body, recipient) in the flow and publish it."),
    TwilioErrorInfo(81014, "studio", "Studio HTTP Request widget failed",
                    "Check the HTTP Request widget's URL and parameter names in the flow's execution logs."),
    TwilioErrorInfo(81017, "studio", "Error in a Twilio Function's response",
                    "Make the Function the flow calls answer in time and call its callback (see its logs)."),
    TwilioErrorInfo(81024, "studio", "Subflow could not be executed",
                    "Make sure the subflow the flow runs exists and does not run another subflow."),
    TwilioErrorInfo(45205, "address", "Requested Flex Flow not found",
                    "Messages for this Page still go to a legacy Flex Flow that no longer exists: remove the legacy "
                    "address and create the Conversations address configuration (flexops legacy retire --replace)."),
    TwilioErrorInfo(45210, "address", "Flex Flow creation failed (collision)",
                    "A legacy Flex Flow already holds this contact identity: retire it before adding the address "
                    "(flexops legacy list)."),
    TwilioErrorInfo(45212, "address", "Flex Flow creation failed (collision)",
                    "A legacy Flex Flow collides with this Page: retire the legacy Flex Flow, then create the "
                    "Conversations address (flexops legacy retire --replace)."),
    TwilioErrorInfo(80906, "flex", "Interaction not open",
                    "The Flex interaction was already complete: close the stale conversation so the customer's "
                    "next message starts a new one (flexops janitor)."),
    TwilioErrorInfo(20429, "studio", "Too many requests",
                    "Studio accepts about 100 new executions per second: spread the load or ask Twilio for more."),
)}


def describe(code):
    """The catalogue entry for `code`, or an entry with no hop that still carries Twilio's link."""
    try:
        code = int(code)
    except (TypeError, ValueError):
        code = 0
    return CATALOGUE.get(code) or TwilioErrorInfo(code, "", f"Twilio error {code}",
                                                  f"See Twilio's page for error {code}.")
