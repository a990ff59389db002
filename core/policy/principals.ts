/**
 * Who a principal string names, and whether a decider is one of them. Pure functions of the
 * principal text and the facts a channel verified about the decider (GitHub teams and
 * permission, Slack user groups): the orchestrator never looks anyone up itself.
 *
 *   *                         anyone deciding through a channel (never the policy itself)
 *   alice                     the CLI or API user alice (a bare name, as before principals had prefixes)
 *   cli:alice  api:deploy-bot the user of that channel only
 *   github:octocat            the GitHub user (logins compare case-insensitively)
 *   github-team:org/team      a GitHub user the channel says is in that team
 *   github-permission:write   a GitHub user the channel says has at least that repository permission
 *   slack:U123                the Slack user id
 *   slack-group:S456          a Slack user the channel says is in that user group
 */
import type { Permission, PrincipalFacts } from '../policy.js';

/** Repository permissions, weakest first. */
export const PERMISSIONS = ['read', 'triage', 'write', 'maintain', 'admin'] as const;

/** Structurally the bus's DecisionChannel; kept here so the policy does not import the bus. */
export type DeciderChannel = 'cli' | 'api' | 'github' | 'slack' | 'policy';

export interface Decider {
  by: string;
  via: DeciderChannel;
  principal?: PrincipalFacts | undefined;
}

type Namespace = 'local' | 'github' | 'slack' | 'policy';

export type ParsedPrincipal =
  | { kind: 'anyone' }
  | { kind: 'user'; namespace: Namespace; channels: readonly DeciderChannel[]; name: string }
  | { kind: 'github-team'; team: string }
  | { kind: 'github-permission'; permission: Permission }
  | { kind: 'slack-group'; group: string };

const USER_PREFIXES: Record<string, { namespace: Namespace; channels: readonly DeciderChannel[] }> = {
  cli: { namespace: 'local', channels: ['cli'] },
  api: { namespace: 'local', channels: ['api'] },
  github: { namespace: 'github', channels: ['github'] },
  slack: { namespace: 'slack', channels: ['slack'] },
};
const BARE = { namespace: 'local', channels: ['cli', 'api'] } as const;

export const PRINCIPAL_SYNTAX =
  'alice, cli:alice, api:bot, github:octocat, github-team:org/team, github-permission:write, slack:U123, slack-group:S456 or *';

/** The principal's meaning, or a message saying what is wrong with it. */
export function parsePrincipal(text: string): ParsedPrincipal | { error: string } {
  if (text === '*') return { kind: 'anyone' };
  const colon = text.indexOf(':');
  if (colon === -1) return text.trim() === '' ? { error: 'expected a name' } : { kind: 'user', ...BARE, name: text };
  const prefix = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  if (rest === '') return { error: `expected a name after '${prefix}:'` };
  const user = USER_PREFIXES[prefix];
  if (user !== undefined) return { kind: 'user', ...user, name: rest };
  switch (prefix) {
    case 'github-team':
      return /^[^/\s]+\/[^/\s]+$/.test(rest) ? { kind: 'github-team', team: rest } : { error: `expected github-team:<org>/<team>, got '${text}'` };
    case 'github-permission': {
      const permission = PERMISSIONS.find((p) => p === rest);
      return permission === undefined
        ? { error: `expected a permission from ${PERMISSIONS.join(', ')}, got '${rest}'` }
        : { kind: 'github-permission', permission };
    }
    case 'slack-group':
      return { kind: 'slack-group', group: rest };
    default:
      return { error: `unknown principal prefix '${prefix}:'` };
  }
}

export function isValidPrincipal(text: string): boolean {
  return !('error' in parsePrincipal(text));
}

const NAMESPACE_OF_CHANNEL: Record<DeciderChannel, Namespace> = {
  cli: 'local',
  api: 'local',
  github: 'github',
  slack: 'slack',
  policy: 'policy',
};

/** The decider's name within its channel: a `by` of `slack:U1` from Slack is `U1`. */
function nameOf(decider: Decider): string {
  const colon = decider.by.indexOf(':');
  if (colon !== -1) {
    const user = USER_PREFIXES[decider.by.slice(0, colon)];
    if (user !== undefined && user.namespace === NAMESPACE_OF_CHANNEL[decider.via]) return decider.by.slice(colon + 1);
  }
  return decider.by;
}

function sameName(namespace: Namespace, a: string, b: string): boolean {
  return namespace === 'github' ? a.toLowerCase() === b.toLowerCase() : a === b;
}

/**
 * One person's identity across channels that share a namespace: `cli:alice` and `api:alice` are
 * the same person (`local:alice`), GitHub logins are lower-cased. Distinct approvals and
 * separation of duties compare these.
 */
export function identityOf(decider: Decider): string {
  const namespace = NAMESPACE_OF_CHANNEL[decider.via];
  const name = nameOf(decider);
  return `${namespace}:${namespace === 'github' ? name.toLowerCase() : name}`;
}

/** The identity of whoever submitted a task (`submittedBy` is a bare name or a user principal). */
export function submitterIdentity(submittedBy: string): string {
  const parsed = parsePrincipal(submittedBy);
  if ('error' in parsed || parsed.kind !== 'user') return `local:${submittedBy}`;
  return `${parsed.namespace}:${parsed.namespace === 'github' ? parsed.name.toLowerCase() : parsed.name}`;
}

const rank = (p: Permission) => PERMISSIONS.indexOf(p);
const includesFolded = (list: string[] | undefined, value: string) =>
  (list ?? []).some((item) => item.toLowerCase() === value.toLowerCase());

export function matchesPrincipal(principal: string, decider: Decider): boolean {
  const parsed = parsePrincipal(principal);
  if ('error' in parsed) return false;
  const facts = decider.principal ?? {};
  switch (parsed.kind) {
    case 'anyone':
      return decider.via !== 'policy';
    case 'user':
      return parsed.channels.includes(decider.via) && sameName(parsed.namespace, parsed.name, nameOf(decider));
    case 'github-team':
      return decider.via === 'github' && includesFolded(facts.teams, parsed.team);
    case 'github-permission':
      return decider.via === 'github' && facts.permission !== undefined && rank(facts.permission) >= rank(parsed.permission);
    case 'slack-group':
      return decider.via === 'slack' && (facts.groups ?? []).includes(parsed.group);
  }
}

export function isAllowedApprover(approvers: readonly string[], decider: Decider): boolean {
  return approvers.some((principal) => matchesPrincipal(principal, decider));
}
