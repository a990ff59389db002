/**
 * Bearer tokens of the HTTP API → principals. Every configured token is compared, in constant
 * time over fixed-length digests, so neither the match nor the length of a guess shows in the
 * timing. Tokens never reach a log line.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { ApiToken } from '../../core/config.js';
import { HttpError } from './http-errors.js';

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

export function principalOfToken(tokens: ReadonlyArray<ApiToken>, presented: string): string | undefined {
  const given = digest(presented);
  let found: string | undefined;
  for (const t of tokens) {
    if (timingSafeEqual(given, digest(t.token)) && found === undefined) found = t.principal;
  }
  return found;
}

/** Sets `res.locals.principal`, or answers 401 with a JSON body. */
export function requireBearer(tokens: ReadonlyArray<ApiToken>): RequestHandler {
  return (req, res, next) => {
    res.setHeader('WWW-Authenticate', 'Bearer realm="stagegate"');
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (tokens.length === 0) {
      throw new HttpError(401, 'UNAUTHORIZED', 'the HTTP API has no tokens configured (STAGEGATE_API_TOKENS or api.tokens)');
    }
    if (match === null) throw new HttpError(401, 'UNAUTHORIZED', 'expected an Authorization: Bearer <token> header');
    const principal = principalOfToken(tokens, match[1] as string);
    if (principal === undefined) throw new HttpError(401, 'UNAUTHORIZED', 'unknown bearer token');
    res.removeHeader('WWW-Authenticate');
    res.locals.principal = principal;
    next();
  };
}
