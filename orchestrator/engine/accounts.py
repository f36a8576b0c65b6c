"""The account engine: registration, login, refresh-token rotation, describing the caller, and roles.

Every failure to log in or refresh says the same thing (``INVALID_LOGIN_MESSAGE`` /
``INVALID_REFRESH_MESSAGE``): which part was wrong is never revealed, and an unknown email costs
as much time as a wrong password (``orchestrator.passwords``). Consecutive failed logins of one
email, with an account or not, refuse its logins for a while (``orchestrator.engine.login_throttle``).
No log line names an email, a password or a token.
"""

import dataclasses
import logging

from orchestrator.caller import Caller
from orchestrator.domain.accounts import NewAccount
from orchestrator.domain.accounts import NewApiKey
from orchestrator.domain.accounts import RefreshOutcome
from orchestrator.domain.accounts import UserRecord
from orchestrator.domain.login_throttle import LoginBackoff
from orchestrator.engine.login_throttle import LoginThrottle
from orchestrator.engine.login_throttle import email_key
from orchestrator.errors import AlreadyExistsError
from orchestrator.errors import InvalidArgumentError
from orchestrator.errors import UnauthenticatedError
from orchestrator.errors import UserNotFoundError
from orchestrator.passwords import PasswordHasher
from orchestrator.store.base import Store
from orchestrator.tokens import TokenIssuer
from orchestrator.tokens import TokenPair
from orchestrator.tokens import hash_refresh_token
from taskgate import account_rules
from taskgate.account_rules import MAX_REFRESH_TOKEN_CHARACTERS
from taskgate.api_keys import generate_api_key
from taskgate.api_keys import hash_api_key
from taskgate.api_keys import lookup_prefix
from taskgate.rfc3339 import utc_now

logger = logging.getLogger(__name__)

INVALID_LOGIN_MESSAGE = "Invalid email or password"
INVALID_REFRESH_MESSAGE = "Invalid or expired refresh token"
FIRST_KEY_NAME = "default"


@dataclasses.dataclass(frozen=True)
class Registration:
    """A new account: the user, its first tokens and its first API key (shown this once)."""

    user: UserRecord
    tokens: TokenPair
    api_key: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class RegistrationForm:
    """What a registration asks for; username and name may be empty."""

    email: str
    password: str = dataclasses.field(repr=False)
    username: str = ""
    name: str = ""


class AccountEngine:
    """Creates accounts and turns credentials into tokens."""

    def __init__(
        self,
        store: Store,
        passwords: PasswordHasher,
        tokens: TokenIssuer,
        login_backoff: LoginBackoff | None = None,
    ) -> None:
        self._store = store
        self._passwords = passwords
        self._tokens = tokens
        self._throttle = LoginThrottle(store, login_backoff or LoginBackoff())

    async def register(self, form: RegistrationForm) -> Registration:
        """Create a ``user`` in a new tenant with a first API key; a taken email is AlreadyExistsError."""
        email = _checked_form(form)
        username = form.username or account_rules.default_username(email)
        api_key = generate_api_key()
        password_hash = await self._passwords.hash(form.password)
        now = utc_now()
        refresh = self._tokens.refresh_token(now)
        account = NewAccount(
            email=email,
            username=username,
            name=form.name,
            password_hash=password_hash,
            api_key=NewApiKey(FIRST_KEY_NAME, lookup_prefix(api_key), hash_api_key(api_key)),
            refresh_token=refresh.stored,
        )
        user = await self._store.create_account(account)
        tokens = self._tokens.pair(user, refresh, now)
        logger.info("account registered", extra={"user_id": user.id, "tenant_id": user.tenant_id})
        return Registration(user, tokens, api_key)

    async def login(self, email: str, password: str) -> TokenPair:
        """Check an email and password and issue a new token pair (a new refresh-token family).

        A throttled email is LoginThrottledError before anything is hashed; a full hasher queue is
        PasswordHasherBusyError, and such a login counts as no failure (it was not judged).
        """
        throttle_key = email_key(email)
        await self._throttle.check(throttle_key)
        if len(password) > account_rules.MAX_PASSWORD_CHARACTERS:
            # No account has such a password; it is refused before anything is hashed.
            await self._throttle.failed(throttle_key)
            raise UnauthenticatedError(INVALID_LOGIN_MESSAGE)
        normalised = account_rules.normalise_email(email)
        credentials = await self._store.find_user_credentials(normalised) if normalised else None
        stored_hash = credentials.password_hash if credentials is not None else None
        if not await self._passwords.verify(stored_hash, password) or credentials is None:
            await self._throttle.failed(throttle_key)
            raise UnauthenticatedError(INVALID_LOGIN_MESSAGE)
        await self._throttle.succeeded(throttle_key)
        now = utc_now()
        refresh = self._tokens.refresh_token(now)
        await self._store.create_refresh_token(credentials.user.id, refresh.stored)
        return self._tokens.pair(credentials.user, refresh, now)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Use a refresh token once and issue the next pair of its family.

        A token already used revokes its whole family: whoever holds the current one must log in
        again, since one of the two holders is not the user.
        """
        if not refresh_token or len(refresh_token) > MAX_REFRESH_TOKEN_CHARACTERS:
            raise UnauthenticatedError(INVALID_REFRESH_MESSAGE)
        now = utc_now()
        replacement = self._tokens.refresh_token(now)
        rotation = await self._store.rotate_refresh_token(
            hash_refresh_token(refresh_token), replacement.stored, now
        )
        if rotation.outcome is RefreshOutcome.REUSED and rotation.user is not None:
            logger.warning(
                "a used refresh token was presented again; its family is revoked",
                extra={"user_id": rotation.user.id},
            )
        if rotation.outcome is not RefreshOutcome.ROTATED or rotation.user is None:
            raise UnauthenticatedError(INVALID_REFRESH_MESSAGE)
        return self._tokens.pair(rotation.user, replacement, now)

    async def current_user(self, caller: Caller) -> UserRecord:
        """Return the caller's account."""
        user = await self._store.get_user(caller.user_id)
        if user is None:
            raise UserNotFoundError()
        return user

    async def find_or_create_user(self, email: str) -> UserRecord:
        """Return the user with this email; when absent, create a ``user`` without a password in a new tenant.

        This is how an operator's command gives someone an API key before they ever register.
        """
        normalised = _checked_email(email)
        user = await self._store.find_user_by_email(normalised)
        if user is not None:
            return user
        try:
            user = await self._store.create_user(normalised, account_rules.default_username(normalised))
        except AlreadyExistsError:
            # Created meanwhile by another command or a registration; that account is the one.
            user = await self._store.find_user_by_email(normalised)
            if user is None:
                raise
            return user
        logger.info("user created", extra={"user_id": user.id, "tenant_id": user.tenant_id})
        return user

    async def set_role(self, email: str, role: str) -> UserRecord:
        """Give the user with this email a role (user, admin or owner); UserNotFoundError if there is none."""
        if role not in account_rules.ROLES:
            raise InvalidArgumentError("role", f"role must be one of {', '.join(account_rules.ROLES)}")
        user = await self._store.set_user_role(_checked_email(email), role)
        if user is None:
            raise UserNotFoundError()
        logger.info("user role set", extra={"user_id": user.id, "role": role})
        return user


def _checked_email(raw: str) -> str:
    """Return a well-formed email in lower case, or raise InvalidArgumentError."""
    email = account_rules.normalise_email(raw)
    if email is None:
        raise InvalidArgumentError("email", f"email {account_rules.EMAIL_RULE}")
    return email


def _checked_form(form: RegistrationForm) -> str:
    """Return the normalised email of a registration, or raise InvalidArgumentError for a bad field."""
    email = _checked_email(form.email)
    if not account_rules.valid_password(form.password):
        raise InvalidArgumentError("password", f"password {account_rules.PASSWORD_RULE}")
    if form.username and not account_rules.valid_username(form.username):
        raise InvalidArgumentError("username", f"username {account_rules.USERNAME_RULE}")
    if not account_rules.valid_name(form.name):
        raise InvalidArgumentError("name", f"name {account_rules.NAME_RULE}")
    return email
