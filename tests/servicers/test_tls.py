"""TLS and mutual TLS: the server speaks TLS when given a certificate, and with a client CA
it accepts only clients holding a certificate that CA signed."""

import asyncio
import datetime as dt
import ipaddress
import pathlib
import sys

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import GRAPHS_CONFIG
from graphrun import AsyncClient, GraphrunError
from graphrun_server.app import App, Settings

BIN = pathlib.Path(sys.executable).parent


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key, issuer_cert=None, issuer_key=None, *, ca=False, server=False):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer_cert.subject if issuer_cert else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(obj) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    d = tmp_path_factory.mktemp("pki")
    ca_key = _key()
    ca = _cert("graphrun test CA", ca_key, ca=True)
    files = {"ca": ca}
    for name, server in (("server", True), ("client", False)):
        key = _key()
        files[name] = _cert(f"graphrun test {name}", key, ca, ca_key, server=server)
        files[f"{name}_key"] = key
    paths = {}
    for name, obj in files.items():
        paths[name] = d / f"{name}.pem"
        paths[name].write_bytes(_pem(obj))
    return paths


async def _served(database_url, pki, mutual: bool) -> App:
    return await App(Settings(port=0, database_url=database_url, config=GRAPHS_CONFIG,
                              tls_cert=str(pki["server"]), tls_key=str(pki["server_key"]),
                              tls_client_ca=str(pki["ca"]) if mutual else None)).start()


async def test_tls_server_talks_to_a_client_trusting_its_ca_only(database_url, pki):
    app = await _served(database_url, pki, mutual=False)
    target = f"127.0.0.1:{app.port}"
    try:
        async with AsyncClient(target, secure=True, root_certificates=pki["ca"].read_bytes()) as client:
            result = await client.wait("steps", {})
            assert result.status == "success"
        async with AsyncClient(target) as plaintext:  # no TLS: the handshake fails
            with pytest.raises(GraphrunError) as caught:
                await plaintext.list_assistants()
            assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        cli = await asyncio.create_subprocess_exec(
            str(BIN / "graphrun"), "--target", target, "--tls-ca", str(pki["ca"]), "assistants", "list",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await cli.communicate()
        assert cli.returncode == 0, err.decode()
        assert b"steps" in out
    finally:
        await app.stop(grace=1)


async def test_mutual_tls_requires_a_client_certificate_signed_by_the_ca(database_url, pki):
    app = await _served(database_url, pki, mutual=True)
    target = f"127.0.0.1:{app.port}"
    ca = pki["ca"].read_bytes()
    try:
        async with AsyncClient(target, secure=True, root_certificates=ca) as anonymous:
            with pytest.raises(GraphrunError) as caught:
                await anonymous.list_assistants()
            assert caught.value.code == grpc.StatusCode.UNAVAILABLE
        async with AsyncClient(target, secure=True, root_certificates=ca,
                               certificate_chain=pki["client"].read_bytes(),
                               private_key=pki["client_key"].read_bytes()) as client:
            assert (await client.wait("steps", {})).status == "success"
    finally:
        await app.stop(grace=1)
