// Who is signed in and how the console talks to the API: the sign-in's
// authorization code flow with PKCE against OIDC_ISSUER, asking for
// offline_access (the tokens live in this tab's sessionStorage only), the
// bearer-authenticated API call, renewing the access token with the
// refresh token before it expires (so a tab left open for hours stays
// signed in), and what happens when the API refuses the token.

// Longest wait for one API answer (the plan waits up to 20 s on the server).
const REQUEST_TIMEOUT = 30000;
// A token that expires sends the browser to the issuer again (a live
// session there comes straight back), at most once in this long.
const REAUTH_EVERY = 60000;
// An access token this close to its expiry is renewed before it is sent.
const RENEW_BEFORE = 30000;

export const session = {
  config: null, // /console/config.json
  token: sessionStorage.getItem('token'),
  me: null, // GET /users/me
  /** Set by app.js: ends the session and shows the sign-in page with `message`. */
  signOut: (message) => { throw new Error(message); },
  /** Set by app.js: stops every watch (the browser is about to leave). */
  stopWatches: () => {},
};

export const canRedirect = () => Boolean(session.config.clientId && session.config.authorizationEndpoint);

/** Keeps a token endpoint answer: the access token, when it expires, and
 * the refresh token (rotated or not: an answer without one keeps ours). */
function keep(answer) {
  session.token = answer.access_token;
  sessionStorage.setItem('token', answer.access_token);
  if (answer.refresh_token) sessionStorage.setItem('refreshToken', answer.refresh_token);
  if (answer.expires_in) sessionStorage.setItem('expiresAt', String(Date.now() + answer.expires_in * 1000));
  else sessionStorage.removeItem('expiresAt');
}

/** Forgets the tokens of this tab. */
export function forgetTokens() {
  for (const key of ['token', 'refreshToken', 'expiresAt']) sessionStorage.removeItem(key);
  session.token = null;
}

let renewing = null; // the refresh under way, shared by every caller

/** A refresh_token grant at the issuer; whether it gave a new access token. */
async function renew() {
  const refreshToken = sessionStorage.getItem('refreshToken');
  if (!refreshToken || !session.config.tokenEndpoint) return false;
  renewing = renewing || (async () => {
    try {
      const response = await fetch(session.config.tokenEndpoint, {
        method: 'POST',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT),
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: session.config.clientId }),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok && answer.access_token) { keep(answer); return true; }
      // Refused (expired, revoked, used): only a new sign-in helps.
      if (response.status >= 400 && response.status < 500) sessionStorage.removeItem('refreshToken');
      return false;
    } catch {
      return false; // the issuer is unreachable: keep what we have
    } finally {
      renewing = null;
    }
  })();
  return renewing;
}

/** The access token to send now, renewed first when it (nearly) expired. */
export async function currentToken() {
  const expiresAt = Number(sessionStorage.getItem('expiresAt') || 0);
  if (expiresAt && expiresAt - RENEW_BEFORE <= Date.now()) await renew();
  return session.token;
}

/** The API refused the token: renew it once if we can (true), else sign
 * in again or out (false). */
export async function refused() {
  if (await renew()) return true;
  expired();
  return false;
}

/** Calls the API; `{status, body}`. A 401 renews the token and tries once
 * more, then signs in again or out. */
export async function api(method, path, body, headers = {}, retried = false) {
  const init = { method, headers: { Authorization: `Bearer ${await currentToken()}`, ...headers } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  init.signal = AbortSignal.timeout(REQUEST_TIMEOUT);
  const response = await fetch(path, init);
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
  if (response.status === 401) {
    if (!retried && await refused()) return api(method, path, body, headers, true);
    if (retried) expired();
    throw new Error('unauthorized');
  }
  return { status: response.status, body: parsed };
}

export function errorText(reply) {
  const error = reply.body && reply.body.error;
  return error ? error.message : `HTTP ${reply.status}`;
}

function b64url(bytes) {
  let text = '';
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomToken(size) {
  return b64url(crypto.getRandomValues(new Uint8Array(size)));
}

function redirectUri() {
  return `${location.origin}/console/`;
}

export async function startSignIn() {
  const verifier = randomToken(32);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const st = randomToken(16);
  sessionStorage.setItem('pkce', JSON.stringify({ verifier, state: st, hash: location.hash }));
  const url = new URL(session.config.authorizationEndpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: session.config.clientId,
    redirect_uri: redirectUri(),
    scope: 'openid profile email offline_access',
    state: st,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.toString());
}

/** Back from the issuer with `?code=&state=` (or `?error=`): the access token. */
export async function finishSignIn(params) {
  const pending = JSON.parse(sessionStorage.getItem('pkce') || 'null');
  sessionStorage.removeItem('pkce');
  history.replaceState(null, '', `/console/${pending && pending.hash ? pending.hash : ''}`);
  if (params.get('error')) throw new Error(params.get('error_description') || params.get('error'));
  if (!pending || pending.state !== params.get('state')) throw new Error('the sign-in answer does not belong to this tab; try again');
  const response = await fetch(session.config.tokenEndpoint, {
    method: 'POST',
    signal: AbortSignal.timeout(REQUEST_TIMEOUT),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: redirectUri(),
      client_id: session.config.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok || !body.access_token) throw new Error(body.error_description || `token endpoint answered ${response.status}`);
  keep(body);
  return body.access_token;
}

/** The token was refused (it expired): sign in again through the issuer,
 * unless that just happened, then ask. */
export function expired() {
  const last = Number(sessionStorage.getItem('reauthAt') || 0);
  if (canRedirect() && Date.now() - last > REAUTH_EVERY) {
    sessionStorage.setItem('reauthAt', String(Date.now()));
    forgetTokens();
    session.stopWatches();
    startSignIn();
    return;
  }
  session.signOut('Your session ended; please sign in again.');
}
