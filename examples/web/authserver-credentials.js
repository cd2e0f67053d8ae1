// Fetching Sinch registration credentials from authserver in a web app.
//
// The Sinch JS SDK asks for credentials through the client listener's
// onCredentialsRequired(sinchClient, clientRegistration); the app answers with
// clientRegistration.register(jwt), or clientRegistration.registerFailed().
// The application secret never reaches the browser: authserver holds it and
// signs a credential for the signed-in user only.
//
// Who is calling: an end user's app sends `Authorization: Bearer <identity
// token>`, the token from the app's own login (OIDC ID token or similar),
// which authserver checks against its configured identity providers. That
// is the default here (getIdToken). An `X-API-Key` is for trusted backends
// only, never for code that ships to users; `headers` exists so a backend
// (or a test against `authserver dev`) can send one instead.
//
// Which Sinch user: the Sinch client is built with a user id
// (Sinch.getSinchClientBuilder().userId(...)), and authserver issues only for
// the user of the identity token, mapped by the provider's user_id_transform.
// sinchUserId() asks authserver for that id, so the app builds its client with
// it; onCredentialsRequired then names the SDK client's own userId in every
// request, and a mismatch is a registerFailed(), never a JWT for another user.
//
// TLS only (baseUrl must be https:), every request has a timeout, and every
// failure reaches clientRegistration.registerFailed().
//
// SDK reference (sinch-rtc 2.x, the Sinch JS SDK): SinchClientListener
// .onCredentialsRequired(sinchClient, clientRegistration); ClientRegistration
// { register(jwt): Promise<void>; registerFailed(): void }; DefaultSinchClient
// .userId. See examples/README.md for the links.
//
// No dependencies: standard fetch, works in browsers and Node 18+.

/** DEFAULT_TIMEOUT_MS bounds each request to authserver. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Paths of the two credential endpoints, by mode. */
const ENDPOINTS = {
  jwt: 'v1/registration-tokens',
  signature: 'v1/registration-signatures',
};

/**
 * AuthserverError is a refusal or failure from authserver, carrying its
 * problem+json (RFC 9457) fields. status is the HTTP status; title, type and
 * detail come from the body when there is one; retryAfter is the
 * Retry-After header in seconds (429 and 503), else undefined.
 */
export class AuthserverError extends Error {
  constructor({ status, type, title, detail, requestId, retryAfter }) {
    super(`authserver: ${status} ${title}${detail ? `: ${detail}` : ''}`);
    this.name = 'AuthserverError';
    this.status = status;
    this.type = type;
    this.title = title;
    this.detail = detail;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}

/**
 * fetchRegistrationCredentials asks authserver for one credential.
 *
 * mode 'jwt' (default) resolves to
 *   { token, applicationKey, userId, issuedAt, expiresAt[, instanceExpiresAt] }
 * mode 'signature' (the legacy scheme) resolves to
 *   { applicationKey, userId, sequence, signature }
 * Failures reject with an AuthserverError (or fetch's own network error).
 *
 * @param {object} o
 * @param {string|URL} o.baseUrl  authserver's public URL, e.g. https://auth.example.com
 * @param {'jwt'|'signature'} [o.mode]
 * @param {() => string|Promise<string>} [o.getIdToken]  the signed-in user's
 *   identity token; sent as `Authorization: Bearer`. Called on every request,
 *   so it can refresh an expired token.
 * @param {Record<string,string>} [o.headers]  extra headers instead, e.g.
 *   { 'X-API-Key': key } from a backend. Do not send both this key and a
 *   Bearer token: authserver answers 400.
 * @param {string} [o.userId]  whose credential. End users may leave it out
 *   (authserver uses the token's own user; naming anyone else is a 403);
 *   API-key callers must set it.
 * @param {string} [o.applicationKey]  default: authserver's default application
 * @param {number} [o.ttlSeconds]  JWT lifetime (mode 'jwt' only)
 * @param {typeof globalThis.fetch} [o.fetch]
 * @param {AbortSignal} [o.signal]  cancels the request (besides the timeout)
 * @param {number} [o.timeoutMs]  default DEFAULT_TIMEOUT_MS
 */
export async function fetchRegistrationCredentials({
  baseUrl,
  mode = 'jwt',
  getIdToken,
  headers = {},
  userId,
  applicationKey,
  ttlSeconds,
  fetch = globalThis.fetch,
  signal,
  timeoutMs = DEFAULT_TIMEOUT_MS,
} = {}) {
  const path = ENDPOINTS[mode];
  if (!path) throw new TypeError(`mode must be 'jwt' or 'signature', not ${JSON.stringify(mode)}`);
  if (!baseUrl) throw new TypeError('baseUrl is required');
  // TLS only: the identity token and the credential must not cross a network in clear.
  if (new URL(String(baseUrl)).protocol !== 'https:') throw new TypeError('baseUrl must be an https: URL');

  const h = { 'Content-Type': 'application/json', Accept: 'application/json', ...headers };
  if (getIdToken) h.Authorization = `Bearer ${await getIdToken()}`;

  // Only the fields that are set: the server rejects unknown ones and
  // fills in defaults for missing ones.
  const body = {};
  if (applicationKey !== undefined) body.applicationKey = applicationKey;
  if (userId !== undefined) body.userId = userId;
  if (ttlSeconds !== undefined && mode === 'jwt') body.ttlSeconds = ttlSeconds;

  // Relative to baseUrl, so a server behind a path prefix works too.
  const base = String(baseUrl);
  const timeout = AbortSignal.timeout(timeoutMs);
  const res = await fetch(new URL(path, base.endsWith('/') ? base : `${base}/`), {
    method: 'POST',
    headers: h,
    body: JSON.stringify(body),
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    credentials: 'omit', // authserver uses no cookies
  });
  if (!res.ok) throw await problem(res);

  const cred = await res.json();
  const need = mode === 'jwt' ? ['token'] : ['signature', 'sequence'];
  for (const k of need) {
    if (cred[k] === undefined) throw new TypeError(`authserver: response has no ${k}`);
  }
  return cred;
}

/** problem turns a non-2xx response into an AuthserverError. */
async function problem(res) {
  let p = {};
  try {
    p = await res.json(); // application/problem+json
  } catch {
    // not JSON (a proxy's error page, say): status and statusText only
  }
  const ra = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
  return new AuthserverError({
    status: res.status,
    type: p.type,
    title: p.title ?? res.statusText,
    detail: p.detail,
    requestId: p.requestId ?? res.headers.get('X-Request-Id') ?? undefined,
    retryAfter: Number.isNaN(ra) ? undefined : ra,
  });
}

/**
 * sinchUserId asks authserver which Sinch user id the signed-in user has (the
 * identity token's user id after the provider's user_id_transform). Build the
 * Sinch client with it:
 *
 *   const userId = await sinchUserId({ baseUrl, getIdToken });
 *   const sinchClient = Sinch.getSinchClientBuilder()
 *     .applicationKey(appKey).environmentHost('ocra.api.sinch.com').userId(userId).build();
 *
 * Takes the options of fetchRegistrationCredentials except mode and userId.
 * It costs one JWT (issued and dropped): no sequence is used up.
 */
export async function sinchUserId(options) {
  const { userId } = await fetchRegistrationCredentials({ ...options, mode: 'jwt', userId: undefined });
  if (typeof userId !== 'string' || userId === '') throw new TypeError('authserver: response has no userId');
  return userId;
}

/**
 * onCredentialsRequired returns a Sinch JS SDK listener callback that gets a
 * registration JWT from authserver and hands it to the SDK:
 *
 *   sinchClient.addListener({
 *     onCredentialsRequired: onCredentialsRequired({
 *       baseUrl: 'https://auth.example.com',
 *       getIdToken: () => myLogin.currentIdToken(),
 *     }),
 *     onClientStarted: ..., onClientFailed: ...,
 *   });
 *
 * It asks for the SDK client's own user (sinchClient.userId) when the client
 * has one, so authserver refuses (403) rather than issue for another user, and
 * checks the response names that user. The current JS SDK registers with JWTs
 * only, so this uses mode 'jwt'. On any failure (network, timeout, refusal,
 * a response for another user) it calls clientRegistration.registerFailed()
 * and passes the error to onError (default console.error).
 *
 * Takes the options of fetchRegistrationCredentials except mode.
 */
export function onCredentialsRequired({ onError = console.error, ...options }) {
  return async (sinchClient, clientRegistration) => {
    let token;
    try {
      const userId = sinchClient?.userId ?? options.userId;
      const cred = await fetchRegistrationCredentials({ ...options, userId, mode: 'jwt' });
      if (userId !== undefined && cred.userId !== userId) {
        throw new Error(`authserver issued for user ${cred.userId}, but the Sinch client is ${userId}`);
      }
      token = cred.token;
    } catch (err) {
      clientRegistration.registerFailed();
      onError(err);
      return;
    }
    try {
      await clientRegistration.register(token);
    } catch (err) {
      onError(err); // the SDK reports a failed registration itself (onClientFailed)
    }
  };
}
