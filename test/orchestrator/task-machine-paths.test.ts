/**
 * Model-based check of the gates: @xstate/graph explores every state the statechart can reach
 * from a realistic set of inbox events (results for the current and for stale jobs, failures,
 * a coder asking to run a command, decisions by approvers and by outsiders, for the right gate
 * and the wrong one, through the CLI, the API, GitHub and Slack with the facts those channels
 * vouch for, results carrying facts about the change, gate timers that are due, early or stale,
 * cancels and retries), under several gate policies: quorum, separation of duties, mixed
 * principals, auto-approval rules, timeouts, and the security review (findings that go back to
 * the coder once and then hold the deploy gate for the security group's override with a reason;
 * protected paths never auto-approved). Every path found is replayed with
 * `transition()`, then extended by every event, and each step is checked against the gate
 * invariants, judged by an oracle written from the policy's meaning rather than from the
 * chart's guards: the replay tracks the facts and the timers itself.
 *
 * States are grouped by what the guards read (state, review round up to the limit, failed stage,
 * counted approvers at each gate's current visit, the command gate's only while the task waits
 * there, the facts, the open gate's fired timers and escalation), which keeps the graph finite;
 * the replay checks that this grouping is exact (the replayed state lands in the group the path
 * claims).
 */
import { getShortestPaths } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { Gate, Plan, SecurityFinding, TaskSubmit, Usage } from '../../core/bus/messages.js';
import type { AutoApproveRule, GatePolicies, GatePolicy, PrincipalFacts, RiskLevel } from '../../core/policy.js';
import { GATE_STATES, type TaskContext } from '../../core/task-record.js';
import { taskMachine, type TaskEvent } from '../../orchestrator/task-machine.js';

type Snapshot = SnapshotFrom<typeof taskMachine>;

const TASK = 't-model';
const SENT_AT = '2025-03-01T10:00:00.000Z';
const AUTO = 'policy:auto-approve';
const GATES = ['plan', 'review', 'deploy', 'command'] as const satisfies readonly Gate[];
const PRINCIPALS = ['alice', 'bob', 'mallory'] as const;
const MIN = 60_000;
/** Timer events are due this long after a gate opens (every other event is sent at SENT_AT). */
const DUE_AT = new Date(Date.parse(SENT_AT) + 10 * MIN).toISOString();
const EARLY_AT = new Date(Date.parse(SENT_AT) + MIN / 2).toISOString();

const usage: Usage = { calls: 1, inputTokens: 10, cachedTokens: 0, outputTokens: 5, reasoningTokens: 0 };
const plan: Plan = { summary: 's', steps: [{ title: 'step', detail: '' }], filesToTouch: [], risks: [], acceptanceChecks: [] };
const comments = [{ file: 'a.ts', line: 1, body: 'fix' }];

const manual = (required: number, approvers = ['alice', 'bob']): GatePolicy => ({ approvers, required, autoApprove: false });
const auto: GatePolicy = { approvers: ['alice'], required: 1, autoApprove: true };

interface Scenario {
  name: string;
  policies: GatePolicies;
  maxReviewRounds: number;
  /**
   * The coder never asks to run a command. The command gate at least doubles every group after
   * it, so the two largest scenarios leave it out; in the others without `policies.command`, the
   * deploy policy decides it.
   */
  noCommands?: true;
  /** Decisions also come through the API, GitHub and Slack, with the facts the channel vouches for. */
  channels?: true;
  /** Results carry facts about the change (paths, size, risk) that auto-approval rules read. */
  facts?: true;
  /** Gate timers fire: due, early and for an earlier visit. */
  timers?: true;
  /** Reviews carry security findings and touch protected paths; decisions come with and without a reason. */
  security?: true;
  submittedBy?: string;
}

const timeout = (onExpire: 'reject' | 'cancel' | 'escalate', remind = true): GatePolicy['timeout'] => ({
  ...(remind ? { remindAfterMs: MIN } : {}),
  expireAfterMs: 2 * MIN,
  onExpire,
  ...(onExpire === 'escalate' ? { escalateTo: { approvers: ['carol', 'bob'], required: 1 } } : {}),
});
const docsOnly: AutoApproveRule = { name: 'docs-only', when: { pathsMatch: ['docs/**'], checksGreen: true } };
const lowRisk: AutoApproveRule = { name: 'low-risk', when: { verdict: 'approve', maxRisk: 'low' } };
const tiny: AutoApproveRule = { name: 'tiny', when: { maxLinesChanged: 10 } };

const SCENARIOS: Scenario[] = [
  { name: 'manual gates needing one approval', policies: { plan: manual(1), review: manual(1), deploy: manual(1) }, maxReviewRounds: 1 },
  { name: 'manual gates needing two approvals', policies: { plan: manual(2), review: manual(2), deploy: manual(2) }, maxReviewRounds: 0, noCommands: true },
  { name: 'plan auto-approved, deploy needing two', policies: { plan: auto, review: manual(1), deploy: manual(2) }, maxReviewRounds: 1 },
  { name: 'review and deploy auto-approved', policies: { plan: manual(2), review: auto, deploy: auto }, maxReviewRounds: 0 },
  { name: 'every gate auto-approved', policies: { plan: auto, review: auto, deploy: auto }, maxReviewRounds: 1 },
  { name: 'deploy open to anyone, two required', policies: { plan: manual(1), review: manual(1), deploy: manual(2, ['*']) }, maxReviewRounds: 0, noCommands: true },
  { name: 'commands needing two approvals, deploy one', policies: { plan: manual(1), review: manual(1), deploy: manual(1), command: manual(2) }, maxReviewRounds: 0 },
  { name: 'commands auto-approved, deploy manual', policies: { plan: manual(1), review: manual(1), deploy: manual(1), command: auto }, maxReviewRounds: 0 },
  {
    name: 'separation of duties: the submitter is an approver but not enough alone',
    policies: { plan: { ...manual(1), separationOfDuties: true }, review: manual(1), deploy: { ...manual(2), separationOfDuties: true } },
    maxReviewRounds: 0,
    noCommands: true,
  },
  {
    name: 'mixed principals: a GitHub team, a Slack group and a CLI user, two required',
    policies: {
      plan: manual(1, ['github-team:acme/release', 'alice']),
      review: manual(1),
      deploy: { ...manual(2, ['github-team:acme/release', 'slack-group:S1', 'bob']), separationOfDuties: true },
    },
    maxReviewRounds: 0,
    noCommands: true,
    channels: true,
  },
  {
    name: 'auto-approval rules on the change: docs only, low risk, tiny',
    policies: { plan: manual(1), review: { ...manual(1), autoApprove: [tiny] }, deploy: { ...manual(1), autoApprove: [docsOnly, lowRisk] } },
    maxReviewRounds: 0,
    noCommands: true,
    facts: true,
  },
  {
    name: 'timeouts: the plan gate rejects, the deploy gate escalates, the review gate cancels',
    policies: {
      plan: { ...manual(1), timeout: timeout('reject') },
      review: { ...manual(1), timeout: timeout('cancel', false) },
      deploy: { ...manual(2), timeout: timeout('escalate') },
    },
    maxReviewRounds: 0,
    noCommands: true,
    timers: true,
  },
  {
    name: 'security review: findings hold the deploy gate for the security group, protected paths are never auto-approved',
    policies: {
      plan: manual(1),
      review: { ...manual(1), autoApprove: true },
      deploy: { ...manual(1), autoApprove: true },
      security: { approvers: ['carol'], required: 1, protectedPaths: ['ops/**'] },
    },
    maxReviewRounds: 0,
    noCommands: true,
    security: true,
  },
  {
    name: 'timeouts at the command gate: rejected when nobody decides',
    policies: { plan: manual(1), review: manual(1), deploy: manual(1), command: { ...manual(1), timeout: timeout('reject') } },
    maxReviewRounds: 0,
    timers: true,
  },
];

function submitFor(scenario: Scenario): TaskSubmit {
  return {
    type: 'task.submit',
    taskId: TASK,
    msgId: 'submit',
    sentAt: SENT_AT,
    spec: { repo: '/tmp/repo', title: 'model', body: '', base: 'main', submittedBy: scenario.submittedBy ?? 'alice' },
    policies: scenario.policies,
    maxReviewRounds: scenario.maxReviewRounds,
  };
}

/**
 * The inbox events that could arrive in this snapshot. `msgId` names the event's meaning, so a
 * path found on one snapshot can be replayed on another in the same group.
 */
function eventsFor(scenario: Scenario, s: Snapshot): TaskEvent[] {
  const { context } = s;
  // In a gate or failed there is no current job: results then carry the last job's id (late duplicates).
  const job = context.currentJobId ?? context.stages.at(-1)?.jobId ?? `${TASK}:plan:0`;
  const stale = `${TASK}:stale:0`;
  const env = (label: string) => ({ taskId: TASK, msgId: label, sentAt: SENT_AT });
  const commandRequest = (jobId: string, tag: string): TaskEvent[] =>
    scenario.noCommands
      ? []
      : [
          {
            type: 'command.approval_requested', ...env(`command.approval_requested@${tag}`), jobId, usage,
            command: 'npm install left-pad', pattern: 'npm install *', branch: 'b', commit: null, notes: 'half done',
          },
        ];
  const results = (jobId: string, tag: string): TaskEvent[] => [
    { type: 'plan.proposed', ...env(`plan.proposed@${tag}`), jobId, usage, plan },
    { type: 'code.committed', ...env(`code.committed@${tag}`), jobId, usage, branch: 'b', commit: 'c1', summary: 's', attempts: 1 },
    { type: 'review.approved', ...env(`review.approved@${tag}`), jobId, usage, verdict: { decision: 'approve', summary: 'ok', comments: [] }, testsPassed: true },
    { type: 'review.changes_requested', ...env(`review.changes_requested@${tag}`), jobId, usage, verdict: { decision: 'request_changes', summary: 'no', comments }, testsPassed: false },
    { type: 'deploy.succeeded', ...env(`deploy.succeeded@${tag}`), jobId, usage, commit: 'c1', target: 'prod' },
    ...commandRequest(jobId, tag),
    { type: 'job.failed', ...env(`job.failed@${tag}`), jobId, usage, stage: 'implement', reason: 'boom' },
  ];
  const decisions = GATES.flatMap((gate) => [
    ...PRINCIPALS.map((by): TaskEvent => ({ type: 'gate.decide', ...env(`approve:${gate}:${by}`), gate, decision: 'approve', by, via: 'cli' })),
    ...(['alice', 'mallory'] as const).map((by): TaskEvent => ({
      type: 'gate.decide', ...env(`reject:${gate}:${by}`), gate, decision: 'reject', by, via: 'cli', comment: `no from ${by}`,
    })),
    ...(scenario.timers || scenario.security ? [{ type: 'gate.decide', ...env(`approve:${gate}:carol`), gate, decision: 'approve', by: 'carol', via: 'cli' } as const] : []),
    ...(scenario.security
      ? (['carol', 'alice'] as const).map((by): TaskEvent => ({
          type: 'gate.decide', ...env(`approve:${gate}:${by}-reason`), gate, decision: 'approve', by, via: 'cli', comment: `accepted by ${by}`,
        }))
      : []),
    ...(scenario.channels
      ? CHANNEL_DECIDERS.map(
          ({ label, by, via, principal }): TaskEvent => ({
            type: 'gate.decide', ...env(`approve:${gate}:${label}`), gate, decision: 'approve', by, via, ...(principal ? { principal } : {}),
          }),
        )
      : []),
  ]);
  const factResults: TaskEvent[] = !scenario.facts
    ? []
    : [
        ...Object.entries(CHANGES).map(([name, change]): TaskEvent => ({
          type: 'code.committed', ...env(`code.committed:${name}@current`), jobId: job, usage, branch: 'b', commit: 'c1', summary: 's', attempts: 1, ...change,
        })),
        ...(['low', 'high'] as const).map((risk): TaskEvent => ({
          type: 'review.approved', ...env(`review.approved:${risk}@current`), jobId: job, usage,
          verdict: { decision: 'approve', summary: 'ok', comments: [], risk }, testsPassed: true,
        })),
        // The reviewer measured the change itself: only docs.
        {
          type: 'review.approved', ...env('review.approved:measured-docs@current'), jobId: job, usage,
          verdict: { decision: 'approve', summary: 'ok', comments: [], risk: 'high' }, testsPassed: true, ...CHANGES.docs,
        },
        {
          type: 'review.changes_requested', ...env('review.changes_requested:failing-docs@current'), jobId: job, usage,
          verdict: { decision: 'request_changes', summary: 'no', comments, risk: 'low' }, testsPassed: false, ...CHANGES.docs,
        },
      ];
  const finding = (severity: SecurityFinding['severity']): SecurityFinding => ({
    severity, category: 'injection', file: 'src/app.ts', line: 1, description: 'd', suggestedFix: 'f', source: 'model',
  });
  // The facts of the plain results, so the findings alone make new groups; only the protected paths add their own.
  const securityResults: TaskEvent[] = !scenario.security
    ? []
    : [
        ...(['high', 'medium'] as const).map((severity): TaskEvent => ({
          type: 'review.approved', ...env(`review.approved:${severity}-finding@current`), jobId: job, usage,
          verdict: { decision: 'approve', summary: 'ok', comments: [] }, testsPassed: true,
          security: { summary: 's', findings: [finding(severity), finding('low')] },
        })),
        {
          type: 'review.changes_requested', ...env('review.changes_requested:high-finding@current'), jobId: job, usage,
          verdict: { decision: 'request_changes', summary: 'no', comments }, testsPassed: false,
          security: { summary: 's', findings: [finding('critical')] },
        },
        ...(['workflow', 'deployPath'] as const).map((name): TaskEvent => ({
          type: 'review.approved', ...env(`review.approved:${name}@current`), jobId: job, usage,
          verdict: { decision: 'approve', summary: 'ok', comments: [] }, testsPassed: true, ...PROTECTED_CHANGES[name],
          security: { summary: 's', findings: [] },
        })),
        {
          type: 'review.changes_requested', ...env('review.changes_requested:workflow@current'), jobId: job, usage,
          verdict: { decision: 'request_changes', summary: 'no', comments }, testsPassed: false, ...PROTECTED_CHANGES.workflow,
          security: { summary: 's', findings: [] },
        },
      ];
  const timers: TaskEvent[] = !scenario.timers
    ? []
    : GATES.flatMap((gate) => {
        const visit = context.gateVisits[gate];
        const fired = (label: string, v: number, kind: 'remind' | 'expire', sentAt: string): TaskEvent => ({
          type: 'gate.timer_fired', ...env(`timer:${gate}:${label}`), gate, visit: v, kind, fireAt: sentAt, sentAt,
        });
        return visit === 0
          ? []
          : [
              fired('remind', visit, 'remind', DUE_AT),
              fired('expire', visit, 'expire', DUE_AT),
              fired('expire-early', visit, 'expire', EARLY_AT),
              ...(visit > 1 ? [fired('expire-stale', visit - 1, 'expire', DUE_AT)] : []),
            ];
      });
  return [
    ...results(job, 'current'),
    ...factResults,
    ...securityResults,
    ...timers,
    // A failure that claims a later stage than the job it is for: it must not let a retry skip gates.
    { type: 'job.failed', ...env('job.failed@current-claiming-deploy'), jobId: job, usage, stage: 'deploy', reason: 'boom' },
    ...results(stale, 'stale'),
    ...decisions,
    { type: 'task.cancel', ...env('cancel'), by: 'carol', reason: 'stop' },
    { type: 'task.retry', ...env('retry'), by: 'carol' },
  ];
}

/** Deciders through the other channels; the facts are what the channel vouches for. */
const CHANNEL_DECIDERS: Array<{ label: string; by: string; via: 'api' | 'github' | 'slack'; principal?: PrincipalFacts }> = [
  { label: 'github-release', by: 'Octo', via: 'github', principal: { teams: ['acme/release'] } },
  { label: 'github-web', by: 'webdev', via: 'github', principal: { teams: ['acme/web'] } },
  { label: 'slack-S1', by: 'U1', via: 'slack', principal: { groups: ['S1'] } },
  { label: 'slack-none', by: 'U2', via: 'slack' },
  // Team membership is GitHub's to vouch for: from Slack it means nothing.
  { label: 'slack-claims-team', by: 'U3', via: 'slack', principal: { teams: ['acme/release'] } },
  // The submitter alice through the API, and bob as a Slack user id that happens to read "bob".
  { label: 'api-alice', by: 'alice', via: 'api' },
  { label: 'slack-bob', by: 'bob', via: 'slack' },
];

const CHANGES = {
  docs: { changedFiles: ['docs/guide.md'], linesChanged: 4 },
  src: { changedFiles: ['docs/guide.md', 'src/app.ts'], linesChanged: 40 },
  unmeasured: {},
} satisfies Record<string, { changedFiles?: string[]; linesChanged?: number }>;

/** Changes to a CI workflow and to a path the security scenario names as its deploy configuration. */
const PROTECTED_CHANGES = {
  workflow: { changedFiles: ['src/app.ts', '.github/workflows/ci.yml'], linesChanged: 6 },
  deployPath: { changedFiles: ['ops/deploy.sh'], linesChanged: 2 },
};

function countedApprovals(c: TaskContext, gate: Gate) {
  return c.decisions.filter(
    (d) => d.gate === gate && d.visit === c.gateVisits[gate] && d.decision === 'approve' && d.counted,
  );
}

const approversOf = (decisions: TaskContext['decisions']) => [...new Set(decisions.map(identityOf))].sort();

/**
 * What the guards read; two snapshots in the same group behave alike for every event. Whether a
 * gate was approved at an earlier visit is part of the group too: a chart that wrongly counted
 * such approvals must show it.
 */
function groupOf(s: Snapshot): string {
  const c = s.context;
  const passOnce = GATES.filter((gate) => gate !== 'command');
  return JSON.stringify({
    value: s.value,
    round: Math.min(c.reviewRound, c.maxReviewRounds + 1),
    failedAt: c.error?.stage ?? null,
    approvals: passOnce.map((gate) => approversOf(countedApprovals(c, gate))),
    approvedBefore: passOnce.map((gate) =>
      c.decisions.some((d) => d.gate === gate && d.visit < c.gateVisits[gate] && d.decision === 'approve' && d.counted),
    ),
    implemented: c.attempts.implement > 0,
    command: commandGroupOf(s),
    facts: { ...c.facts, commit: null },
    security: { blocking: c.security.findings.some((f) => f.severity === 'high' || f.severity === 'critical'), fixRounds: Math.min(c.security.fixRounds, 1) },
    openGate: openGateGroupOf(s),
  });
}

/** The fired timers and the escalation of the gate the task waits at; read by no guard elsewhere. */
function openGateGroupOf(s: Snapshot) {
  const visit = s.context.gateVisit;
  if (visit === null || GATE_STATES[visit.gate] !== s.value) return null;
  return { fired: visit.timers.filter((t) => t.firedAt !== null).map((t) => t.kind), escalated: visit.escalatedAt !== null };
}

/**
 * The command gate's part of the group. At the gate: its approvers at this visit, and whether an
 * earlier visit had any. Away from it, only whether any visit so far had any: no guard reads the
 * approvers there and the next visit starts afresh, and as a coder may ask again and again,
 * keeping them would multiply every later group. Whether a command is left pending (only a
 * cancel at the gate leaves one) and how many were approved (capped) are read by no guard, but
 * are what the gate leaves behind.
 */
function commandGroupOf(s: Snapshot) {
  const c = s.context;
  const atGate = s.value === GATE_STATES.command;
  const visit = c.gateVisits.command;
  return {
    approvals: atGate ? approversOf(countedApprovals(c, 'command')) : null,
    approvedBefore: c.decisions.some(
      (d) => d.gate === 'command' && (atGate ? d.visit < visit : d.visit <= visit) && d.decision === 'approve' && d.counted,
    ),
    pending: c.pendingCommand !== null,
    approvedCommands: Math.min(c.approvedCommands.length, 1),
  };
}

type Decided = Pick<TaskContext['decisions'][number], 'by' | 'via' | 'principal'>;

/** One person across channels of a namespace: CLI and API users share one. */
function identityOf(d: Decided): string {
  if (d.via === 'cli' || d.via === 'api') return `local:${d.by}`;
  return `${d.via}:${d.via === 'github' ? d.by.toLowerCase() : d.by}`;
}

/** The principals these scenarios use, matched as the README describes them. */
function matches(principal: string, d: Decided): boolean {
  if (d.via === 'policy') return false;
  if (principal === '*') return true;
  const [prefix, rest] = principal.includes(':') ? [principal.slice(0, principal.indexOf(':')), principal.slice(principal.indexOf(':') + 1)] : ['', principal];
  switch (prefix) {
    case '':
      return (d.via === 'cli' || d.via === 'api') && d.by === rest;
    case 'github-team':
      return d.via === 'github' && (d.principal?.teams ?? []).includes(rest);
    case 'slack-group':
      return d.via === 'slack' && (d.principal?.groups ?? []).includes(rest);
    default:
      throw new Error(`the oracle does not know principal ${principal}`);
  }
}

/** The policy that decides a gate, as documented: without a command policy, the deploy gate's decides commands. */
function policyIn(policies: GatePolicies, gate: Gate): GatePolicy {
  return gate === 'command' ? (policies.command ?? policies.deploy) : policies[gate];
}

function knownGate(gate: string): Gate {
  const known = GATES.find((g) => g === gate);
  if (known === undefined) throw new Error(`a decision for gate ${gate}, which this model does not cover`);
  return known;
}

/** The deploy gate is held while the latest review has high or critical findings. */
const isHeld = (gate: Gate, walk: Walk) => gate === 'deploy' && walk.facts.blocking === true;

/**
 * The approvers and quorum in force: the security group's at a held deploy gate, else the
 * escalation group's once the replay saw the gate escalate.
 */
function inForce(c: TaskContext, gate: Gate, walk: Walk): { approvers: string[]; required: number } {
  if (isHeld(gate, walk)) return c.policies.security ?? { approvers: [], required: 1 };
  const policy = policyIn(c.policies, gate);
  const to = policy.timeout?.escalateTo;
  return walk.escalated.has(`${gate}:${c.gateVisits[gate]}`) && to !== undefined ? to : policy;
}

/** At a held deploy gate an approval counts only from the security group with a reason; a rejection from the gate's approvers too. */
function isAllowed(c: TaskContext, gate: Gate, walk: Walk, d: Decided & { decision?: string; comment?: string }): boolean {
  if (!isHeld(gate, walk) || d.decision === undefined || d.decision === 'approve') {
    const reasoned = !isHeld(gate, walk) || (d.comment ?? '').trim() !== '';
    return reasoned && inForce(c, gate, walk).approvers.some((p) => matches(p, d));
  }
  return [...policyIn(c.policies, gate).approvers, ...(c.policies.security?.approvers ?? [])].some((p) => matches(p, d));
}

const RISKS: RiskLevel[] = ['low', 'medium', 'high'];

/** What the replay knows about the change, from the results it applied. */
interface Facts {
  files?: string[];
  lines?: number;
  checksGreen?: boolean;
  verdict?: string;
  risk?: RiskLevel;
  /** The latest review had high or critical security findings. */
  blocking?: boolean;
}

/** A CI workflow, or deploy configuration the policy names (`dir/**` globs here). */
function isProtected(policies: GatePolicies, file: string): boolean {
  const named = policies.security?.protectedPaths ?? [];
  return file.startsWith('.github/workflows/') || named.some((glob) => glob.endsWith('/**') && file.startsWith(glob.slice(0, -2)));
}

function ruleHolds(rule: AutoApproveRule, f: Facts): boolean {
  const w = rule.when;
  const underGlob = (file: string) => (w.pathsMatch ?? []).some((g) => (g.endsWith('/**') ? file.startsWith(g.slice(0, -2)) : file === g));
  if (w.pathsMatch !== undefined && (f.files === undefined || !f.files.every(underGlob))) return false;
  if (w.maxLinesChanged !== undefined && (f.lines === undefined || f.lines > w.maxLinesChanged)) return false;
  if (w.checksGreen === true && f.checksGreen !== true) return false;
  if (w.verdict !== undefined && f.verdict !== w.verdict) return false;
  if (w.maxRisk !== undefined && (f.verdict === undefined || RISKS.indexOf(f.risk ?? 'high') > RISKS.indexOf(w.maxRisk))) return false;
  return true;
}

/**
 * The auto-approval the policy gives on these facts: `true`'s, the first rule that holds, or
 * none; never at a held deploy gate, nor at the review or deploy gate for a protected path.
 */
function autoApprover(policies: GatePolicies, f: Facts, gate: Gate): string | undefined {
  const policy = policyIn(policies, gate);
  if (gate === 'deploy' && f.blocking === true) return undefined;
  if ((gate === 'review' || gate === 'deploy') && (f.files ?? []).some((file) => isProtected(policies, file))) return undefined;
  if (policy.autoApprove === true) return AUTO;
  if (policy.autoApprove === false) return undefined;
  const rule = policy.autoApprove.find((r) => ruleHolds(r, f));
  return rule === undefined ? undefined : `policy:${rule.name}`;
}

/** The oracle, written from the policy's meaning rather than from the chart's guards. */
function gateSatisfied(c: TaskContext, gate: (typeof GATES)[number], walk: Walk): boolean {
  if (c.gateVisits[gate] === 0) return false;
  const approvals = countedApprovals(c, gate);
  const auto = autoApprover(c.policies, walk.facts, gate);
  if (approvals.some((d) => d.via === 'policy' && d.by === auto)) return true;
  const { required } = inForce(c, gate, walk);
  const people = new Set(approvals.filter((d) => isAllowed(c, gate, walk, d)).map(identityOf));
  const submitter = `local:${c.spec.submittedBy}`;
  const independent = !policyIn(c.policies, gate).separationOfDuties || [...people].some((p) => p !== submitter);
  return people.size >= required && independent;
}

interface Tally {
  deployEntries: number;
  firstImplementEntries: number;
  refusedDecisions: number;
  /** Returns from the command gate to implementing: by approval (a person's or the policy's), by rejection. */
  commandApproved: number;
  commandRejected: number;
  /** Gates passed by an auto-approval rule, by rule. */
  rules: Set<string>;
  /** Timer events the chart applied, as `<gate>:<kind>[:<what the expiry did>]`. */
  timers: Set<string>;
  /** Approvals that counted but, under separation of duties, did not pass the gate. */
  heldBySeparation: number;
  /** Channel deciders whose approval counted. */
  countedDeciders: Set<string>;
  /** Coder rounds given to blocking security findings; counted overrides of them; approvals refused at a held gate. */
  securityRounds: number;
  overrides: number;
  heldRefusals: number;
  reached: Set<string>;
  /** Every broken invariant, with the step that broke it; asserted empty at the end. */
  violations: string[];
}

/**
 * Where a replay is: implementedSinceDeployGate says the code changed after the deploy gate last
 * opened; the facts, fired timers and escalations are what the replay saw happen.
 */
interface Walk {
  snapshot: Snapshot;
  implementedSinceDeployGate: boolean;
  facts: Facts;
  /** `<gate>:<visit>:<kind>` of every timer applied. */
  fired: Set<string>;
  /** `<gate>:<visit>` of every escalated gate visit. */
  escalated: Set<string>;
  /** The coder had its one round on blocking security findings. */
  securityRoundUsed: boolean;
}

/** Where a timed-out gate goes: the same places a rejection or a cancel takes it. */
const EXPIRY_TARGET: Record<Gate, { reject: string; cancel: string }> = {
  plan: { reject: 'planning', cancel: 'cancelled' },
  review: { reject: 'implementing', cancel: 'cancelled' },
  deploy: { reject: 'implementing', cancel: 'cancelled' },
  command: { reject: 'implementing', cancel: 'cancelled' },
};
const PASS_TARGET: Record<Gate, string> = {
  plan: 'implementing',
  review: 'awaitingDeployApproval',
  deploy: 'deploying',
  command: 'implementing',
};

/** The facts after this event, as the policy's meaning has them: a new commit starts afresh. */
function factsAfter(prev: Snapshot, event: TaskEvent, facts: Facts): Facts {
  const current = 'jobId' in event && event.jobId === prev.context.currentJobId;
  if (!current) return facts;
  const measured = (e: { changedFiles?: string[]; linesChanged?: number }): Facts => ({
    ...(e.changedFiles === undefined ? {} : { files: e.changedFiles }),
    ...(e.linesChanged === undefined ? {} : { lines: e.linesChanged }),
  });
  if (event.type === 'code.committed' && prev.value === 'implementing') return measured(event);
  if (event.type === 'command.approval_requested' && prev.value === 'implementing') return {};
  if ((event.type === 'review.approved' || event.type === 'review.changes_requested') && prev.value === 'reviewing') {
    return {
      ...facts,
      ...measured(event),
      checksGreen: event.testsPassed,
      verdict: event.verdict.decision,
      ...(event.verdict.risk === undefined ? { risk: undefined } : { risk: event.verdict.risk }),
      blocking: (event.security?.findings ?? []).some((f) => f.severity === 'high' || f.severity === 'critical'),
    };
  }
  return facts;
}

function checkStep(scenario: Scenario, walk: Walk, event: TaskEvent, tally: Tally): Walk {
  const prev = walk.snapshot;
  const [next] = transition(taskMachine, prev, event);
  const where = `${String(prev.value)} --${event.msgId}--> ${String(next.value)}`;
  const violated = (what: string) => tally.violations.push(`${where}: ${what}`);
  const deployGateOpened = next.context.gateVisits.deploy > prev.context.gateVisits.deploy;
  const entered = (state: string) => next.value === state && prev.value !== state;

  let implementedSinceDeployGate = walk.implementedSinceDeployGate;
  if (deployGateOpened) implementedSinceDeployGate = false;
  if (entered('implementing')) implementedSinceDeployGate = true;
  const facts = factsAfter(prev, event, walk.facts);
  const fired = new Set(walk.fired);
  const escalated = new Set(walk.escalated);
  // (f) Blocking security findings go back to the coder once, whatever the verdict; after that a
  // review goes back only when it asks for changes with rounds left.
  let securityRoundUsed = walk.securityRoundUsed;
  const reviewResult = (event.type === 'review.approved' || event.type === 'review.changes_requested') && prev.value === 'reviewing' && event.jobId === prev.context.currentJobId;
  if (reviewResult) {
    const roundsLeft = prev.context.reviewRound <= prev.context.maxReviewRounds;
    const securityRound = facts.blocking === true && !walk.securityRoundUsed;
    const toCoder = securityRound || (event.type === 'review.changes_requested' && roundsLeft);
    if ((next.value === 'implementing') !== toCoder) violated(`a review result went to ${String(next.value)}`);
    if (securityRound) {
      securityRoundUsed = true;
      tally.securityRounds += 1;
      const told = next.context.reviewComments.some((c) => c.body.startsWith('Security (high') || c.body.startsWith('Security (critical'));
      if (!told) violated('the coder was sent back without the findings');
    }
  }
  const after: Walk = { snapshot: next, implementedSinceDeployGate, facts, fired, escalated, securityRoundUsed };
  tally.reached.add(String(next.value));

  if (prev.status === 'done' && next !== prev) violated('a final state changed');

  // (e) A timer moves the task only when it belongs to the open gate's current visit, is one the
  // policy set, is due (gates open at SENT_AT here) and has not fired before; then it does what
  // the policy says, once.
  if (event.type === 'gate.timer_fired' && next !== prev) {
    const gate = event.gate;
    const policy = policyIn(prev.context.policies, gate);
    const dueAfterMs = event.kind === 'remind' ? policy.timeout?.remindAfterMs : policy.timeout?.expireAfterMs;
    const key = `${gate}:${event.visit}:${event.kind}`;
    if (prev.value !== GATE_STATES[gate]) violated('a timer applied away from its gate');
    if (event.visit !== prev.context.gateVisits[gate]) violated('a timer of an earlier visit applied');
    if (dueAfterMs === undefined) violated('a timer the policy does not set applied');
    else if (Date.parse(event.sentAt) < Date.parse(SENT_AT) + dueAfterMs) violated('a timer applied before it was due');
    if (walk.fired.has(key)) violated('a timer applied twice');
    fired.add(key);
    const onExpire = policy.timeout?.onExpire;
    let outcome: string = event.kind;
    if (event.kind === 'remind' && next.value !== prev.value) violated('a reminder moved the task');
    if (event.kind === 'expire' && onExpire === 'escalate') {
      if (walk.escalated.has(`${gate}:${event.visit}`)) violated('escalated twice');
      escalated.add(`${gate}:${event.visit}`);
      const passes = gateSatisfied(next.context, gate, after);
      const expected = passes ? PASS_TARGET[gate] : GATE_STATES[gate];
      if (next.value !== expected) violated(`an escalation went to ${String(next.value)}, not ${expected}`);
      outcome = passes ? 'expire:escalated-and-passed' : 'expire:escalated';
    } else if (event.kind === 'expire' && (onExpire === 'reject' || onExpire === 'cancel')) {
      if (next.value !== EXPIRY_TARGET[gate][onExpire]) violated(`an expiry with ${onExpire} went to ${String(next.value)}`);
      outcome = `expire:${onExpire}`;
    }
    tally.timers.add(`${gate}:${outcome}`);
  }

  // No decision by someone outside the policy, and no auto-approval the policy does not give on
  // these facts, ever counts; the policy rejects only when a gate times out with `reject`.
  for (const d of next.context.decisions.slice(prev.context.decisions.length)) {
    const gate = knownGate(d.gate);
    if (!d.counted) {
      tally.refusedDecisions += 1;
      if (isHeld(gate, after) && d.decision === 'approve') tally.heldRefusals += 1;
      continue;
    }
    if (d.securityOverride === true) tally.overrides += 1;
    if ((d.securityOverride === true) !== (isHeld(gate, after) && d.decision === 'approve' && d.via !== 'policy')) {
      violated(`${d.by}'s ${d.decision} at the ${gate} gate ${d.securityOverride === true ? 'marked' : 'not marked'} as a security override`);
    }
    const policy = policyIn(next.context.policies, gate);
    if (d.via === 'policy' && d.decision === 'approve') {
      if (d.by !== autoApprover(next.context.policies, facts, gate)) violated(`counted ${d.by} at the ${gate} gate on facts ${JSON.stringify(facts)}`);
      if (d.by !== AUTO) tally.rules.add(d.by);
    } else if (d.via === 'policy') {
      const timedOut = event.type === 'gate.timer_fired' && event.kind === 'expire' && policy.timeout?.onExpire === 'reject';
      if (d.by !== 'policy:timeout' || !timedOut) violated(`counted a rejection by ${d.by} at the ${gate} gate`);
    } else {
      if (!isAllowed(next.context, gate, after, d)) violated(`counted ${d.by} via ${d.via} at the ${gate} gate`);
      const label = CHANNEL_DECIDERS.find((c) => c.by === d.by && c.via === d.via)?.label;
      if (label !== undefined) tally.countedDeciders.add(label);
      if (d.decision === 'approve' && next.value === prev.value && policy.separationOfDuties && gate !== 'command') {
        const others = countedApprovals(next.context, gate).filter((a) => identityOf(a) !== `local:${next.context.spec.submittedBy}`);
        if (others.length === 0 && countedApprovals(next.context, gate).length >= inForce(next.context, gate, after).required) {
          tally.heldBySeparation += 1;
        }
      }
    }
  }

  // A gate whose auto-approval holds on arrival never makes people wait.
  for (const gate of GATES) {
    const opened = next.context.gateVisits[gate] > prev.context.gateVisits[gate];
    if (opened && autoApprover(next.context.policies, facts, gate) !== undefined && next.value === GATE_STATES[gate]) {
      violated(`the ${gate} gate held the task although its policy auto-approves on ${JSON.stringify(facts)}`);
    }
  }

  if (entered('deploying')) {
    tally.deployEntries += 1;
    // (a) the deploy gate's current visit is satisfied, and opened after the last change to the code…
    if (!gateSatisfied(next.context, 'deploy', after)) violated('deploy gate not satisfied');
    if (implementedSinceDeployGate) violated('the code changed after the deploy gate');
    // …and the step came through the gate (or re-runs a deploy that failed after passing it).
    const throughGate =
      prev.value === 'awaitingDeployApproval' || (scenario.policies.deploy.autoApprove !== false && deployGateOpened);
    const retryOfDeploy = prev.value === 'failed' && prev.context.error?.stage === 'deploy';
    if (!throughGate && !retryOfDeploy) violated('entered deploying around the deploy gate');
  }

  // (d) the command gate opens only when the current implement job asks to run a command…
  const commandGateOpened = next.context.gateVisits.command > prev.context.gateVisits.command;
  const askedByCurrentJob =
    prev.value === 'implementing' &&
    event.type === 'command.approval_requested' &&
    event.jobId === prev.context.currentJobId;
  if (commandGateOpened && !askedByCurrentJob) violated('command gate opened without the current implement job asking');
  if (prev.value === 'awaitingCommandApproval' && !['awaitingCommandApproval', 'implementing', 'cancelled'].includes(String(next.value))) {
    violated('left the command gate for neither implementing nor cancelled');
  }
  // …and is left for implementing only on a decision this step counted at its current visit: an
  // approval that meets the command policy (a person's quorum, or the policy's own auto-approval),
  // or a counted rejection (a person's, or the policy's when the gate timed out).
  // An auto-approved gate is entered and left within the one step.
  const leftCommandGate =
    next.value === 'implementing' && (prev.value === 'awaitingCommandApproval' || commandGateOpened);
  if (leftCommandGate) {
    const c = next.context;
    const counted = c.decisions
      .slice(prev.context.decisions.length)
      .filter((d) => d.gate === 'command' && d.visit === c.gateVisits.command && d.counted);
    const approved = counted.some((d) => d.decision === 'approve') && gateSatisfied(c, 'command', after);
    const rejected = counted.some((d) => d.decision === 'reject' && (d.via === 'policy' ? d.by === 'policy:timeout' : isAllowed(c, 'command', after, d)));
    if (approved) tally.commandApproved += 1;
    if (rejected) tally.commandRejected += 1;
    if (!approved && !rejected) violated('left the command gate without a counted decision');
    // The command joins the approved ones only on approval, and nothing is left pending.
    const command = event.type === 'command.approval_requested' ? event.command : prev.context.pendingCommand?.command;
    const expected = approved ? [...prev.context.approvedCommands, command] : prev.context.approvedCommands;
    if (JSON.stringify(c.approvedCommands) !== JSON.stringify(expected)) violated(`approved commands ${JSON.stringify(c.approvedCommands)}`);
    if (c.pendingCommand !== null) violated('a command still pending after the command gate');
  } else if (next.context.approvedCommands.length !== prev.context.approvedCommands.length) {
    violated('approved commands changed without passing the command gate');
  }

  if (entered('implementing')) {
    // (b) the plan gate's current visit is satisfied on every entry…
    if (!gateSatisfied(next.context, 'plan', after)) violated('plan gate not satisfied');
    if (prev.context.attempts.implement === 0) {
      // …and the first entry comes through the plan gate.
      tally.firstImplementEntries += 1;
      const planGateOpened = next.context.gateVisits.plan > prev.context.gateVisits.plan;
      const throughGate =
        prev.value === 'awaitingPlanApproval' || (scenario.policies.plan.autoApprove !== false && planGateOpened);
      if (!throughGate) violated('first implementation around the plan gate');
    }
  }
  return after;
}

function explore(scenario: Scenario) {
  const input = submitFor(scenario);
  const paths = getShortestPaths(taskMachine, {
    input,
    events: (s) => eventsFor(scenario, s),
    serializeState: groupOf,
    serializeEvent: (event) => event.msgId,
  });
  const tally: Tally = {
    deployEntries: 0,
    firstImplementEntries: 0,
    refusedDecisions: 0,
    commandApproved: 0,
    commandRejected: 0,
    rules: new Set(),
    timers: new Set(),
    heldBySeparation: 0,
    countedDeciders: new Set(),
    securityRounds: 0,
    overrides: 0,
    heldRefusals: 0,
    reached: new Set(),
    violations: [],
  };
  let pathsToDone = 0;

  // Shortest paths share their prefixes, so each replayed prefix is kept and extended once.
  const first: Walk = {
    snapshot: initialTransition(taskMachine, input)[0],
    implementedSinceDeployGate: false,
    facts: {},
    fired: new Set(),
    escalated: new Set(),
    securityRoundUsed: false,
  };
  const replays = new Map<string, Walk>([['', first]]);
  const replay = (labels: string[]): Walk => {
    const key = labels.join(' ');
    const known = replays.get(key);
    if (known !== undefined) return known;
    const before = replay(labels.slice(0, -1));
    const label = labels.at(-1);
    const event = eventsFor(scenario, before.snapshot).find((e) => e.msgId === label);
    if (event === undefined) throw new Error(`event ${String(label)} is not offered in ${String(before.snapshot.value)}`);
    const walk = checkStep(scenario, before, event, tally);
    replays.set(key, walk);
    return walk;
  };

  for (const path of paths) {
    // The first step is the initial snapshot, reached by xstate.init.
    const walk = replay(path.steps.slice(1).map((step) => step.event.msgId));
    if (groupOf(walk.snapshot) !== groupOf(path.state)) {
      tally.violations.push(`replay of ${path.steps.length - 1} steps left its group: ${groupOf(walk.snapshot)}`);
    }
    if (walk.snapshot.value === 'done') pathsToDone += 1;
    // Every edge out of every reachable group, from a real trajectory.
    for (const event of eventsFor(scenario, walk.snapshot)) checkStep(scenario, walk, event, tally);
  }
  return { paths, tally, pathsToDone };
}

describe('task machine paths', () => {
  it.each(SCENARIOS.map((s) => [s.name, s] as const))(
    'never deploys, implements or runs a command without the gate policy satisfied, and can finish: %s',
    (_name, scenario) => {
      const { paths, tally, pathsToDone } = explore(scenario);
      expect(tally.violations.slice(0, 10)).toEqual([]);

      // (c) done is reachable.
      expect(pathsToDone).toBeGreaterThan(0);
      // Not vacuous: the exploration did enter deploying and implementing, and saw refusals.
      expect(tally.deployEntries).toBeGreaterThan(0);
      expect(tally.firstImplementEntries).toBeGreaterThan(0);
      expect(paths.length).toBeGreaterThan(10);
      expect([...tally.reached].sort()).toEqual(
        [
          'awaitingCommandApproval',
          'awaitingDeployApproval',
          'awaitingPlanApproval',
          'awaitingReviewApproval',
          'cancelled',
          'deploying',
          'done',
          'failed',
          'implementing',
          'planning',
          'reviewing',
        ].filter((state) => !isSkipped(scenario, state)),
      );
      const everyGateAuto = GATES.every((g) => policyIn(scenario.policies, g).autoApprove === true);
      if (!everyGateAuto) expect(tally.refusedDecisions).toBeGreaterThan(0);
      // Not vacuous: where the coder asks, some path goes implementing → command gate → implementing,
      // by approval and, where people decide, by rejection.
      if (!scenario.noCommands) expect(tally.commandApproved).toBeGreaterThan(0);
      if (!scenario.noCommands && !policyIn(scenario.policies, 'command').autoApprove) {
        expect(tally.commandRejected).toBeGreaterThan(0);
      }
      // Not vacuous: each policy feature a scenario sets did decide some step.
      const features = SCENARIO_FEATURES[scenario.name];
      if (features?.rules) expect([...tally.rules].sort()).toEqual(features.rules);
      if (features?.timers) expect([...tally.timers].sort()).toEqual(features.timers);
      if (features?.heldBySeparation) expect(tally.heldBySeparation).toBeGreaterThan(0);
      if (features?.deciders) expect([...tally.countedDeciders].sort()).toEqual(features.deciders);
      if (scenario.security) {
        expect(tally.securityRounds).toBeGreaterThan(0);
        expect(tally.overrides).toBeGreaterThan(0);
        expect(tally.heldRefusals).toBeGreaterThan(0);
      }
    },
    // Each scenario explores and replays a thousand groups or more: slow on a busy machine, not stuck.
    180_000,
  );
});

/** What each policy feature must be seen doing in its scenario. */
const SCENARIO_FEATURES: Record<string, { rules?: string[]; timers?: string[]; heldBySeparation?: true; deciders?: string[] }> = {
  'separation of duties: the submitter is an approver but not enough alone': { heldBySeparation: true },
  // The GitHub user outside the team, the Slack user outside the group and "bob" on Slack never count.
  'mixed principals: a GitHub team, a Slack group and a CLI user, two required': { deciders: ['api-alice', 'github-release', 'slack-S1'] },
  'auto-approval rules on the change: docs only, low risk, tiny': { rules: ['policy:docs-only', 'policy:low-risk', 'policy:tiny'] },
  'timeouts: the plan gate rejects, the deploy gate escalates, the review gate cancels': {
    timers: [
      'deploy:expire:escalated',
      'deploy:expire:escalated-and-passed',
      'deploy:remind',
      'plan:expire:reject',
      'plan:remind',
      'review:expire:cancel',
    ],
  },
  'timeouts at the command gate: rejected when nobody decides': { timers: ['command:expire:reject', 'command:remind'] },
};

/**
 * A gate state that auto-approves is passed through within one step, so no snapshot rests in it
 * (unless the security review holds it); the command gate is not reached at all where the coder
 * never asks.
 */
function isSkipped(scenario: Scenario, state: string): boolean {
  if (scenario.noCommands && state === GATE_STATES.command) return true;
  // Findings and protected paths keep the review and deploy gates from passing on their own.
  if (scenario.security && (state === GATE_STATES.review || state === GATE_STATES.deploy)) return false;
  return GATES.some((g) => policyIn(scenario.policies, g).autoApprove === true && GATE_STATES[g] === state);
}
