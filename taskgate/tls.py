"""TLS between the gateway and the orchestrator: the ``TASKGATE_TLS_*`` settings and what is built from them.

The orchestrator serves gRPC and its admin stream server with one certificate
(``TASKGATE_TLS_CERT_FILE`` and ``TASKGATE_TLS_KEY_FILE``); with
``TASKGATE_TLS_REQUIRE_CLIENT_CERT`` it also refuses every connection without a client certificate
signed by ``TASKGATE_TLS_CA_FILE``. The gateway trusts ``TASKGATE_TLS_CA_FILE`` (else the public
CAs) and, for mutual TLS, presents ``TASKGATE_TLS_CLIENT_CERT_FILE`` and
``TASKGATE_TLS_CLIENT_KEY_FILE``. Host names are always verified against the certificate's names
(an IP address needs an IP entry in its subject alternative names).

Every file is checked when the settings are read, so a missing file, a key that does not belong to
its certificate or a CA file that holds no certificate stops the process at start-up with one line
naming the variable. The files are read when the servers and channels are built; a new certificate
takes effect on restart.
"""

import dataclasses
import pathlib
import ssl

import grpc

from taskgate.environment import Environment
from taskgate.environment import SettingsError

CERT_FILE = "TASKGATE_TLS_CERT_FILE"
KEY_FILE = "TASKGATE_TLS_KEY_FILE"
CA_FILE = "TASKGATE_TLS_CA_FILE"
CLIENT_CERT_FILE = "TASKGATE_TLS_CLIENT_CERT_FILE"
CLIENT_KEY_FILE = "TASKGATE_TLS_CLIENT_KEY_FILE"
REQUIRE_CLIENT_CERT = "TASKGATE_TLS_REQUIRE_CLIENT_CERT"
CLIENT_VARIABLES = (CA_FILE, CLIENT_CERT_FILE, CLIENT_KEY_FILE)


@dataclasses.dataclass(frozen=True)
class ServerTls:
    """The orchestrator's side: its certificate and key, and the CA client certificates must come from.

    ``client_ca_file`` is set exactly when client certificates are required (mutual TLS).
    """

    cert_file: str
    key_file: str
    client_ca_file: str | None = None

    @classmethod
    def from_env(cls, environment: Environment) -> "ServerTls | None":
        """Read the server variables; None when no certificate is configured (plaintext)."""
        pair = _pair(environment, CERT_FILE, KEY_FILE, "the orchestrator's certificate and its private key")
        required = environment.boolean(REQUIRE_CLIENT_CERT)
        ca_file = _ca_file(environment)
        if pair is None:
            if required:
                raise SettingsError(f"{REQUIRE_CLIENT_CERT}=1 needs TLS: set {CERT_FILE} and {KEY_FILE}")
            return None
        if required and ca_file is None:
            raise SettingsError(
                f"{REQUIRE_CLIENT_CERT}=1 needs {CA_FILE}, the CA that signs the accepted client certificates"
            )
        return cls(pair[0], pair[1], ca_file if required else None)

    @property
    def requires_client_cert(self) -> bool:
        """Whether a connection without a client certificate from the CA is refused."""
        return self.client_ca_file is not None

    def grpc_credentials(self) -> grpc.ServerCredentials:
        """Return the gRPC server's credentials, reading the files now."""
        return grpc.ssl_server_credentials(
            [(_read(self.key_file), _read(self.cert_file))],
            root_certificates=_read(self.client_ca_file) if self.client_ca_file else None,
            require_client_auth=self.requires_client_cert,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """Return the admin stream server's TLS context, reading the files now."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file:
            context.load_verify_locations(cafile=self.client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


@dataclasses.dataclass(frozen=True)
class ClientTls:
    """The gateway's side: the CA it trusts (None: the public CAs) and its own certificate, if any."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def from_env(cls, environment: Environment) -> "ClientTls":
        """Read the client variables (each optional; a certificate needs its key and the other way round)."""
        pair = _pair(
            environment, CLIENT_CERT_FILE, CLIENT_KEY_FILE, "the gateway's client certificate and its key"
        )
        cert_file, key_file = pair or (None, None)
        return cls(_ca_file(environment), cert_file, key_file)

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        """Return a gRPC channel's credentials, reading the files now (create them after fork)."""
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file) if self.ca_file else None,
            private_key=_read(self.key_file) if self.key_file else None,
            certificate_chain=_read(self.cert_file) if self.cert_file else None,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """Return a client context: the server's certificate and host name verified, ours presented."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def configured_client_variables(environment: Environment) -> tuple[str, ...]:
    """Return which of the gateway's TLS variables are set (to refuse them where TLS is off)."""
    return tuple(name for name in CLIENT_VARIABLES if environment.raw(name) is not None)


def _pair(environment: Environment, cert_name: str, key_name: str, what: str) -> tuple[str, str] | None:
    """Read a certificate file and its key file: both or neither, readable, the key matching."""
    cert_file = environment.raw(cert_name)
    key_file = environment.raw(key_name)
    if cert_file is None and key_file is None:
        return None
    if cert_file is None or key_file is None:
        present, missing = (cert_name, key_name) if key_file is None else (key_name, cert_name)
        raise SettingsError(f"{present} is set without {missing}: set both ({what}) or neither")
    _readable(cert_name, cert_file)
    _readable(key_name, key_file)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)
    except ssl.SSLError:
        raise SettingsError(
            f"{cert_name} and {key_name} must be a PEM certificate and the PEM private key that belongs to it"
        ) from None
    return cert_file, key_file


def _ca_file(environment: Environment) -> str | None:
    """Read the CA bundle's path, checking it holds at least one PEM certificate."""
    ca_file = environment.raw(CA_FILE)
    if ca_file is None:
        return None
    _readable(CA_FILE, ca_file)
    try:
        ssl.create_default_context(cafile=ca_file)
    except ssl.SSLError:
        raise SettingsError(f"{CA_FILE} must hold PEM CA certificates") from None
    return ca_file


def _readable(name: str, path: str) -> None:
    try:
        with pathlib.Path(path).open("rb"):
            pass
    except OSError as ex:
        raise SettingsError(f"{name}: cannot read {path}: {ex.strerror}") from None


def _read(path: str) -> bytes:
    return pathlib.Path(path).read_bytes()
