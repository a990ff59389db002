/**
 * Review threads: a writer's review comments on the task's pull request go to the coder in one
 * round, each with its id; after the coder's push serve replies in each thread (the commit that
 * addressed it, or why it was declined) and resolves the addressed ones. Bots' comments (unless
 * allow-listed) and ones marked `[skip stagegate]` are never sent nor answered; a writer's reply
 * in a thread Stagegate declined goes back with the thread so far and is answered in it, a
 * "thanks" in a thread it addressed goes nowhere; comments written while the coder works wait for the next round; a redelivered webhook or
 * `code.committed` replies nothing twice, and after `maxReviewerRounds` rounds a review starts
 * none: a person decides. Over a real nats-server, the orchestrator and serve in-process, the
 * fake GitHub (REST and GraphQL) and real git; the coder is an in-process stand-in that clones
 * and pushes through the gateway like the real one and answers as the scripted rule below says.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImplementRequest, ReviewAnswer, TaskEventRecorded } from '../../core/bus/messages.js';
import { loadConfig } from '../../core/config.js';
import { createGitHubClient } from '../../core/github/client.js';
import { statusMarker } from '../../orchestrator/github/status-comment.js';
import { answerReviewThreads } from '../../orchestrator/github/thread-replies.js';
import { openThreadStore } from '../../orchestrator/github/thread-store.js';
import type { FakeIssue, FakeReviewComment } from '../fakes/github/state.js';
import { pushRound } from '../helpers/push-round.js';
import { oneCall } from '../helpers/canned-agents.js';
import { BOT, OWNER, REPO, WRITER, startGitHubServe, type GitHubServeHarness } from '../helpers/github-serve.js';
import { issueCommentCreated, issueLabeled, pullRequestReviewCommentCreated, pullRequestReviewSubmitted } from '../helpers/github-webhooks.js';
import { waitFor } from '../helpers/wait-for.js';

const silent = pino({ level: 'silent' });
const WRITER_TOKEN = 'ghp_wendy_writer_token_0002';
const LINT_BOT = 'lint-helper[bot]';
const LINT_BOT_TOKEN = 'ghp_lint_helper_token_0002';
const STYLE_BOT = 'style-helper[bot]';
const STYLE_BOT_TOKEN = 'ghp_style_helper_token_0002';
const MAX_REVIEWER_ROUNDS = 2;
const GREET = ['export function greet(name) {', '  return `Hello, ${name}!`;', '}', ''].join('\n');
const DECLINE_REASON = 'The template literal is what interpolates the name; single quotes would print ${name}.';

let h: GitHubServeHarness;
let work: string;
const coderJobs: ImplementRequest[] = [];
/** Coder rounds (`<task id>:<round>`) that wait until the test lets them finish. */
const holds = new Map<string, { promise: Promise<void>; release: () => void }>();
function hold(key: string) {
  let release = () => {};
  const promise = new Promise<void>((resolve) => (release = resolve));
  holds.set(key, { promise, release });
  return release;
}
/** Answers the stand-in coder adds, naming ids it was never given (as a misled model might). */
const strayAnswers: ReviewAnswer[] = [];

/** The stand-in coder's rule: a comment about quotes is declined, every other one addressed (a reply, by its own first line). */
function answerFor(comment: { commentId?: number | undefined; body: string }): ReviewAnswer[] {
  if (comment.commentId === undefined) return [];
  return (comment.body.split('\n')[0] ?? '').includes('quotes')
    ? [{ commentId: comment.commentId, status: 'declined', reason: DECLINE_REASON }]
    : [{ commentId: comment.commentId, status: 'addressed', reason: '' }];
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'sg-threads-test-'));
  h = await startGitHubServe({
    settings: { github: { botLogin: BOT, maxReviewerRounds: MAX_REVIEWER_ROUNDS, reviewBots: [STYLE_BOT], ci: { enabled: false } } },
    agents: {
      coder: async (job) => {
        coderJobs.push(job);
        await holds.get(`${job.taskId}:${job.round}`)?.promise;
        const commit = await pushRound(job, work, { 'greet.js': `${GREET}// round ${job.round}\n` });
        const answers = [...job.reviewComments.flatMap(answerFor), ...(job.round > 1 ? strayAnswers : [])];
        return { type: 'code.committed', branch: job.branch, commit, summary: `Round ${job.round}.`, attempts: 1, usage: oneCall, ...(answers.length === 0 ? {} : { answers }) };
      },
      reviewer: async () => ({ type: 'review.approved', testsPassed: true, verdict: { decision: 'approve', summary: 'Fine.', risk: 'low', comments: [{ file: 'greet.js', line: 1, body: 'Our own note on line 1.' }] }, usage: oneCall }),
    },
  });
  h.github.addUserToken(WRITER_TOKEN, WRITER);
  h.github.addUserToken(LINT_BOT_TOKEN, LINT_BOT);
  h.github.addUserToken(STYLE_BOT_TOKEN, STYLE_BOT);
  h.github.setPermission(OWNER, REPO, LINT_BOT, 'write');
}, 60_000);

afterAll(async () => {
  await h?.stop();
  await rm(work, { recursive: true, force: true });
});

const repo = { owner: OWNER, repo: REPO };
const fakeRepo = () => h.github.state.repo(OWNER, REPO)!;
const pullsFrom = (branch: string) => [...fakeRepo().issues.values()].filter((i) => i.pull?.head === branch);
const reviewsOn = (number: number) => fakeRepo().reviews.filter((r) => r.pullNumber === number);
const repliesTo = (commentId: number) => fakeRepo().reviewComments.filter((c) => c.inReplyTo === commentId);
const commentsOfReview = (reviewId: number) => fakeRepo().reviewComments.filter((c) => c.reviewId === reviewId);

function clientAs(token: string) {
  const { github } = loadConfig({ env: { GITHUB_TOKEN: token, GITHUB_API_URL: h.github.url, STAGEGATE_GITHUB_PACE_WRITES: 'false' } });
  return createGitHubClient(github, silent, { retries: 0 }).forRepository(repo);
}

async function taskAtDeployGate(title: string) {
  const issue = h.github.addIssue(OWNER, REPO, { title, user: WRITER });
  await h.send('issues', issueLabeled({ ...repo, number: issue.number, label: 'stagegate', sender: WRITER, title }));
  await h.taskAt(issue.number, (s) => s === 'awaitingPlanApproval', 'at the plan gate');
  await h.send('issue_comment', issueCommentCreated({ ...repo, number: issue.number, body: '/approve', user: WRITER }));
  const record = await h.taskAt(issue.number, (s) => s === 'awaitingDeployApproval', 'at the deploy gate');
  const pr = await waitFor('the pull request and its review', async () => {
    const [found] = pullsFrom(record.context.branch);
    return found !== undefined && reviewsOn(found.number).length > 0 ? found : undefined;
  });
  return { issue, taskId: record.context.taskId, pr };
}

/** A review by `token`'s owner with these line comments on greet.js, and its webhook. */
async function review(pr: FakeIssue, token: string, user: string, event: 'REQUEST_CHANGES' | 'COMMENT', body: string, comments: Array<{ line: number; body: string }>) {
  const octokit = await clientAs(token);
  const { data } = await octokit.rest.pulls.createReview({ ...repo, pull_number: pr.number, event, body, comments: comments.map((c) => ({ path: 'greet.js', ...c })) });
  const payload = pullRequestReviewSubmitted({ ...repo, number: pr.number, head: pr.pull?.head ?? '', review: { id: data.id, state: event === 'COMMENT' ? 'commented' : 'changes_requested', user, body } });
  return { id: data.id, comments: commentsOfReview(data.id), payload };
}

async function roundsDone(taskId: string, implementAttempts: number) {
  return waitFor(`task ${taskId} back at the deploy gate after coder round ${implementAttempts}`, async () => {
    const r = await h.client.get(taskId);
    return r.state === 'awaitingDeployApproval' && r.context.attempts.implement === implementAttempts ? r : undefined;
  });
}

async function appliedEvents(taskId: string, type: string): Promise<TaskEventRecorded[]> {
  const found: TaskEventRecorded[] = [];
  for await (const entry of h.client.logs(taskId)) if (entry.type === 'task.event' && entry.accepted && entry.event.type === type) found.push(entry);
  return found;
}

const byId = (comments: FakeReviewComment[], body: string) => comments.find((c) => c.body.includes(body))!;

describe('review threads', () => {
  it("sends a writer's three comments in one round, answers each thread, resolves the addressed ones, and leaves the bot's and the skipped one alone", async () => {
    const { taskId, pr } = await taskAtDeployGate('Greet people');
    const bot = await review(pr, LINT_BOT_TOKEN, LINT_BOT, 'COMMENT', '', [{ line: 1, body: 'lint: prefer an arrow function' }]);
    const botComment = bot.comments[0]!;
    const botDelivery = await h.send('pull_request_review', bot.payload);
    const botCommentDelivery = await h.send('pull_request_review_comment', pullRequestReviewCommentCreated({ ...repo, number: pr.number, head: pr.pull?.head ?? '', comment: { id: botComment.id, reviewId: bot.id, user: LINT_BOT, body: botComment.body, path: 'greet.js', line: 1 } }));
    const writer = await review(pr, WRITER_TOKEN, WRITER, 'REQUEST_CHANGES', 'A few things.', [
      { line: 1, body: 'Add a doc comment above greet.' },
      { line: 2, body: 'Use single quotes here.' },
      { line: 3, body: 'Export a default too.' },
      { line: 2, body: 'Rita, is this the greeting we agreed on? [skip stagegate]' },
    ]);
    const [doc, quotes, exported, skipped] = ['doc comment', 'single quotes', 'default too', 'skip stagegate'].map((b) => byId(writer.comments, b)) as [FakeReviewComment, FakeReviewComment, FakeReviewComment, FakeReviewComment];
    strayAnswers.splice(0, strayAnswers.length, { commentId: botComment.id, status: 'addressed', reason: '' }, { commentId: skipped.id, status: 'addressed', reason: '' });
    const jobsBefore = coderJobs.length;

    const res = await h.send('pull_request_review', writer.payload);

    expect(botDelivery.json).toMatchObject({ status: 'ignored', reason: 'a review by a bot' });
    expect(botCommentDelivery.json).toMatchObject({ status: 'ignored', reason: 'a comment by a bot' });
    expect(res.status).toBe(200);
    const back = await roundsDone(taskId, 2);
    const jobs = coderJobs.slice(jobsBefore).filter((j) => j.taskId === taskId);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]?.reviewComments).toEqual([
      { file: 'greet.js', line: 1, body: 'Add a doc comment above greet.', commentId: doc.id },
      { file: 'greet.js', line: 2, body: 'Use single quotes here.', commentId: quotes.id },
      { file: 'greet.js', line: 3, body: 'Export a default too.', commentId: exported.id },
    ]);
    const commit = back.context.implementation?.commit ?? '';
    await waitFor('a reply in each of the three threads', async () => ([doc, quotes, exported].every((c) => repliesTo(c.id).length > 0) ? true : undefined));
    await waitFor('the addressed threads resolved', async () => (doc.resolvedBy !== undefined && exported.resolvedBy !== undefined ? true : undefined));

    for (const addressed of [doc, exported]) {
      expect(repliesTo(addressed.id)).toEqual([expect.objectContaining({ user: BOT, body: expect.stringContaining(`Addressed in ${commit}.`) })]);
      expect(addressed.resolvedBy).toBe(BOT);
    }
    expect(repliesTo(quotes.id)).toEqual([expect.objectContaining({ user: BOT, body: expect.stringContaining(`Not changed: ${DECLINE_REASON}`) })]);
    expect(quotes.resolvedBy).toBeUndefined();
    // Nothing for the bot, the skipped comment, or the reviewer agent's own comment, though the coder named two of them.
    const ours = commentsOfReview(reviewsOn(pr.number).find((r) => r.user === BOT)!.id)[0]!;
    for (const untouched of [botComment, skipped, ours]) {
      expect(repliesTo(untouched.id)).toEqual([]);
      expect(untouched.resolvedBy).toBeUndefined();
    }
  });

  it('replies nothing twice when the review webhook is delivered again or the code.committed is followed again', async () => {
    const { taskId, pr } = await taskAtDeployGate('Greet twice');
    const writer = await review(pr, WRITER_TOKEN, WRITER, 'COMMENT', '', [{ line: 1, body: 'Add a doc comment.' }, { line: 2, body: 'Single quotes please.' }]);
    strayAnswers.splice(0);
    await h.send('pull_request_review', writer.payload);
    await roundsDone(taskId, 2);
    await waitFor('both threads answered', async () => (writer.comments.every((c) => repliesTo(c.id).length === 1) ? true : undefined));
    const jobsBefore = coderJobs.length;
    const answersPosted = () => h.github.requests.filter((r) => r.method === 'POST' && (/\/replies$|graphql$/.test(r.path) || r.path === `/repos/${OWNER}/${REPO}/issues/${pr.number}/comments`)).length;
    const postedBefore = answersPosted();

    const again = await h.send('pull_request_review', writer.payload);
    const [committed] = (await appliedEvents(taskId, 'code.committed')).filter((e) => e.event.type === 'code.committed' && e.event.answers !== undefined);
    const deps = { threads: await openThreadStore(h.nc), github: createGitHubClient(h.config.github, silent), log: silent, now: () => new Date() };
    await answerReviewThreads(deps, committed!);
    await answerReviewThreads(deps, committed!);

    expect(again.status).toBe(200);
    expect(coderJobs.length).toBe(jobsBefore);
    for (const c of writer.comments) expect(repliesTo(c.id)).toHaveLength(1);
    expect(answersPosted()).toBe(postedBefore);
    expect((await h.client.get(taskId)).state).toBe('awaitingDeployApproval');
  });

  it('sends a single review comment to the coder once when its own webhook comes before its review\'s, and answers once', async () => {
    const { taskId, pr } = await taskAtDeployGate('Greet once');
    strayAnswers.splice(0);
    const single = await review(pr, WRITER_TOKEN, WRITER, 'REQUEST_CHANGES', 'One thing.', [{ line: 3, body: 'Export a default too.' }]);
    const comment = single.comments[0]!;
    const jobsBefore = coderJobs.length;

    const first = await h.send('pull_request_review_comment', pullRequestReviewCommentCreated({ ...repo, number: pr.number, head: pr.pull?.head ?? '', comment: { id: comment.id, reviewId: single.id, user: WRITER, body: comment.body, path: 'greet.js', line: 3 } }));
    const second = await h.send('pull_request_review', single.payload);

    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    await roundsDone(taskId, 2);
    await waitFor('the thread answered', async () => (repliesTo(comment.id).length > 0 ? true : undefined));
    const jobs = coderJobs.slice(jobsBefore).filter((j) => j.taskId === taskId);
    expect(jobs.map((j) => j.reviewComments)).toEqual([[{ file: 'greet.js', line: 3, body: 'Export a default too.', commentId: comment.id }]]);
    expect(repliesTo(comment.id)).toHaveLength(1);
    expect((await h.client.get(taskId)).context.reviewerRounds.used).toBe(1);
    // One answer on the pull request: the round started; the review's own delivery said nothing.
    expect(fakeRepo().comments.filter((c) => c.issueNumber === pr.number && c.body.startsWith(`@${WRITER} `)).map((c) => c.body)).toEqual([
      `@${WRITER} sending task \`${taskId}\` back to the coder with your review (1 line comment); the status comment follows it.`,
    ]);
  });

  it('takes a three-comment review as one coder round when GitHub delivers the review and each of its comments at once', async () => {
    const { taskId, pr } = await taskAtDeployGate('Greet all at once');
    strayAnswers.splice(0);
    const r = await review(pr, WRITER_TOKEN, WRITER, 'REQUEST_CHANGES', 'Three things.', [
      { line: 1, body: 'Add a doc comment.' },
      { line: 2, body: 'Name the parameter person.' },
      { line: 3, body: 'Export a default too.' },
    ]);
    const jobsBefore = coderJobs.length;

    const results = await Promise.all([
      ...r.comments.map((c) =>
        h.send('pull_request_review_comment', pullRequestReviewCommentCreated({ ...repo, number: pr.number, head: pr.pull?.head ?? '', comment: { id: c.id, reviewId: r.id, user: WRITER, body: c.body, path: 'greet.js', line: c.line } })),
      ),
      h.send('pull_request_review', r.payload),
    ]);

    expect(results.map((res) => res.status)).toEqual([200, 200, 200, 200]);
    await roundsDone(taskId, 2);
    await waitFor('the three threads answered', async () => (r.comments.every((c) => repliesTo(c.id).length > 0) ? true : undefined));
    const record = await h.client.get(taskId);
    expect(record.context.attempts.implement).toBe(2);
    expect(record.context.reviewerRounds.used).toBe(1);
    const jobs = coderJobs.slice(jobsBefore).filter((j) => j.taskId === taskId);
    expect(jobs.map((j) => j.reviewComments.map((c) => c.commentId).sort())).toEqual([r.comments.map((c) => c.id).sort()]);
    for (const c of r.comments) expect(repliesTo(c.id)).toHaveLength(1);
    // One answer on the pull request, with the review's text as the round's summary.
    expect(fakeRepo().comments.filter((c) => c.issueNumber === pr.number && c.body.startsWith(`@${WRITER} `)).map((c) => c.body)).toEqual([
      `@${WRITER} sending task \`${taskId}\` back to the coder with your review (3 line comments); the status comment follows it.`,
    ]);
    expect(record.context.implementFeedback.join('\n')).toContain('Three things.');
  });

  it("sends an allow-listed bot's comments to the coder, though the bot has no permission on the repository", async () => {
    const { taskId, pr } = await taskAtDeployGate('Greet in style');
    strayAnswers.splice(0);
    const styled = await review(pr, STYLE_BOT_TOKEN, STYLE_BOT, 'COMMENT', '', [{ line: 2, body: 'style: end with a full stop.' }]);

    const res = await h.send('pull_request_review', styled.payload);

    expect(res.status).toBe(200);
    await roundsDone(taskId, 2);
    expect(coderJobs.filter((j) => j.taskId === taskId && j.round === 2).map((j) => j.reviewComments)).toEqual([
      [{ file: 'greet.js', line: 2, body: 'style: end with a full stop.', commentId: styled.comments[0]!.id }],
    ]);
    await waitFor('the bot\'s thread answered', async () => (repliesTo(styled.comments[0]!.id).length > 0 ? true : undefined));
  });

  it("sends a writer's reply in a thread Stagegate declined back to the coder with the thread so far, answers it there, and takes no round from a thanks where it addressed", async () => {
    const { taskId, pr } = await taskAtDeployGate('Greet back');
    strayAnswers.splice(0);
    const first = await review(pr, WRITER_TOKEN, WRITER, 'COMMENT', '', [{ line: 2, body: 'Use single quotes here.' }, { line: 1, body: 'Add a doc comment.' }]);
    const [quotes, doc] = ['single quotes', 'doc comment'].map((b) => byId(first.comments, b)) as [FakeReviewComment, FakeReviewComment];
    await h.send('pull_request_review', first.payload);
    await roundsDone(taskId, 2);
    await waitFor('both threads answered', async () => (repliesTo(quotes.id).length === 1 && repliesTo(doc.id).length === 1 ? true : undefined));
    const writer = await clientAs(WRITER_TOKEN);
    const replyIn = async (to: FakeReviewComment, body: string) => {
      const { data } = await writer.rest.pulls.createReplyForReviewComment({ ...repo, pull_number: pr.number, comment_id: to.id, body });
      const delivery = pullRequestReviewCommentCreated({ ...repo, number: pr.number, head: pr.pull?.head ?? '', comment: { id: data.id, reviewId: data.pull_request_review_id ?? 0, user: WRITER, body, path: 'greet.js', line: to.line ?? null, inReplyTo: to.id } });
      return { id: data.id, res: await h.send('pull_request_review_comment', delivery) };
    };
    const jobsBefore = coderJobs.length;

    const thanks = await replyIn(doc, 'Thanks, looks good.');
    const pushback = await replyIn(quotes, 'Please switch anyway; the linter wants them.');

    expect(thanks.res.status).toBe(200);
    expect(pushback.res.status).toBe(200);
    const back = await roundsDone(taskId, 3);
    const jobs = coderJobs.slice(jobsBefore).filter((j) => j.taskId === taskId);
    const ourDecline = repliesTo(quotes.id)[0]!;
    expect(jobs.map((j) => j.reviewComments)).toEqual([
      [
        {
          file: 'greet.js',
          line: 2,
          commentId: pushback.id,
          body: `Please switch anyway; the linter wants them.\n\n(A reply in a thread; earlier in it:\n- ${WRITER}: Use single quotes here.\n- ${BOT}: ${ourDecline.body.split('\n')[1]})`,
        },
      ],
    ]);
    // The answer goes in the thread (GitHub takes replies to its first comment), which is then resolved.
    const commit = back.context.implementation?.commit ?? '';
    await waitFor('the reply answered and its thread resolved', async () => (repliesTo(quotes.id).length === 3 && quotes.resolvedBy !== undefined ? true : undefined));
    expect(repliesTo(quotes.id).map((c) => [c.user, c.body.split('\n').at(-1)])).toEqual([
      [BOT, `Not changed: ${DECLINE_REASON}`],
      [WRITER, 'Please switch anyway; the linter wants them.'],
      [BOT, `Addressed in ${commit}.`],
    ]);
    expect(quotes.resolvedBy).toBe(BOT);
    // Nothing more in the addressed thread than the writer's thanks.
    expect(repliesTo(doc.id).map((c) => c.user)).toEqual([BOT, WRITER]);
  });

  it('keeps a comment written while the coder works and sends it in a round of its own once the task is back at the gate', async () => {
    const { taskId, pr } = await taskAtDeployGate('Greet patiently');
    strayAnswers.splice(0);
    const release = hold(`${taskId}:2`);
    const first = await review(pr, WRITER_TOKEN, WRITER, 'REQUEST_CHANGES', 'First things.', [{ line: 1, body: 'Add a doc comment.' }]);
    await h.send('pull_request_review', first.payload);
    await waitFor('coder round 2 under way', async () => (coderJobs.some((j) => j.taskId === taskId && j.round === 2) ? true : undefined));
    const later = await review(pr, WRITER_TOKEN, WRITER, 'COMMENT', '', [{ line: 2, body: 'Also export a default.' }]);
    const laterComment = later.comments[0]!;

    const res = await h.send('pull_request_review', later.payload);
    const whileWorking = (await h.client.get(taskId)).state;
    release();

    expect(res.status).toBe(200);
    expect(whileWorking).toBe('implementing');
    expect(fakeRepo().comments.filter((c) => c.issueNumber === pr.number && c.body.startsWith(`@${WRITER} task`)).map((c) => c.body)).toEqual([
      `@${WRITER} task \`${taskId}\` is implementing: your 1 line comment will go to the coder with the next round, when the task is back at the review or deploy gate.`,
    ]);
    await roundsDone(taskId, 3);
    const rounds = coderJobs.filter((j) => j.taskId === taskId && j.round > 1).map((j) => j.reviewComments.map((c) => c.commentId));
    expect(rounds).toEqual([[first.comments[0]!.id], [laterComment.id]]);
    await waitFor('the kept comment answered', async () => (repliesTo(laterComment.id).length > 0 ? true : undefined));
    expect(repliesTo(first.comments[0]!.id)).toHaveLength(1);
    expect(repliesTo(laterComment.id)).toHaveLength(1);
  });

  it(`starts no coder round from a review after ${MAX_REVIEWER_ROUNDS} rounds: the task waits at its gate, its status comment says why, and a comment kept meanwhile is told it did not go`, async () => {
    const { issue, taskId, pr } = await taskAtDeployGate('Greet in a loop');
    strayAnswers.splice(0);
    let kept: FakeReviewComment | undefined;
    for (let round = 1; round <= MAX_REVIEWER_ROUNDS; round++) {
      const release = round === MAX_REVIEWER_ROUNDS ? hold(`${taskId}:${round + 1}`) : undefined;
      const r = await review(pr, WRITER_TOKEN, WRITER, 'REQUEST_CHANGES', `Round ${round} please.`, [{ line: 1, body: `Change ${round}.` }]);
      await h.send('pull_request_review', r.payload);
      if (release !== undefined) {
        // Written while the last round the reviews may start is at work: kept, then left with the limit reached.
        await waitFor('the last coder round under way', async () => (coderJobs.some((j) => j.taskId === taskId && j.round === round + 1) ? true : undefined));
        const meanwhile = await review(pr, WRITER_TOKEN, WRITER, 'COMMENT', '', [{ line: 3, body: 'Written while you worked.' }]);
        await h.send('pull_request_review', meanwhile.payload);
        kept = meanwhile.comments[0];
        release();
      }
      await roundsDone(taskId, round + 1);
    }
    const told = await waitFor('the writer told the kept comment did not go', async () =>
      fakeRepo().comments.find((c) => c.issueNumber === pr.number && c.body.includes('written while the coder worked did not go to it')),
    );
    expect(told.body).toBe(
      `@${WRITER}: 1 line comment written while the coder worked did not go to it: reviews of this pull request already started ${MAX_REVIEWER_ROUNDS} coder rounds for task \`${taskId}\` (at most ${MAX_REVIEWER_ROUNDS}). A person decides at the gate (\`/approve\`, or \`/reject <what to change>\`).`,
    );
    expect(coderJobs.flatMap((j) => j.reviewComments).some((c) => c.commentId === kept?.id)).toBe(false);
    expect(repliesTo(kept?.id ?? 0)).toEqual([]);
    const jobsBefore = coderJobs.length;
    const last = await review(pr, WRITER_TOKEN, WRITER, 'REQUEST_CHANGES', 'One more.', [{ line: 1, body: 'And another change.' }]);

    const res = await h.send('pull_request_review', last.payload);

    expect(res.status).toBe(200);
    const held = await waitFor('the loop breaker recorded', async () => {
      const r = await h.client.get(taskId);
      return r.context.reviewerRounds.note !== null ? r : undefined;
    });
    expect(held.state).toBe('awaitingDeployApproval');
    expect(held.context.reviewerRounds.used).toBe(MAX_REVIEWER_ROUNDS);
    expect(coderJobs.length).toBe(jobsBefore);
    const lastComment = last.comments[0]!;
    expect(repliesTo(lastComment.id)).toEqual([]);
    expect(fakeRepo().comments.filter((c) => c.issueNumber === pr.number && c.body.startsWith(`@${WRITER} reviews of this pull request already started ${MAX_REVIEWER_ROUNDS} coder rounds`))).toHaveLength(1);
    await waitFor('the status comment to say why the task waits', async () =>
      fakeRepo().comments.find((c) => c.issueNumber === issue.number && c.body.startsWith(statusMarker(taskId)) && c.body.includes('**Review comments:**') && c.body.includes('a person decides')),
    );
  });
});
