// openid-client v6 against Tessera: discovery, client credentials (Basic and post),
// introspection and revocation. The dev CA is trusted through NODE_EXTRA_CA_CERTS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import { readFileSync } from 'node:fs';

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
