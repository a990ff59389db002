/**
 * What every route module shares: the route type, the context a handler gets, GitHub's error
 * bodies (`HttpError`), request-body parsing (zod; a bad body is GitHub's 422 "Invalid request"),
 * and page/Link-header pagination as GitHub does it (`per_page` default 30, at most 100).
 */
import type { z } from 'zod';
import type { FakeGitHubState, FakeRepo, FakeToken } from './state.js';

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface FakeUrls {
  /** API base, e.g. http://127.0.0.1:1234/api/v3 */
  api: string;
  /** Where git and the web pages live, e.g. http://127.0.0.1:1234 */
  web: string;
}

/** Who a request is from: a token's owner, or the App itself (a verified JWT). */
export type Caller = FakeToken | { kind: 'app'; appId: number; login: string };

export interface RouteContext {
  state: FakeGitHubState;
  urls: FakeUrls;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  caller: Caller;
  /** The repository named by `{owner}/{repo}`, when the route has them (404 before the handler otherwise). */
  repo: FakeRepo;
  /** The request's own URL (for Link headers). */
  url: URL;
}

export interface RouteReply {
  status: number;
  body?: unknown;
  /** Served as text/plain instead of a JSON body (logs). */
  text?: string;
  headers?: Record<string, string>;
}

/** Repository permission a route needs from an installation token: any one of `names` at `level`. */
export interface RoutePermission {
  names: string[];
  level: 'read' | 'write';
}

export interface Route {
  method: HttpMethod;
  /** GitHub's path template, e.g. `/repos/{owner}/{repo}/pulls/{pull_number}`. */
  path: string;
  /** `app`: only the App's JWT; `token` (default): a user or installation token. */
  auth?: 'app' | 'token';
  permission?: RoutePermission;
  /** Only Apps may call it (GitHub's check runs): a user token gets 403. */
  appsOnly?: boolean;
  handle(ctx: RouteContext): RouteReply | Promise<RouteReply>;
}

export const route = (
  method: HttpMethod,
  path: string,
  permission: RoutePermission | undefined,
  handle: Route['handle'],
  extra: Pick<Route, 'auth' | 'appsOnly'> = {},
): Route => ({ method, path, permission, handle, ...extra });

export const needs = (level: 'read' | 'write', ...names: string[]): RoutePermission => ({ names, level });

export const DOCS = 'https://docs.github.com/rest';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body.message === 'string' ? body.message : `HTTP ${status}`);
  }
}

export const notFound = (): HttpError => new HttpError(404, { message: 'Not Found', documentation_url: DOCS, status: '404' });

export const validationFailed = (...errors: unknown[]): HttpError =>
  new HttpError(422, { message: 'Validation Failed', errors, documentation_url: DOCS, status: '422' });

export const unprocessable = (message: string, errors?: unknown[]): HttpError =>
  new HttpError(422, { message, ...(errors === undefined ? {} : { errors }), documentation_url: DOCS, status: '422' });

/** A request body as the route expects it, or GitHub's 422 naming what is wrong. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `"${i.path.join('.') || 'body'}" ${i.message}`);
  throw unprocessable(`Invalid request.\n\n${problems.join('\n')}`);
}

export function intParam(ctx: RouteContext, name: string): number {
  const value = Number(ctx.params[name]);
  if (!Number.isInteger(value) || value <= 0) throw notFound();
  return value;
}

export const json = (body: unknown, status = 200): RouteReply => ({ status, body });
export const noContent = (): RouteReply => ({ status: 204 });

/** One page of `items` as GitHub serves it, with `Link` next/prev/first/last when there are more. */
export function page<T>(ctx: RouteContext, items: T[], wrap?: (items: T[]) => unknown): RouteReply {
  const perPage = Math.min(100, Math.max(1, Number(ctx.query.get('per_page') ?? 30) || 30));
  const pageNo = Math.max(1, Number(ctx.query.get('page') ?? 1) || 1);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const slice = items.slice((pageNo - 1) * perPage, pageNo * perPage);
  const link = (n: number, rel: string) => {
    const url = new URL(ctx.url);
    url.searchParams.set('per_page', String(perPage));
    url.searchParams.set('page', String(n));
    return `<${url.toString()}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (pageNo < last) links.push(link(pageNo + 1, 'next'), link(last, 'last'));
  if (pageNo > 1) links.push(link(1, 'first'), link(pageNo - 1, 'prev'));
  return { status: 200, body: wrap === undefined ? slice : wrap(slice), headers: links.length > 0 ? { link: links.join(', ') } : {} };
}

/** The login the caller acts as: the token's user, the App's bot, or the App. */
export const callerLogin = (ctx: RouteContext): string => ctx.caller.login;
