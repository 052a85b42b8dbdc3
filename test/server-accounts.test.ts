import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorType, makeEnv, signup, type TestEnv } from './helpers/app.ts';

let env: TestEnv;
beforeAll(async () => {
  env = await makeEnv();
});
afterAll(async () => {
  await env.close();
});

const USER_KEYS = ['bio', 'counts', 'full_name', 'id', 'profile_picture', 'username', 'website'];

describe('POST /v1/accounts', () => {
  it('creates an account from a JSON body and answers a session in the envelope', async () => {
    const res = await env.app.inject({ method: 'POST', url: '/v1/accounts', payload: { username: 'json_user', password: 'secret123', full_name: 'Jay Son' } });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.meta).toEqual({ code: 200 });
    expect(typeof body.data.access_token).toBe('string');
    expect(Object.keys(body.data.user).sort()).toEqual(USER_KEYS);
    expect(body.data.user).toMatchObject({ username: 'json_user', full_name: 'Jay Son', bio: '', website: '', counts: { media: 0, follows: 0, followed_by: 0 } });
    expect(body.data.user.id).toMatch(/^\d+$/);
    expect(body.data.user.profile_picture).toMatch(/^http:\/\/localhost(:\d+)?\/cdn\//);
  });

  it('accepts a form body and query parameters too', async () => {
    const form = await env.app.inject({ method: 'POST', url: '/v1/accounts', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'username=form.user&password=secret123&is_private=true' });
    expect(form.statusCode).toBe(200);
    const query = await env.app.inject({ method: 'POST', url: '/v1/accounts?username=query_user&password=secret123' });
    expect(query.statusCode).toBe(200);
    expect(query.json().data.user.username).toBe('query_user');
  });

  it('refuses a taken username (case-insensitively) with APIInvalidParametersError', async () => {
    await signup(env.app, 'taken_name');
    const res = await env.app.inject({ method: 'POST', url: '/v1/accounts', payload: { username: 'TAKEN_name', password: 'secret123' } });
    expect(res.statusCode).toBe(400);
    expect(errorType(res)).toBe('APIInvalidParametersError');
  });

  it.each([
    ['an empty username', { username: '', password: 'secret123' }],
    ['a 31-character username', { username: 'a'.repeat(31), password: 'secret123' }],
    ['a username with a space', { username: 'bad name', password: 'secret123' }],
    ['a username with SQL in it', { username: "' OR 1=1 --", password: 'secret123' }],
    ['a 5-character password', { username: 'shortpw', password: '12345' }],
    ['no password', { username: 'nopw' }],
    ['an object for a username', { username: { $ne: 1 }, password: 'secret123' }],
    ['is_private that is not a boolean', { username: 'privy', password: 'secret123', is_private: 'maybe' }],
  ])('refuses %s with APIInvalidParametersError', async (_name, payload) => {
    const res = await env.app.inject({ method: 'POST', url: '/v1/accounts', payload });
    expect(res.statusCode).toBe(400);
    expect(res.json().meta).toMatchObject({ code: 400, error_type: 'APIInvalidParametersError' });
  });
});

describe('POST /oauth/access_token', () => {
  beforeAll(async () => {
    await signup(env.app, 'oauth_user', { password: 'hunter22' });
  });

  it('answers a bare {access_token, user} for a form body', async () => {
    const res = await env.app.inject({ method: 'POST', url: '/oauth/access_token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'grant_type=password&username=oauth_user&password=hunter22' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['access_token', 'user']);
    expect(body.user.username).toBe('oauth_user');
    const me = await env.app.inject(`/v1/users/self?access_token=${encodeURIComponent(body.access_token)}`);
    expect(me.json().data.username).toBe('oauth_user');
  });

  it('parses a body sent without any Content-Type as a form', async () => {
    const res = await env.app.inject({ method: 'POST', url: '/oauth/access_token', payload: 'grant_type=password&username=oauth_user&password=hunter22' });
    expect(res.headers['content-type']).toMatch(/json/);
    expect(res.statusCode).toBe(200);
    expect(res.json().user.username).toBe('oauth_user');
  });

  it('accepts JSON as well', async () => {
    const res = await env.app.inject({ method: 'POST', url: '/oauth/access_token', payload: { grant_type: 'password', username: 'oauth_user', password: 'hunter22' } });
    expect(res.statusCode).toBe(200);
  });

  it('refuses a wrong password and an unknown user with OAuthException (400), in the envelope', async () => {
    for (const payload of ['grant_type=password&username=oauth_user&password=wrongpass', 'grant_type=password&username=nobody_here&password=hunter22']) {
      const res = await env.app.inject({ method: 'POST', url: '/oauth/access_token', payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().meta).toMatchObject({ code: 400, error_type: 'OAuthException' });
    }
  });

  it('refuses other grant types with OAuthException and missing fields with APIInvalidParametersError', async () => {
    const grant = await env.app.inject({ method: 'POST', url: '/oauth/access_token', payload: 'grant_type=authorization_code&username=oauth_user&password=hunter22' });
    expect(errorType(grant)).toBe('OAuthException');
    const missing = await env.app.inject({ method: 'POST', url: '/oauth/access_token', payload: 'grant_type=password&username=oauth_user' });
    expect(missing.statusCode).toBe(400);
    expect(errorType(missing)).toBe('APIInvalidParametersError');
  });
});

describe('authentication', () => {
  it('answers APIRequiresAuthenticationError (401) without a token', async () => {
    const res = await env.app.inject('/v1/users/self');
    expect(res.statusCode).toBe(401);
    expect(res.json()).toEqual({ meta: { code: 401, error_type: 'APIRequiresAuthenticationError', error_message: expect.any(String) } });
  });

  it.each([
    ['an unknown token', '?access_token=123.deadbeef'],
    ['a garbage token', '?access_token=%27%20OR%201%3D1%20--'],
    ['an empty token', '?access_token='],
    ['a repeated token', '?access_token=a&access_token=b'],
    ['a very long token', `?access_token=${'x'.repeat(5000)}`],
  ])('answers OAuthAccessTokenException (400) for %s', async (_name, query) => {
    const res = await env.app.inject(`/v1/users/self${query}`);
    expect(res.statusCode).toBe(400);
    expect(errorType(res)).toBe('OAuthAccessTokenException');
  });

  it('accepts an Authorization: Bearer header on every method', async () => {
    const who = await signup(env.app, 'bearer_user');
    const res = await env.app.inject({ url: '/v1/users/self', headers: { authorization: `Bearer ${who.token}` } });
    expect(res.statusCode).toBe(200);
    expect(res.json().data.id).toBe(who.id);
    const post = await env.app.inject({ method: 'POST', url: `/v1/users/${who.id}/relationship`, headers: { authorization: `Bearer ${who.token}` }, payload: { action: 'follow' } });
    expect(post.statusCode).toBe(400); // authenticated, but one cannot follow oneself
    expect(errorType(post)).toBe('APIInvalidParametersError');
    const basic = await env.app.inject({ url: '/v1/users/self', headers: { authorization: 'Basic Zm9vOmJhcg==' } });
    expect(errorType(basic)).toBe('OAuthAccessTokenException');
  });

  it('takes the token from the query on POST and DELETE as well', async () => {
    const who = await signup(env.app, 'query_poster');
    const other = await signup(env.app, 'query_target');
    const res = await env.app.inject({ method: 'POST', url: `/v1/users/${other.id}/relationship?access_token=${who.token}&action=follow` });
    expect(res.statusCode).toBe(200);
    expect(res.json().data.outgoing_status).toBe('follows');
  });
});
