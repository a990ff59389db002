/**
 * The GitHub App side: JWT verification (RS256 with the App's public key, `iss` = the App id,
 * at most ten minutes long, not expired), the installation of a repository, and installation
 * tokens. A token may be scoped to some of the installation's repositories and to permissions
 * the installation was granted, never more (422 otherwise, as GitHub answers); every request for
 * one is recorded in `state.tokenRequests`.
 */
import { randomBytes, verify } from 'node:crypto';
import { z } from 'zod';
import { repository, simpleUser } from './shapes.js';
import { json, notFound, parseBody, route, unprocessable, type Route, type RouteContext } from './routes.js';
import type { FakeApp, FakeGitHubState, FakeInstallation, FakeToken, TokenPermissions } from './state.js';

const JwtHeader = z.object({ alg: z.literal('RS256') });
const JwtPayload = z.object({ iat: z.number().int(), exp: z.number().int(), iss: z.union([z.string(), z.number()]) });

/** Why a JWT is refused, or undefined when it is the App's and current. */
export function checkAppJwt(jwt: string, app: FakeApp | undefined, nowS = Math.floor(Date.now() / 1000)): string | undefined {
  if (app === undefined) return 'no GitHub App is configured on the fake';
  const [header, payload, signature, ...rest] = jwt.split('.');
  if (header === undefined || payload === undefined || signature === undefined || rest.length > 0) return 'not a JWT';
  const decode = (part: string): unknown => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  let claims: z.infer<typeof JwtPayload>;
  try {
    if (!JwtHeader.safeParse(decode(header)).success) return "'alg' must be RS256";
    const parsed = JwtPayload.safeParse(decode(payload));
    if (!parsed.success) return "'iat', 'exp' and 'iss' claims are required";
    claims = parsed.data;
  } catch {
    return 'not a JWT';
  }
  if (!verify('RSA-SHA256', Buffer.from(`${header}.${payload}`), app.publicKey, Buffer.from(signature, 'base64url'))) return 'signature does not verify';
  if (String(claims.iss) !== String(app.id)) return `'iss' is ${claims.iss}, not the App id ${app.id}`;
  if (claims.exp <= nowS) return "'Expiration time' claim ('exp') is in the past";
  if (claims.exp - claims.iat > 660) return "'Expiration time' claim ('exp') is too far in the future";
  if (claims.iat > nowS + 60) return "'Issued at' claim ('iat') is in the future";
  return undefined;
}

function installationShape(ctx: RouteContext, inst: FakeInstallation) {
  const app = ctx.state.app;
  const account = ctx.state.user(inst.account);
  const now = ctx.state.now();
  return {
    id: inst.id,
    account: simpleUser(ctx.urls, account),
    repository_selection: 'selected' as const,
    access_tokens_url: `${ctx.urls.api}/app/installations/${inst.id}/access_tokens`,
    repositories_url: `${ctx.urls.api}/installation/repositories`,
    html_url: `${ctx.urls.web}/settings/installations/${inst.id}`,
    app_id: app?.id ?? 0,
    target_id: account.id,
    target_type: account.type,
    permissions: inst.permissions,
    events: [],
    created_at: now,
    updated_at: now,
    single_file_name: null,
    app_slug: app?.slug ?? '',
    suspended_by: null,
    suspended_at: null,
  };
}

const TokenBody = z.object({
  repositories: z.array(z.string().min(1)).optional(),
  repository_ids: z.array(z.number().int()).optional(),
  permissions: z.record(z.string(), z.enum(['read', 'write'])).optional(),
});

export const appRoutes: Route[] = [
  route('GET', '/app', undefined, (ctx) => {
    const app = ctx.state.app;
    if (app === undefined) throw notFound();
    return json({ id: app.id, slug: app.slug, name: app.slug, node_id: `A_${app.id}`, owner: null, description: null, external_url: ctx.urls.web, html_url: `${ctx.urls.web}/apps/${app.slug}`, permissions: {}, events: [] });
  }, { auth: 'app' }),
  route('GET', '/repos/{owner}/{repo}/installation', undefined, (ctx) => {
    const inst = ctx.repo.installationId === undefined ? undefined : ctx.state.installations.get(ctx.repo.installationId);
    if (inst === undefined) throw notFound();
    return json(installationShape(ctx, inst));
  }, { auth: 'app' }),
  route('POST', '/app/installations/{installation_id}/access_tokens', undefined, (ctx) => {
    const inst = ctx.state.installations.get(Number(ctx.params.installation_id));
    if (inst === undefined) throw notFound();
    const body = parseBody(TokenBody, ctx.body);
    const installed = [...ctx.state.repos.values()].filter((r) => r.installationId === inst.id);
    const repos =
      body.repositories === undefined && body.repository_ids === undefined
        ? installed
        : [
            ...(body.repositories ?? []).map((name) => installed.find((r) => r.name.toLowerCase() === name.toLowerCase())),
            ...(body.repository_ids ?? []).map((id) => installed.find((r) => r.id === id)),
          ];
    if (repos.some((r) => r === undefined)) {
      throw unprocessable('There is at least one repository that does not exist or is not accessible to the parent installation.');
    }
    const permissions = body.permissions ?? inst.permissions;
    const exceeding = Object.entries(permissions).filter(([name, level]) => !grants(inst.permissions, name, level));
    if (exceeding.length > 0) throw unprocessable('The permissions requested are not granted to this installation.');
    const token = mintInstallationToken(ctx.state, inst, repos.flatMap((r) => (r === undefined ? [] : [`${r.owner}/${r.name}`.toLowerCase()])), permissions);
    ctx.state.tokenRequests.push({ installationId: inst.id, repositories: body.repositories, permissions: body.permissions, token: token.token, expiresAt: token.expiresAt.toISOString() });
    return json(
      {
        token: token.token,
        expires_at: token.expiresAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
        permissions,
        repository_selection: body.repositories === undefined && body.repository_ids === undefined ? 'all' : 'selected',
        repositories: repos.flatMap((r) => (r === undefined ? [] : [repository(ctx.state, ctx.urls, r)])),
      },
      201,
    );
  }, { auth: 'app' }),
];

/** True when `granted` covers `name` at `level` (write covers read; metadata read is always granted). */
export function grants(granted: TokenPermissions, name: string, level: 'read' | 'write'): boolean {
  if (name === 'metadata' && level === 'read') return true;
  const has = granted[name];
  return has === 'write' || (has === 'read' && level === 'read');
}

export function mintInstallationToken(state: FakeGitHubState, inst: FakeInstallation, repositories: string[], permissions: TokenPermissions, ttlMs = state.tokenTtlMs) {
  const token: Extract<FakeToken, { kind: 'installation' }> = {
    kind: 'installation',
    token: `ghs_${randomBytes(18).toString('base64url')}`,
    login: `${state.app?.slug ?? 'app'}[bot]`,
    installationId: inst.id,
    repositories,
    permissions: { metadata: 'read', ...permissions },
    expiresAt: new Date(Date.now() + ttlMs),
  };
  state.user(token.login, 'Bot');
  state.tokens.set(token.token, token);
  return token;
}
