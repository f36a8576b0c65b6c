"""Throwaway certificates for TLS tests, made with the ``openssl`` command line.

``issue_certificates`` makes a CA, a server certificate for 127.0.0.1 and localhost, a client
certificate (the gateway's), and a second CA with a client certificate of its own, which the first
CA does not vouch for. Keys are P-256; everything is valid for two days.
"""

import dataclasses
import pathlib
import shutil
import subprocess

import pytest

_DAYS = "2"
_SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
_CLIENT_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """A certificate file and its private key file."""

    cert: pathlib.Path
    key: pathlib.Path


@dataclasses.dataclass(frozen=True)
class Certificates:
    """What ``issue_certificates`` made, by role."""

    ca: pathlib.Path
    server: KeyPair
    client: KeyPair
    other_ca: pathlib.Path
    other_client: KeyPair


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)  # noqa: S603, S607


def _authority(directory: pathlib.Path, name: str) -> KeyPair:
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(pair.key), "-out", str(pair.cert), "-days", _DAYS,
        "-subj", f"/CN=taskgate test {name}",
    )  # fmt: skip
    return pair


def _leaf(directory: pathlib.Path, name: str, authority: KeyPair, extensions: str) -> KeyPair:
    pair = KeyPair(directory / f"{name}.crt", directory / f"{name}.key")
    request = directory / f"{name}.csr"
    extensions_file = directory / f"{name}.ext"
    extensions_file.write_text(extensions)
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(pair.key), "-out", str(request), "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(authority.cert), "-CAkey", str(authority.key),
        "-CAcreateserial", "-out", str(pair.cert), "-days", _DAYS, "-extfile", str(extensions_file),
    )  # fmt: skip
    return pair


def issue_certificates(directory: pathlib.Path) -> Certificates:
    """Make the test CAs and certificates under ``directory``; skip the test when openssl is missing."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    ca = _authority(directory, "ca")
    other_ca = _authority(directory, "other-ca")
    return Certificates(
        ca=ca.cert,
        server=_leaf(directory, "server", ca, _SERVER_EXTENSIONS),
        client=_leaf(directory, "gateway", ca, _CLIENT_EXTENSIONS),
        other_ca=other_ca.cert,
        other_client=_leaf(directory, "intruder", other_ca, _CLIENT_EXTENSIONS),
    )
