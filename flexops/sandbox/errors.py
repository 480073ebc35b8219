"""Twilio-shaped errors: {"code", "message", "more_info", "status"}."""
import json

from werkzeug.wrappers import Response


class TwilioError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self):
        return error_response(self.status, self.code, self.message, self.headers)


def error_response(status, code, message, headers=None):
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type="application/json")


def not_found(path):
    return TwilioError(404, 20404, f"The requested resource {path} was not found")


def invalid(message):
    return TwilioError(400, 20001, message)


def missing(name):
    return TwilioError(400, 20001, f"Missing required parameter {name} in the post body")
