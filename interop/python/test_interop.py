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


# DPoP (RFC 9449): proofs made here with cryptography and PyJWT, nothing from this project.
# Client DPOP (registered --require-dpop by run.sh) gets tokens; the REST API of `tessera demo
# api` (GET /weatherforecast, audience and scope api1) and the Greeter take them with the DPoP
# scheme and a fresh proof per request.
API = os.environ["TESSERA_API_URL"]
FORECAST = f"{API}/weatherforecast"
DPOP_SECRET = os.environ["TESSERA_DPOP_SECRET"]
SAY_HELLO_HTU = f"https://{os.environ['GREETER_ADDR']}/greet.Greeter/SayHello"


def b64url(data):
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sha256(text):
    import hashlib

    return hashlib.sha256(text.encode()).digest()


class DpopKey:
    """An ES256 key pair and the proofs it signs (RFC 9449 section 4.2)."""

    def __init__(self):
        import json
        from cryptography.hazmat.primitives.asymmetric import ec
        from jwt.algorithms import ECAlgorithm

        self.private = ec.generate_private_key(ec.SECP256R1())
        self.jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        assert "d" not in self.jwk

    def thumbprint(self):
        """RFC 7638: SHA-256 of the required members, lexicographic order, no whitespace."""
        import json

        members = {k: self.jwk[k] for k in ("crv", "kty", "x", "y")}
        return b64url(sha256(json.dumps(members, separators=(",", ":"), sort_keys=True)))

    def proof(self, htm, htu, access_token=None, iat=None):
        claims = {"jti": str(uuid.uuid4()), "htm": htm, "htu": htu, "iat": iat or int(time.time())}
        if access_token is not None:
            claims["ath"] = b64url(sha256(access_token))  # section 4.2: hash of the token
        return jwt.encode(claims, self.private, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": self.jwk})


def dpop_token_response(proof, scope="api1"):
    return requests.post(
        discovery()["token_endpoint"],
        auth=("DPOP", DPOP_SECRET),
        data={"grant_type": "client_credentials", "scope": scope},
        headers={"DPoP": proof} if proof else {},
        verify=CA, timeout=10,
    )


def dpop_token(key, scope="api1"):
    r = dpop_token_response(key.proof("POST", discovery()["token_endpoint"]), scope)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def forecast(token, proof=None, scheme="DPoP"):
    headers = {"Authorization": f"{scheme} {token}"}
    if proof:
        headers["DPoP"] = proof
    return requests.get(FORECAST, headers=headers, verify=CA, timeout=10)


def challenge(r):
    return r.headers.get("WWW-Authenticate", "")


def test_dpop_token_request_with_a_pyjwt_proof_is_bound_to_its_key():
    key = DpopKey()
    r = dpop_token_response(key.proof("POST", discovery()["token_endpoint"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "DPoP"
    assert body["scope"] == "api1"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == "DPOP"
    assert claims["aud"] == "api1"
    assert claims["cnf"] == {"jkt": key.thumbprint()}


def test_dpop_token_request_refusals_are_invalid_dpop_proof():
    key = DpopKey()
    token_endpoint = discovery()["token_endpoint"]
    # Client DPOP is registered --require-dpop: no proof, no token.
    for proof in [None, key.proof("GET", token_endpoint), key.proof("POST", f"{URL}/connect/introspect"),
                  key.proof("POST", token_endpoint, iat=int(time.time()) - 300)]:
        r = dpop_token_response(proof)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid_dpop_proof"
    # A proof is used once (RFC 9449 section 11.1).
    once = key.proof("POST", token_endpoint)
    assert dpop_token_response(once).status_code == 200
    replay = dpop_token_response(once)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_dpop_proof")


def test_dpop_rest_api_accepts_the_token_with_fresh_proofs():
    key = DpopKey()
    token = dpop_token(key)
    for _ in range(2):
        r = forecast(token, key.proof("GET", FORECAST, token))
        assert r.status_code == 200, (r.status_code, challenge(r))
        body = r.json()
        assert body["caller"] == "DPOP"
        assert [d["summary"] for d in body["forecast"]] == ["Freezing", "Mild", "Warm"]


def test_dpop_rest_api_refuses_a_replayed_proof():
    key = DpopKey()
    token = dpop_token(key)
    proof = key.proof("GET", FORECAST, token)
    assert forecast(token, proof).status_code == 200
    r = forecast(token, proof)
    assert r.status_code == 401
    assert challenge(r).startswith('DPoP realm="api1", error="invalid_dpop_proof"'), challenge(r)
    assert "already used" in challenge(r)


@pytest.mark.parametrize("case", ["another path", "another method", "another host", "no ath", "ath of another token",
                                  "another key", "too old"])
def test_dpop_rest_api_refuses_a_proof_that_does_not_fit_as_invalid_dpop_proof(case):
    key = DpopKey()
    token = dpop_token(key)
    proof = {
        "another path": lambda: key.proof("GET", f"{API}/other", token),
        "another method": lambda: key.proof("POST", FORECAST, token),
        "another host": lambda: key.proof("GET", "https://api.example/weatherforecast", token),
        "no ath": lambda: key.proof("GET", FORECAST),
        "ath of another token": lambda: key.proof("GET", FORECAST, dpop_token(key)),
        "another key": lambda: DpopKey().proof("GET", FORECAST, token),
        "too old": lambda: key.proof("GET", FORECAST, token, iat=int(time.time()) - 300),
    }[case]()
    r = forecast(token, proof)
    assert r.status_code == 401, r.text
    assert challenge(r).startswith('DPoP realm="api1", error="invalid_dpop_proof"'), challenge(r)
    # The same token with a proof that fits still passes: nothing was used up.
    assert forecast(token, key.proof("GET", FORECAST, token)).status_code == 200


def test_dpop_bound_token_as_bearer_is_invalid_token():
    key = DpopKey()
    token = dpop_token(key)
    for proof in [None, key.proof("GET", FORECAST, token)]:
        r = forecast(token, proof, scheme="Bearer")
        assert r.status_code == 401
        assert challenge(r).startswith('Bearer realm="api1", error="invalid_token"'), challenge(r)
        assert "DPoP scheme" in challenge(r)


def test_dpop_scheme_without_a_proof_is_invalid_dpop_proof():
    token = dpop_token(DpopKey())
    r = forecast(token)
    assert r.status_code == 401
    assert challenge(r).startswith('DPoP realm="api1", error="invalid_dpop_proof"'), challenge(r)


def say_hello_dpop(stubs, token, proof, scheme="DPoP", name="dpop"):
    pb2, stub = greeter(stubs)
    metadata = [("authorization", f"{scheme} {token}")]
    if proof:
        metadata.append(("dpop", proof))
    return stub.SayHello(pb2.HelloRequest(name=name), metadata=metadata)


def test_grpcio_calls_the_greeter_with_a_dpop_bound_token(greet_stubs):
    key = DpopKey()
    token = dpop_token(key, "dataEventRecords")
    for name in ["dpop-1", "dpop-2"]:
        reply = say_hello_dpop(greet_stubs, token, key.proof("POST", SAY_HELLO_HTU, token), name=name)
        assert reply.message == f"Hello {name}"


@pytest.mark.parametrize("case", ["as bearer", "wrong htu", "GET", "replayed", "another key"])
def test_grpcio_dpop_misuse_is_unauthenticated(greet_stubs, case):
    key = DpopKey()
    token = dpop_token(key, "dataEventRecords")
    scheme, proof = "DPoP", key.proof("POST", SAY_HELLO_HTU, token)
    if case == "as bearer":
        scheme = "Bearer"
    elif case == "wrong htu":
        proof = key.proof("POST", f"{API}/greet.Greeter/SayHello", token)
    elif case == "GET":
        proof = key.proof("GET", SAY_HELLO_HTU, token)
    elif case == "replayed":
        assert say_hello_dpop(greet_stubs, token, proof).message == "Hello dpop"
    elif case == "another key":
        proof = DpopKey().proof("POST", SAY_HELLO_HTU, token)
    with pytest.raises(grpc.RpcError) as e:
        say_hello_dpop(greet_stubs, token, proof, scheme)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    expected = "invalid token: a DPoP-bound token must" if case == "as bearer" else "invalid DPoP proof: "
    assert e.value.details().startswith(expected), e.value.details()


# Issue 15: federated workload identity. The cluster's key and trust are made by run.sh.
K8S = "https://kubernetes.default.svc.cluster.local"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def cluster_key():
    with open(os.environ["TESSERA_CLUSTER_KEY"]) as f:
        return f.read()


def k8s_token(namespace="payments", aud=None):
    """A projected service-account token as the Kubernetes API server issues it."""
    now = int(time.time())
    claims = {
        "aud": [aud or URL], "iss": K8S, "iat": now, "nbf": now, "exp": now + 3600,
        "jti": str(uuid.uuid4()), "sub": f"system:serviceaccount:{namespace}:api",
        "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": "api", "uid": str(uuid.uuid4())},
                          "pod": {"name": "api-7d9f8c6b5-x2k4p", "uid": str(uuid.uuid4())}},
    }
    return jwt.encode(claims, cluster_key(), algorithm="ES256", headers={"kid": "cluster-1"})


def unverified(token):
    return jwt.decode(token, options={"verify_signature": False})


def test_workload_token_as_client_assertion_gets_a_token_for_the_rules_client():
    r = requests.post(discovery()["token_endpoint"], verify=CA, timeout=10, data={
        "grant_type": "client_credentials", "scope": "dataEventRecords",
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": k8s_token()})
    assert r.status_code == 200, r.text
    claims = unverified(r.json()["access_token"])
    assert claims["client_id"] == "workload-payments"
    assert claims["workload"] == {"iss": K8S, "sub": "system:serviceaccount:payments:api", "trust": "cluster",
                                  "rule": 1}


@pytest.mark.parametrize("case", ["another audience", "another namespace"])
def test_workload_token_refusals_are_invalid_client(case):
    token = k8s_token(aud="https://elsewhere.example") if case == "another audience" else k8s_token("billing")
    r = requests.post(discovery()["token_endpoint"], verify=CA, timeout=10, data={
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE, "client_assertion": token})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text


def test_authlib_assertion_session_jwt_bearer_grant_with_a_workload_identity():
    from authlib.integrations.requests_client import AssertionSession
    meta = discovery()
    assert JWT_BEARER_GRANT in meta["grant_types_supported"]
    session = AssertionSession(
        meta["token_endpoint"], issuer=K8S, subject="system:serviceaccount:payments:api", audience=URL,
        grant_type=JWT_BEARER_GRANT, key=cluster_key(), alg="ES256", scope="dataEventRecords",
        claims={"kubernetes.io": {"namespace": "payments", "serviceaccount": {"name": "api"}}})
    session.verify = CA
    token = session.refresh_token()
    assert unverified(token["access_token"])["client_id"] == "workload-payments"
    # A subject no rule maps: invalid_grant (RFC 7523 section 3.1).
    other = AssertionSession(
        meta["token_endpoint"], issuer=K8S, subject="system:serviceaccount:billing:api", audience=URL,
        grant_type=JWT_BEARER_GRANT, key=cluster_key(), alg="ES256")
    other.verify = CA
    with pytest.raises(Exception) as e:
        other.refresh_token()
    assert "invalid_grant" in str(e.value)


def test_token_exchange_of_a_workload_token():
    meta = discovery()
    assert TOKEN_EXCHANGE in meta["grant_types_supported"]
    r = requests.post(meta["token_endpoint"], auth=("gateway", "gateway_interop_secret"), verify=CA, timeout=10,
                      data={"grant_type": TOKEN_EXCHANGE, "subject_token": k8s_token(),
                            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    claims = unverified(body["access_token"])
    assert (claims["sub"], claims["client_id"], claims["act"]) == ("workload-payments", "gateway", {"sub": "gateway"})
    # Wider than the subject's client may get: invalid_scope.
    r = requests.post(meta["token_endpoint"], auth=("gateway", "gateway_interop_secret"), verify=CA, timeout=10,
                      data={"grant_type": TOKEN_EXCHANGE, "subject_token": k8s_token(), "scope": "api1",
                            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text


# Issue 16: the admin REST API from requests, with a token of Tessera itself (client ADMIN is
# allowed the built-in scope tessera:admin).
ADMIN = ("ADMIN", "admin_interop_secret")


def admin_token():
    r = requests.post(discovery()["token_endpoint"], auth=ADMIN, verify=CA, timeout=10,
                      data={"grant_type": "client_credentials", "resource": "tessera-admin"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def test_requests_lists_clients_through_the_admin_api():
    bearer = {"Authorization": f"Bearer {admin_token()}"}
    r = requests.get(f"{URL}/admin/clients", headers=bearer, verify=CA, timeout=10)
    assert r.status_code == 200, r.text
    clients = {c["client_id"]: c for c in r.json()["clients"]}
    assert {"CC", "ADMIN", "PKJWT_RSA"} <= clients.keys()
    assert "cc_secret" not in r.text and "$argon2" not in r.text, "no secret or hash in answers"
    # No token: an RFC 6750 challenge; an unknown client: an RFC 9457 problem.
    r = requests.get(f"{URL}/admin/clients", verify=CA, timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith('Bearer realm="tessera-admin"')
    r = requests.get(f"{URL}/admin/clients/nobody", headers=bearer, verify=CA, timeout=10)
    assert r.status_code == 404 and r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["type"] == "urn:tessera:problem:not-found"
    # The OpenAPI document needs no token.
    doc = requests.get(f"{URL}/admin/openapi.json", verify=CA, timeout=10).json()
    assert doc["openapi"] == "3.1.0" and "/admin/clients" in doc["paths"]
