#!/usr/bin/env python3
"""Writes a small PKI for the TLS tests into DIRECTORY (all files mode 0600):

ca.pem                     the authority both ends trust
server.pem, server.key     signed by it, for 127.0.0.1, ::1 and localhost
client.pem, client.key     signed by it
expired.pem, expired.key   signed by it, valid for a day that ended a year ago
stranger.pem, stranger.key signed by another authority (other-ca.pem)
elsewhere.pem, elsewhere.key signed by ca.pem, but for 192.0.2.1 and elsewhere.example only
"""
import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

directory = sys.argv[1]
now = datetime.datetime.now(datetime.timezone.utc)


def write(name, data):
    path = os.path.join(directory, name)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def authority(name):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def leaf(name, issuer, issuer_key, hosts, start, end):
    key = ec.generate_private_key(ec.SECP256R1())
    alternatives = []
    for host in hosts:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alternatives.append(x509.DNSName(host))
    certificate = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )
    write(name + ".pem", certificate.public_bytes(serialization.Encoding.PEM))
    write(name + ".key", key_pem(key))


ca_key, ca = authority("engram test authority")
other_key, other = authority("another authority")
write("ca.pem", ca.public_bytes(serialization.Encoding.PEM))
write("other-ca.pem", other.public_bytes(serialization.Encoding.PEM))
valid = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
local = ["127.0.0.1", "::1", "localhost"]
leaf("server", ca, ca_key, local, *valid)
leaf("client", ca, ca_key, local, *valid)
leaf("expired", ca, ca_key, local, now - datetime.timedelta(days=366), now - datetime.timedelta(days=365))
leaf("stranger", other, other_key, local, *valid)
leaf("elsewhere", ca, ca_key, ["192.0.2.1", "elsewhere.example"], *valid)
