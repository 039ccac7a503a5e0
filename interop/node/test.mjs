// openid-client v6 against Tessera: discovery, client credentials (Basic and post),
// introspection and revocation, private_key_jwt, and DPoP (RFC 9449) at the token endpoint and
// at the guarded REST API of `tessera demo api`. The dev CA is trusted through NODE_EXTRA_CA_CERTS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

const issuer = new URL(process.env.TESSERA_URL);

async function config(id, secret, auth = client.ClientSecretBasic(secret)) {
  return client.discovery(issuer, id, undefined, auth);
}

test('discovery finds the endpoints', async () => {
  const c = await config('CC', 'cc_secret');
  const m = c.serverMetadata();
  assert.equal(m.issuer, process.env.TESSERA_URL);
  assert.equal(m.token_endpoint, `${process.env.TESSERA_URL}/connect/token`);
  assert.ok(m.introspection_endpoint && m.revocation_endpoint);
});

test('clientCredentialsGrant with client_secret_basic and client_secret_post', async () => {
  for (const auth of [client.ClientSecretBasic('cc_secret'), client.ClientSecretPost('cc_secret')]) {
    const c = await config('CC', 'cc_secret', auth);
    const t = await client.clientCredentialsGrant(c, { scope: 'dataEventRecords' });
    assert.equal(t.token_type.toLowerCase(), 'bearer');
    assert.equal(t.scope, 'dataEventRecords');
    assert.ok(t.expiresIn() > 3500);
    assert.equal(t.access_token.split('.').length, 3);
  }
});

test('a wrong secret is a 401 with a Basic challenge (RFC 6749 section 5.2)', async () => {
  const c = await config('CC', 'wrong');
  await assert.rejects(client.clientCredentialsGrant(c, { scope: 'dataEventRecords' }), (e) => {
    assert.equal(e.status, 401);
    assert.equal(e.cause[0].scheme, 'basic');
    return true;
  });
  // client_secret_post gets the same error, without a challenge.
  const post = await config('CC', 'wrong', client.ClientSecretPost('wrong'));
  await assert.rejects(client.clientCredentialsGrant(post, { scope: 'dataEventRecords' }), (e) => e.error === 'invalid_client');
});

test('tokenIntrospection and tokenRevocation of a reference token', async () => {
  const cc = await config('CC_reference', 'cc_reference_secret');
  const api = await config('rs_dataEventRecordsApi', 'api_secret');
  const t = await client.clientCredentialsGrant(cc, { scope: 'dataEventRecords' });
  const active = await client.tokenIntrospection(api, t.access_token);
  assert.equal(active.active, true);
  assert.equal(active.client_id, 'CC_reference');
  assert.equal(active.scope, 'dataEventRecords');
  assert.equal(active.aud, 'rs_dataEventRecordsApi');
  await client.tokenRevocation(cc, t.access_token);
  const after = await client.tokenIntrospection(api, t.access_token);
  assert.deepEqual(after, { active: false });
});

// private_key_jwt: openid-client builds the assertion itself (aud = the issuer, RFC 7523bis).
async function ecPrivateKey(path) {
  const pem = readFileSync(path, 'utf8').replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const der = Buffer.from(pem, 'base64');
  return crypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
}

test('clientCredentialsGrant with PrivateKeyJwt (ES256)', async () => {
  const key = await ecPrivateKey(process.env.TESSERA_PK_EC);
  const c = await client.discovery(issuer, 'PKJWT_EC', undefined, client.PrivateKeyJwt(key));
  for (let i = 0; i < 2; i++) {
    // Each grant signs a new assertion with a new jti; a second one must not be taken for a replay.
    const t = await client.clientCredentialsGrant(c, { scope: 'dataEventRecords' });
    assert.equal(t.token_type.toLowerCase(), 'bearer');
    assert.equal(t.scope, 'dataEventRecords');
  }
});

test('PrivateKeyJwt with a key the client did not register is invalid_client', async () => {
  const other = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  const c = await client.discovery(issuer, 'PKJWT_EC', undefined, client.PrivateKeyJwt(other.privateKey));
  await assert.rejects(client.clientCredentialsGrant(c, { scope: 'dataEventRecords' }), (e) => e.error === 'invalid_client');
});

// DPoP (RFC 9449): openid-client's DPoP handle signs the proofs, at the token endpoint and for
// each call to the REST API (GET /weatherforecast, audience and scope api1). Client DPOP is
// registered --require-dpop by run.sh.
const forecast = new URL('/weatherforecast', process.env.TESSERA_API_URL);
const payload = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url'));
const header = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url'));

// RFC 7638, with node:crypto: SHA-256 of the required EC members in lexicographic order.
async function thumbprint(publicKey) {
  const { crv, kty, x, y } = await crypto.subtle.exportKey('jwk', publicKey);
  return createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
}

// A config whose requests are recorded (openid-client's customFetch), and a DPoP-bound token.
async function dpopClient() {
  const c = await config('DPOP', process.env.TESSERA_DPOP_SECRET);
  const sent = [];
  c[client.customFetch] = (url, options) => {
    sent.push({ url, headers: new Headers(options.headers) });
    return fetch(url, options);
  };
  const keyPair = await client.randomDPoPKeyPair('ES256');
  const DPoP = client.getDPoPHandle(c, keyPair);
  const t = await client.clientCredentialsGrant(c, { scope: 'api1' }, { DPoP });
  return { c, sent, keyPair, DPoP, t };
}

function challengeOf(e) {
  assert.equal(e.status, 401);
  assert.equal(e.cause.length, 1);
  return e.cause[0];
}

test('DPoP: clientCredentialsGrant with a DPoP handle gets a token bound to the key (cnf.jkt)', async () => {
  const { sent, keyPair, t } = await dpopClient();
  assert.equal(t.token_type.toLowerCase(), 'dpop');
  assert.equal(t.scope, 'api1');
  const claims = payload(t.access_token);
  assert.equal(claims.client_id, 'DPOP');
  assert.deepEqual(claims.cnf, { jkt: await thumbprint(keyPair.publicKey) });
  // The token request carried openid-client's proof for POST {token_endpoint}.
  const proof = sent[0].headers.get('dpop');
  assert.equal(header(proof).typ, 'dpop+jwt');
  assert.equal(payload(proof).htm, 'POST');
  assert.equal(payload(proof).htu, `${process.env.TESSERA_URL}/connect/token`);
});

test('DPoP: a client registered --require-dpop gets no token without a proof', async () => {
  const c = await config('DPOP', process.env.TESSERA_DPOP_SECRET);
  await assert.rejects(client.clientCredentialsGrant(c, { scope: 'api1' }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.error, 'invalid_dpop_proof');
    return true;
  });
});

test('DPoP: fetchProtectedResource calls the guarded REST API with a fresh proof each time', async () => {
  const { c, sent, DPoP, t } = await dpopClient();
  const ath = createHash('sha256').update(t.access_token).digest('base64url');
  for (let i = 0; i < 2; i++) {
    const r = await client.fetchProtectedResource(c, t.access_token, forecast, 'GET', undefined, undefined, { DPoP });
    assert.equal(r.status, 200);
    const body = await r.json();
    assert.equal(body.caller, 'DPOP');
    assert.equal(body.forecast.length, 3);
  }
  const calls = sent.slice(1);
  assert.equal(calls.length, 2);
  for (const { headers } of calls) {
    assert.equal(headers.get('authorization'), `DPoP ${t.access_token}`);
    const proof = payload(headers.get('dpop'));
    assert.deepEqual([proof.htm, proof.htu, proof.ath], ['GET', forecast.href, ath]);
  }
  assert.notEqual(payload(calls[0].headers.get('dpop')).jti, payload(calls[1].headers.get('dpop')).jti);
});

test('DPoP: the bound token sent as Bearer is refused with invalid_token (RFC 9449 section 7.2)', async () => {
  const { c, t } = await dpopClient();
  // Without the DPoP option, openid-client sends Authorization: Bearer.
  await assert.rejects(client.fetchProtectedResource(c, t.access_token, forecast, 'GET'), (e) => {
    const ch = challengeOf(e);
    assert.equal(ch.scheme, 'bearer');
    assert.equal(ch.parameters.realm, 'api1');
    assert.equal(ch.parameters.error, 'invalid_token');
    assert.match(ch.parameters.error_description, /DPoP scheme/);
    return true;
  });
});

test('DPoP: proofs from another key are refused with invalid_dpop_proof', async () => {
  const { c, DPoP, t } = await dpopClient();
  const other = client.getDPoPHandle(c, await client.randomDPoPKeyPair('ES256'));
  await assert.rejects(
    client.fetchProtectedResource(c, t.access_token, forecast, 'GET', undefined, undefined, { DPoP: other }),
    (e) => {
      const ch = challengeOf(e);
      assert.equal(ch.scheme, 'dpop');
      assert.equal(ch.parameters.error, 'invalid_dpop_proof');
      assert.match(ch.parameters.error_description, /not the key the token is bound to/);
      assert.ok(ch.parameters.algs.split(' ').includes('ES256'));
      return true;
    },
  );
  // The right key still passes afterwards.
  const r = await client.fetchProtectedResource(c, t.access_token, forecast, 'GET', undefined, undefined, { DPoP });
  assert.equal(r.status, 200);
});
