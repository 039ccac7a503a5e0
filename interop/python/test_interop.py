"""Python clients nobody on this project wrote, against the real server over TLS."""

import os
import subprocess
import sys
import ssl
import tempfile
import time
import uuid

import grpc
import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT

URL = os.environ["TESSERA_URL"]
CA = os.environ["TESSERA_CA"]
# Trust the development CA for every requests-based call (authlib passes verify=True itself).
os.environ["REQUESTS_CA_BUNDLE"] = CA


def discovery():
    r = requests.get(f"{URL}/.well-known/openid-configuration", verify=CA, timeout=10)
    r.raise_for_status()
    return r.json()


def session(client_id, secret, method="client_secret_basic"):
    s = OAuth2Session(client_id, secret, token_endpoint_auth_method=method)
    s.verify = CA
    return s


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_client_credentials(method):
    token = session("CC", "cc_secret", method).fetch_token(
        discovery()["token_endpoint"], grant_type="client_credentials", scope="dataEventRecords"
    )
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "dataEventRecords"
    assert token["expires_in"] == 3600
    assert token["access_token"].count(".") == 2


def test_authlib_wrong_secret_is_invalid_client():
    with pytest.raises(Exception) as e:
        session("CC", "wrong").fetch_token(discovery()["token_endpoint"], grant_type="client_credentials")
    assert "invalid_client" in str(e.value)


def test_authlib_introspection_and_revocation():
    meta = discovery()
    cc = session("CC_reference", "cc_reference_secret")
    token = cc.fetch_token(meta["token_endpoint"], grant_type="client_credentials", scope="dataEventRecords")
    api = session("rs_dataEventRecordsApi", "api_secret")
    r = api.introspect_token(meta["introspection_endpoint"], token=token["access_token"])
    body = r.json()
    assert body["active"] is True
    assert body["client_id"] == "CC_reference"
    assert body["aud"] == "rs_dataEventRecordsApi"
    assert body["iss"] == URL
    r = cc.revoke_token(meta["revocation_endpoint"], token=token["access_token"])
    assert r.status_code == 200
    assert api.introspect_token(meta["introspection_endpoint"], token=token["access_token"]).json() == {"active": False}


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "EdDSA"])
def test_pyjwt_validates_from_discovery_and_jwks(alg):
    meta = discovery()
    token = session(f"cc-{alg}", f"cc_{alg}_secret").fetch_token(
        meta["token_endpoint"], grant_type="client_credentials"
    )["access_token"]
    jwks = jwt.PyJWKClient(meta["jwks_uri"], ssl_context=ssl.create_default_context(cafile=CA))
    key = jwks.get_signing_key_from_jwt(token)
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == alg
    claims = jwt.decode(
        token,
        key.key,
        algorithms=[alg],
        audience="rs_dataEventRecordsApi",
        issuer=meta["issuer"],
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
    )
    assert claims["client_id"] == f"cc-{alg}"
    assert claims["sub"] == f"cc-{alg}"
    assert claims["scope"] == "dataEventRecords"
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(token, key.key, algorithms=[alg], audience="someone-else", issuer=meta["issuer"])


@pytest.fixture(scope="module")
def greet_stubs():
    out = tempfile.mkdtemp()
    proto = os.environ["GREET_PROTO"]
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{os.path.dirname(proto)}", f"--python_out={out}",
         f"--grpc_python_out={out}", proto],
        check=True,
    )
    sys.path.insert(0, out)
    import greet_pb2, greet_pb2_grpc  # noqa: E401
    return greet_pb2, greet_pb2_grpc


def greeter(stubs):
    pb2, pb2_grpc = stubs
    with open(CA, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    channel = grpc.secure_channel(os.environ["GREETER_ADDR"], creds)
    return pb2, pb2_grpc.GreeterStub(channel)


def token_for(client_id, secret, scope):
    return session(client_id, secret).fetch_token(
        discovery()["token_endpoint"], grant_type="client_credentials", scope=scope
    )["access_token"]


def test_grpcio_calls_the_greeter_with_a_token(greet_stubs):
    pb2, stub = greeter(greet_stubs)
    reply = stub.SayHello(pb2.HelloRequest(name="GreeterClient"),
                          metadata=[("authorization", f"Bearer {token_for('CC', 'cc_secret', 'dataEventRecords')}")])
    assert reply.message == "Hello GreeterClient"
    reference = token_for("CC_reference", "cc_reference_secret", "dataEventRecords")
    reply = stub.SayHello(pb2.HelloRequest(name="ref"), metadata=[("authorization", f"Bearer {reference}")])
    assert reply.message == "Hello ref"


def test_grpcio_sees_unauthenticated_and_permission_denied(greet_stubs):
    pb2, stub = greeter(greet_stubs)
    with pytest.raises(grpc.RpcError) as e:
        stub.SayHello(pb2.HelloRequest(name="x"))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    noscope = token_for("NOSCOPE", "noscope_secret", "other")
    with pytest.raises(grpc.RpcError) as e:
        stub.SayHello(pb2.HelloRequest(name="x"), metadata=[("authorization", f"Bearer {noscope}")])
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED


# private_key_jwt (RFC 7523 section 2.2). The keys and their registrations are made by run.sh.
PK_RSA = os.environ["TESSERA_PK_RSA"]  # RS256 key of client PKJWT_RSA
PK_EC = os.environ["TESSERA_PK_EC"]  # ES256 key of client PKJWT_EC
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def pk_session(client_id, pem_path):
    s = OAuth2Session(client_id, open(pem_path).read(), token_endpoint_auth_method="private_key_jwt")
    # authlib's audience is the token endpoint and its lifetime an hour; RFC 7523bis wants the
    # issuer as the audience, and Tessera bounds the lifetime (300 s by default). A new auth
    # object each time: authlib keeps the jti it generates in the claims dict it is given.
    s.register_client_auth_method(
        PrivateKeyJWT(token_endpoint=URL, claims={"exp": int(time.time()) + 60}, alg="RS256")
    )
    s.verify = CA
    return s


def test_authlib_private_key_jwt_gets_a_token():
    token = pk_session("PKJWT_RSA", PK_RSA).fetch_token(
        discovery()["token_endpoint"], grant_type="client_credentials", scope="dataEventRecords"
    )
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "dataEventRecords"


def test_discovery_lists_private_key_jwt():
    meta = discovery()
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    algs = meta["token_endpoint_auth_signing_alg_values_supported"]
    assert "ES256" in algs and "RS256" in algs and "HS256" not in algs and "none" not in algs


def assertion(aud, jti=None, lifetime=60):
    with open(PK_EC) as f:
        key = f.read()
    now = int(time.time())
    claims = {"iss": "PKJWT_EC", "sub": "PKJWT_EC", "aud": aud, "jti": jti or str(uuid.uuid4()),
              "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, key, algorithm="ES256")


def post_assertion(client_assertion):
    return requests.post(
        discovery()["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "dataEventRecords", "client_id": "PKJWT_EC",
              "client_assertion_type": ASSERTION_TYPE, "client_assertion": client_assertion},
        verify=CA, timeout=10,
    )


def test_pyjwt_assertion_is_accepted_once_and_its_replay_refused():
    a = assertion(URL)
    first = post_assertion(a)
    assert first.status_code == 200, first.text
    assert first.json()["token_type"] == "Bearer"
    replay = post_assertion(a)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"


@pytest.mark.parametrize("aud", ["token_endpoint", "issuer_and_another"])
def test_pyjwt_assertion_with_another_audience_is_invalid_client(aud):
    value = discovery()["token_endpoint"] if aud == "token_endpoint" else [URL, "https://other.example"]
    r = post_assertion(assertion(value))
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


def test_pyjwt_assertion_too_long_lived_is_invalid_client():
    r = post_assertion(assertion(URL, lifetime=3600))
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


# Mutual TLS (RFC 8705): requests presents a client certificate in the TLS handshake
# (cert=(certificate, key)) and names the client by client_id alone. Certificates, the client
# CA and the registrations are made by run.sh: MTLS_SELF registered its self-signed
# certificate, MTLS_PKI the subject DN of a certificate from the server's client CA.
MTLS = {name: os.environ[f"TESSERA_MTLS_{name}"] for name in ("SELF", "PKI", "OTHER", "PKI_OTHER")}


def x5t_s256(base):
    """RFC 8705 section 3.1, computed with cryptography: SHA-256 of the DER, base64url."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    import base64
    import hashlib

    with open(f"{base}.pem", "rb") as f:
        der = x509.load_pem_x509_certificate(f.read()).public_bytes(Encoding.DER)
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def mtls_token(client_id, cert=None):
    return requests.post(
        discovery()["token_endpoint"],
        data={"grant_type": "client_credentials", "client_id": client_id, "scope": "dataEventRecords"},
        cert=(f"{MTLS[cert]}.pem", f"{MTLS[cert]}.key") if cert else None,
        verify=CA, timeout=10,
    )


@pytest.mark.parametrize("client_id,cert", [("MTLS_SELF", "SELF"), ("MTLS_PKI", "PKI")])
def test_requests_with_a_client_certificate_gets_a_token_bound_to_it(client_id, cert):
    r = mtls_token(client_id, cert)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == client_id
    assert claims["cnf"] == {"x5t#S256": x5t_s256(MTLS[cert])}


@pytest.mark.parametrize(
    "client_id,cert",
    [("MTLS_SELF", None), ("MTLS_SELF", "OTHER"), ("MTLS_PKI", None), ("MTLS_PKI", "SELF"), ("MTLS_PKI", "PKI_OTHER")],
)
def test_requests_without_the_registered_certificate_is_invalid_client(client_id, cert):
    r = mtls_token(client_id, cert)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
