// Runs authserver-credentials.js against a running authserver and checks
// what comes back with node:crypto, independently of authserver's Go code.
// No npm dependencies: node:test, node:assert, node:crypto, global fetch.
//
// examples/examples_test.go starts the real binary and runs this script;
// by hand, against `authserver dev` (data dir ./data):
//
//   NODE_EXTRA_CA_CERTS=data/dev-cert.pem EXAMPLE_BASE_URL=https://127.0.0.1:8443 \
//   EXAMPLE_AUTH=api-key EXAMPLE_API_KEY=dev-api-key \
//   EXAMPLE_APP_KEY=demo-app EXAMPLE_APP_SECRET_FILE=data/dev-app-secret \
//   node examples/web/test.mjs
//
// EXAMPLE_AUTH=bearer instead needs a server with an HS256 identity provider:
// EXAMPLE_ID_ISSUER, EXAMPLE_ID_AUDIENCE and EXAMPLE_ID_SECRET_FILE describe
// it, and the script signs its own identity tokens, as a login would.

import assert from 'node:assert/strict';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { test } from 'node:test';

import {
  AuthserverError,
  fetchRegistrationCredentials,
  onCredentialsRequired,
  sinchUserId,
} from './authserver-credentials.js';

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

const baseUrl = env('EXAMPLE_BASE_URL');
const appKey = env('EXAMPLE_APP_KEY');
// The secret file holds one Base64 secret per line, newest (signing) first.
const appSecret = readFileSync(env('EXAMPLE_APP_SECRET_FILE'), 'utf8').trim().split('\n')[0].trim();
const authMode = env('EXAMPLE_AUTH');
assert.ok(['api-key', 'bearer'].includes(authMode), `EXAMPLE_AUTH=${authMode}: want api-key or bearer`);

// A fresh user per run, so its sequences are its own even on a reused server.
const user = `u-${randomUUID()}`;

/** idToken signs an HS256 identity token, as the app's login would issue. */
function idToken(sub) {
  const key = readFileSync(env('EXAMPLE_ID_SECRET_FILE')).toString('utf8').trim();
  const now = Math.floor(Date.now() / 1000);
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({
    iss: env('EXAMPLE_ID_ISSUER'),
    aud: env('EXAMPLE_ID_AUDIENCE'),
    sub,
    iat: now,
    exp: now + 300,
  })}`;
  return `${input}.${createHmac('sha256', key).update(input).digest('base64url')}`;
}

/**
 * auth is how this run authenticates: the example's default Bearer flow
 * (with no userId: authserver uses the token's own), or an API key, which
 * must name the user.
 */
function auth(apiKey = process.env.EXAMPLE_API_KEY) {
  if (authMode === 'bearer') return { getIdToken: async () => idToken(user) };
  return { headers: { 'X-API-Key': apiKey }, userId: user };
}

/** recordingFetch is fetch that remembers each request's URL and headers. */
function recordingFetch() {
  const calls = [];
  const f = (url, init) => {
    calls.push({ url: String(url), method: init.method, headers: new Headers(init.headers) });
    return fetch(url, init);
  };
  return { fetch: f, calls };
}

function checkAuthHeaders(call) {
  if (authMode === 'bearer') {
    assert.match(call.headers.get('authorization') ?? '', /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal(call.headers.get('x-api-key'), null);
  } else {
    assert.equal(call.headers.get('authorization'), null, 'an API-key caller must not also send Authorization');
  }
}

/**
 * checkJWT verifies a registration JWT the way Sinch documents it; ttlSeconds
 * is the lifetime asked for (none: the server's default, at least 60 s).
 */
function checkJWT(token, ttlSeconds) {
  const [h, p, s] = token.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  const day = new Date(claims.iat * 1000).toISOString().slice(0, 10).replaceAll('-', '');
  // Exactly these two members, in this order: kid is hkdfv1-<UTC date of iat>.
  assert.equal(Buffer.from(h, 'base64url').toString('utf8'), `{"alg":"HS256","kid":"hkdfv1-${day}"}`);
  assert.equal(claims.iss, `//rtc.sinch.com/applications/${appKey}`);
  assert.equal(claims.sub, `//rtc.sinch.com/applications/${appKey}/users/${user}`);
  if (ttlSeconds === undefined) assert.ok(claims.exp - claims.iat >= 60, 'exp - iat >= 60');
  else assert.equal(claims.exp - claims.iat, ttlSeconds);
  assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 120, `iat ${claims.iat} is not now`);
  assert.equal(typeof claims.nonce, 'string');
  assert.ok(claims.nonce.length > 0);
  // Signing key = HMAC-SHA256(base64-decoded secret, "YYYYMMDD").
  const signingKey = createHmac('sha256', Buffer.from(appSecret, 'base64')).update(day).digest();
  assert.equal(s, createHmac('sha256', signingKey).update(`${h}.${p}`).digest('base64url'), 'JWT signature');
  return claims;
}

/** legacySignature is Base64(SHA1(userId + applicationKey + sequence + secret text)). */
function legacySignature(userId, sequence) {
  return createHash('sha1').update(`${userId}${appKey}${sequence}${appSecret}`, 'utf8').digest('base64');
}

test(`jwt mode (${authMode})`, async () => {
  const rec = recordingFetch();
  const cred = await fetchRegistrationCredentials({ baseUrl, mode: 'jwt', ttlSeconds: 300, fetch: rec.fetch, ...auth() });
  assert.equal(rec.calls.length, 1);
  assert.equal(rec.calls[0].method, 'POST');
  assert.equal(new URL(rec.calls[0].url).pathname, '/v1/registration-tokens');
  checkAuthHeaders(rec.calls[0]);

  const claims = checkJWT(cred.token, 300);
  assert.equal(cred.applicationKey, appKey);
  assert.equal(cred.userId, user);
  assert.equal(Date.parse(cred.issuedAt), claims.iat * 1000);
  assert.equal(Date.parse(cred.expiresAt), claims.exp * 1000);
});

test(`signature mode (${authMode}): sequences increase, signatures match`, async () => {
  const rec = recordingFetch();
  const seen = [];
  for (let i = 0; i < 3; i++) {
    const cred = await fetchRegistrationCredentials({ baseUrl, mode: 'signature', fetch: rec.fetch, ...auth() });
    assert.deepEqual(Object.keys(cred).sort(), ['applicationKey', 'sequence', 'signature', 'userId']);
    assert.equal(cred.applicationKey, appKey);
    assert.equal(cred.userId, user);
    assert.equal(cred.signature, legacySignature(user, cred.sequence));
    seen.push(cred.sequence);
  }
  // 1, 2, 3 with sequence.clock_floor off; with it on (the default) the
  // time in microseconds, still exact in a JavaScript number until 2255.
  assert.ok(seen.every(Number.isSafeInteger), `sequences ${seen} are exact JavaScript integers`);
  assert.ok(seen[0] >= 1 && seen[1] > seen[0] && seen[2] > seen[1], `sequences ${seen} go up`);
  for (const c of rec.calls) {
    assert.equal(new URL(c.url).pathname, '/v1/registration-signatures');
    checkAuthHeaders(c);
  }
});

test(`errors carry the problem+json (${authMode})`, async () => {
  // api-key: a wrong key is 401. bearer: asking for another user is 403.
  const [opts, status, title, type] =
    authMode === 'bearer'
      ? [{ ...auth(), userId: `${user}-other` }, 403, 'Forbidden', 'forbidden']
      : [auth('wrong-key'), 401, 'Authentication required', 'unauthenticated'];
  for (const mode of ['jwt', 'signature']) {
    await assert.rejects(fetchRegistrationCredentials({ baseUrl, mode, ...opts }), (err) => {
      assert.ok(err instanceof AuthserverError, `want AuthserverError, got ${err}`);
      assert.equal(err.status, status);
      assert.equal(err.title, title);
      assert.equal(err.type, `urn:authserver:problem:${type}`);
      assert.ok(err.detail, 'detail is set');
      assert.ok(err.requestId, 'requestId is set');
      assert.ok(err.message.includes(`${status} ${title}`), err.message);
      return true;
    });
  }
});

test(`onCredentialsRequired registers a JWT (${authMode})`, async () => {
  const got = { register: [], failed: 0, errors: [] };
  const registration = {
    register: async (jwt) => void got.register.push(jwt),
    registerFailed: () => void got.failed++,
  };
  // The SDK client's user is the one asked for (DefaultSinchClient.userId).
  const sinchClient = { userId: user };
  await onCredentialsRequired({ baseUrl, onError: (e) => got.errors.push(e), ...auth() })(sinchClient, registration);
  assert.deepEqual(got.errors, []);
  assert.equal(got.failed, 0);
  assert.equal(got.register.length, 1);
  checkJWT(got.register[0]);
});

test(`onCredentialsRequired calls registerFailed on a refusal (${authMode})`, async () => {
  const got = { register: [], failed: 0, errors: [] };
  const registration = {
    register: async (jwt) => void got.register.push(jwt),
    registerFailed: () => void got.failed++,
  };
  const opts = authMode === 'bearer' ? { getIdToken: async () => 'not-a-token' } : auth('wrong-key');
  await onCredentialsRequired({ baseUrl, onError: (e) => got.errors.push(e), ...opts })({}, registration);
  assert.equal(got.register.length, 0);
  assert.equal(got.failed, 1);
  assert.equal(got.errors.length, 1);
  assert.ok(got.errors[0] instanceof AuthserverError);
  assert.equal(got.errors[0].status, 401);
});

test('bad options fail before any request', async () => {
  await assert.rejects(fetchRegistrationCredentials({ baseUrl, mode: 'sms', ...auth() }), TypeError);
  await assert.rejects(fetchRegistrationCredentials({ mode: 'jwt', ...auth() }), TypeError);
});

test(`sinchUserId names the user authserver issues for (${authMode})`, async () => {
  if (authMode !== 'bearer') return; // an API key has no user of its own
  assert.equal(await sinchUserId({ baseUrl, ...auth() }), user);
});

test(`onCredentialsRequired refuses a client started for another user (${authMode})`, async () => {
  // An API key may ask for anyone: only an end user's token is refused.
  if (authMode !== 'bearer') return;
  const got = { register: [], failed: 0, errors: [] };
  const registration = {
    register: async (jwt) => void got.register.push(jwt),
    registerFailed: () => void got.failed++,
  };
  const opts = auth();
  await onCredentialsRequired({ baseUrl, onError: (e) => got.errors.push(e), ...opts })({ userId: `${user}-other` }, registration);
  assert.equal(got.failed, 1);
  assert.equal(got.register.length, 0);
  assert.equal(got.errors[0].status, 403);
});

test('onCredentialsRequired calls registerFailed on a timeout and on plain http', async () => {
  // A TCP server that accepts and never answers: the TLS handshake hangs.
  const silent = createServer(() => {});
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  try {
    for (const [url, want] of [
      [`https://127.0.0.1:${silent.address().port}`, 'TimeoutError'],
      [baseUrl.replace(/^https:/, 'http:'), 'TypeError'],
    ]) {
      const got = { register: 0, failed: 0, errors: [] };
      const registration = { register: async () => void got.register++, registerFailed: () => void got.failed++ };
      const started = Date.now();
      await onCredentialsRequired({ baseUrl: url, timeoutMs: 300, onError: (e) => got.errors.push(e), ...auth() })(
        { userId: user },
        registration,
      );
      assert.equal(got.failed, 1, url);
      assert.equal(got.register, 0, url);
      assert.equal(got.errors[0].name, want, `${url}: ${got.errors[0]}`);
      assert.ok(Date.now() - started < 5000, 'the timeout bounds the wait');
    }
  } finally {
    silent.close();
  }
});
