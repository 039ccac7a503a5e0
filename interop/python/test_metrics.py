"""Issue 16: the server's /metrics (on its own plain-HTTP listener, --metrics-listen) read by
the Prometheus project's own text parser, and its counters moving as clients use the server;
/healthz and /readyz on the public listener."""

import os

import requests
from authlib.integrations.requests_client import OAuth2Session
from prometheus_client.parser import text_string_to_metric_families

URL = os.environ["TESSERA_URL"]
CA = os.environ["TESSERA_CA"]
METRICS = os.environ["TESSERA_METRICS_URL"]
# authlib passes verify=True itself: trust the development CA through the environment.
os.environ["REQUESTS_CA_BUNDLE"] = CA


def scrape():
    r = requests.get(METRICS, timeout=10)
    r.raise_for_status()
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    # Every line must parse: the parser raises on anything outside the format.
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def value(families, family, sample_name, **labels):
    f = families.get(family)
    if f is None:
        return 0.0
    return sum(
        s.value for s in f.samples if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def token(client_id, secret):
    s = OAuth2Session(client_id, secret)
    return s.fetch_token(f"{URL}/connect/token", grant_type="client_credentials", scope="dataEventRecords")


def test_metrics_parse_and_counters_move():
    before = scrape()
    # prometheus_client names a counter family without its _total suffix.
    assert before["tessera_token_requests"].type == "counter"
    assert before["tessera_request_duration_seconds"].type == "histogram"
    assert before["process_resident_memory_bytes"].type == "gauge"
    issued = dict(client_id="CC", grant_type="client_credentials", result="issued")
    n0 = value(before, "tessera_token_requests", "tessera_token_requests_total", **issued)
    d0 = value(before, "tessera_request_duration_seconds", "tessera_request_duration_seconds_count", endpoint="token")
    f0 = value(
        before, "tessera_client_auth_failures", "tessera_client_auth_failures_total",
        method="client_secret_basic", reason="wrong_secret",
    )
    for _ in range(3):
        token("CC", "cc_secret")
    r = requests.post(
        f"{URL}/connect/token", auth=("CC", "wrong"), data={"grant_type": "client_credentials"}, verify=CA, timeout=10
    )
    assert r.status_code == 401
    after = scrape()
    assert value(after, "tessera_token_requests", "tessera_token_requests_total", **issued) == n0 + 3
    d1 = value(after, "tessera_request_duration_seconds", "tessera_request_duration_seconds_count", endpoint="token")
    assert d1 == d0 + 4
    f1 = value(
        after, "tessera_client_auth_failures", "tessera_client_auth_failures_total",
        method="client_secret_basic", reason="wrong_secret",
    )
    assert f1 == f0 + 1
    inf = value(
        after, "tessera_request_duration_seconds", "tessera_request_duration_seconds_bucket", endpoint="token", le="+Inf"
    )
    assert inf == d1
    ages = [s for s in after["tessera_signing_key_age_seconds"].samples if s.labels["phase"] == "active"]
    assert {s.labels["alg"] for s in ages} >= {"ES256", "RS256", "PS256", "EdDSA"}


def test_metrics_are_not_on_the_public_listener():
    assert requests.get(f"{URL}/metrics", verify=CA, timeout=10).status_code == 404


def test_health_and_readiness():
    r = requests.get(f"{URL}/healthz", verify=CA, timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "alive"}
    r = requests.get(f"{URL}/readyz", verify=CA, timeout=10)
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"store": "ok", "signing_keys": "ok", "registry": "ok"}}
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-request-id"]
