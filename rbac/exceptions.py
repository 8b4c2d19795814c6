"""Errors of identity and access."""


class LoginFailed(Exception):
    """Wrong user name or password, or the account is disabled."""


class RobotInvalid(Exception):
    """A robot account cannot be created or changed as asked."""


class LoginThrottled(Exception):
    """Too many failed logins for this account from this address; try again later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; try again in {retry_after} seconds")
        self.retry_after = retry_after


class BindingInvalid(Exception):
    """A role binding names an unknown subject or role."""


class CredentialsInvalid(Exception):
    """An Authorization header that is malformed, or a token that fails verification."""


class ServiceUnknown(Exception):
    """A token was asked for a service this token service does not issue for."""


class ApplyError(Exception):
    """A declarative file that cannot be applied; ``problems`` lists every reason, one a line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ApplyInvalid(ApplyError):
    """The file is malformed or names unknown keys, roles, users or robots."""


class ApplyDenied(ApplyError):
    """The principal may not make some of the file's changes."""


class UserExists(Exception):
    """A user with this name exists already."""


class UserInvalid(Exception):
    """A user account cannot be created or changed as asked (a bad name, an SSO account...)."""


class UserChangeDenied(Exception):
    """A change an administrator may not make to their own account (demote or delete it)."""


class PasswordInvalid(Exception):
    """A new password the password validators refuse; ``problems`` lists why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class PasswordWrong(Exception):
    """The old password given to change a password is not the account's password."""


class GroupExists(Exception):
    """A group with this name exists already."""


class GroupInvalid(Exception):
    """A group cannot be created or changed as asked."""
