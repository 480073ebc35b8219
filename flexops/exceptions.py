"""Every error flexops raises. Messages never contain secrets."""


class FlexopsError(Exception):
    """Base class; the CLI maps subclasses to exit codes."""

    exit_code = 1


class ValidationError(FlexopsError, ValueError):
    """A parameter or input value breaks a rule. Raised before any API call."""

    exit_code = 2

    def __init__(self, parameter, message, value=None):
        self.parameter = parameter
        self.rule = message
        self.value = value
        shown = f" (got {value!r})" if value is not None and len(repr(value)) <= 80 else ""
        super().__init__(f"{parameter}: {message}{shown}")


class ConfigurationError(FlexopsError):
    """Credentials or target configuration are missing or inconsistent."""

    exit_code = 3


class ConnectionFailed(FlexopsError):
    """The target could not be reached or refused our credentials."""

    exit_code = 3


class TwilioCallFailed(FlexopsError):
    """A Twilio call failed permanently (after retries)."""

    def __init__(self, message, status=None, code=None):
        self.status = status
        self.code = code
        super().__init__(message)

    @property
    def exit_code(self):
        """3 when Twilio refused the credentials or never answered (as the CLI documents), else 1."""
        return 3 if self.status is None or self.status == 401 or self.code == 20003 else 1


class CheckFailed(FlexopsError):
    """One or more required checks failed (used to make headless runs exit non-zero)."""


class LockHeld(FlexopsError):
    """Another apply holds the account lock."""


class DesiredStateError(ValidationError):
    """All the problems of a desired-state file at once (`.errors`, a list of Problem)."""

    def __init__(self, errors, source="inventory"):
        self.errors = list(errors)
        count = len(self.errors)
        listing = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(source, f"{count} problem{'s' if count != 1 else ''} in the desired state:\n{listing}")


class RollbackRefused(FlexopsError):
    """Some addresses changed since the run (or cannot be restored); `.conflicts` lists them."""

    def __init__(self, run_id, conflicts):
        self.conflicts = conflicts
        listing = "\n".join(f"  - {c}" for c in conflicts)
        super().__init__(f"rollback of {run_id} refused for {len(conflicts)} address(es):\n{listing}\n"
                         "Nothing was changed. Use --force (force=True) to roll back anyway: changed addresses are "
                         "overwritten, addresses whose previous state is unknown are skipped.")


class NotReversible(RollbackRefused):
    """The run made changes Twilio cannot undo (closing a conversation); `.conflicts` names each one."""

    def __init__(self, run_id, conflicts, why):
        self.conflicts = conflicts
        listing = "\n".join(f"  - {c}" for c in conflicts)
        FlexopsError.__init__(self, f"rollback of {run_id} refused: {why}\n{listing}\nNothing was changed; "
                                    "--force does not change this.")
