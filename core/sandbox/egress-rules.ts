/**
 * Which hosts a sandboxed command may reach through the egress proxy. A rule is a host name or
 * IP address, or `*.` and a domain for every name under it, optionally with `:port`; without a
 * port, 80 and 443 are allowed. Rules name hosts, never URLs, so a rule cannot smuggle a path
 * or credentials into what the proxy dials.
 */
import { z } from 'zod';

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const RULE = new RegExp(`^(?:\\*\\.)?${LABEL}(?:\\.${LABEL})*(?::(\\d{1,5}))?$`);
const DEFAULT_PORTS: readonly number[] = [80, 443];

export const EgressRule = z
  .string()
  .trim()
  .toLowerCase()
  .regex(RULE, "expected a host name such as 'registry.npmjs.org', '*.pypi.org' or 'mirror.example:8443'")
  .refine((rule) => {
    const port = portOf(rule);
    return port === undefined || (port >= 1 && port <= 65_535);
  }, 'expected a port from 1 to 65535');
export type EgressRule = z.infer<typeof EgressRule>;

export const EgressRules = z.array(EgressRule).max(50, 'expected at most 50 hosts');

/** Whether `host:port` (as a client asked the proxy for it) is allowed by one of the rules. */
export function egressAllows(rules: readonly EgressRule[], host: string, port: number): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return rules.some((rule) => {
    const ruleHost = rule.replace(/:\d+$/, '');
    const rulePort = portOf(rule);
    const portOk = rulePort === undefined ? DEFAULT_PORTS.includes(port) : rulePort === port;
    const hostOk = ruleHost.startsWith('*.') ? name.endsWith(ruleHost.slice(1)) : name === ruleHost;
    return portOk && hostOk;
  });
}

function portOf(rule: string): number | undefined {
  const match = RULE.exec(rule);
  const port = match?.[1];
  return port === undefined ? undefined : Number(port);
}
