"""Accounts made through the API (``POST /api/v1/auth/register``), as the identity tests use them."""

import dataclasses
import uuid

import httpx

PASSWORD = "correct horse battery staple"


@dataclasses.dataclass
class Account:
    """A registered user: what registration answered, and clients that authenticate as it."""

    email: str
    user_id: str
    tenant_id: str
    api_key: str
    access_token: str
    refresh_token: str
    key_client: httpx.Client
    token_client: httpx.Client

    def client(self, kind: str) -> httpx.Client:
        """The client sending this account's API key (``api_key``) or access token (``jwt``)."""
        return self.key_client if kind == "api_key" else self.token_client

    def close(self) -> None:
        """Close both clients."""
        self.key_client.close()
        self.token_client.close()


def unique_email(label: str = "user") -> str:
    """Return an email no other test uses."""
    return f"{label}-{uuid.uuid4().hex[:12]}@example.com"


def register(base_url: str, email: str | None = None, password: str = PASSWORD, **fields) -> Account:
    """Register a user and return it with its two authenticated clients."""
    email = email or unique_email()
    response = httpx.post(
        base_url + "/api/v1/auth/register", json={"email": email, "password": password, **fields}, timeout=30
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(
        email=email.lower(),
        user_id=body["user_id"],
        tenant_id=body["tenant_id"],
        api_key=body["api_key"],
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        key_client=httpx.Client(base_url=base_url, headers={"X-API-Key": body["api_key"]}, timeout=30),
        token_client=httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=30
        ),
    )
