/**
 * The comment commands, read from the first line of a comment: `/approve [sha] [comment]`,
 * `/reject <reason>`, `/retry`, `/cancel [reason]`, `/status`. The text after the command word,
 * with any further lines, is its argument; an `/approve` whose argument starts with a word of 7
 * to 40 hex digits names the commit it approves. Anything else is not a command (a `/other` may
 * well be another bot's), and comments by bots never are. Pure.
 */
import type { GitHubUser } from './payloads.js';

export type IssueCommand =
  | { name: 'approve'; sha?: string; comment?: string }
  | { name: 'reject'; reason?: string }
  | { name: 'retry' }
  | { name: 'cancel'; reason?: string }
  | { name: 'status' };

export type CommandName = IssueCommand['name'];

const COMMAND = /^\/(approve|reject|retry|cancel|status)(?:\s+(.*))?$/i;
const MAX_ARGUMENT = 10_000;
const NAMED_SHA = /^([0-9a-f]{7,40})(?:\s+([\s\S]*))?$/i;

export function parseCommand(body: string): IssueCommand | undefined {
  const text = body.replace(/\r\n?/g, '\n').trim();
  const newline = text.indexOf('\n');
  const first = (newline === -1 ? text : text.slice(0, newline)).trim();
  const match = COMMAND.exec(first);
  if (match === null) return undefined;
  const name = (match[1] as string).toLowerCase() as CommandName;
  const rest = [match[2] ?? '', newline === -1 ? '' : text.slice(newline + 1)].join('\n').trim().slice(0, MAX_ARGUMENT);
  const argument = rest === '' ? undefined : rest;
  switch (name) {
    case 'approve': {
      if (argument === undefined) return { name };
      const named = NAMED_SHA.exec(argument);
      if (named === null) return { name, comment: argument };
      const comment = named[2]?.trim() ?? '';
      return { name, sha: (named[1] as string).toLowerCase(), ...(comment === '' ? {} : { comment }) };
    }
    case 'reject':
      return argument === undefined ? { name } : { name, reason: argument };
    case 'cancel':
      return argument === undefined ? { name } : { name, reason: argument };
    case 'retry':
    case 'status':
      return { name };
  }
}

/** Bots never give commands: GitHub's `Bot` accounts, `…[bot]` logins, and Stagegate's own login. */
export function isBot(user: GitHubUser, botLogin: string | undefined): boolean {
  const login = user.login.toLowerCase();
  return user.type === 'Bot' || login.endsWith('[bot]') || (botLogin !== undefined && login === botLogin.toLowerCase());
}
