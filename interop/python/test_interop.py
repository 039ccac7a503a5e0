"""Python clients nobody on this project wrote, against the real server over TLS."""

import os
import subprocess
import sys
import ssl
import tempfile

import grpc
import jwt
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

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
