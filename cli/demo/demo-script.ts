/**
 * What the scripted model answers in the demo, per agent role, in order: a plan; a coder that
 * works in turns with its tools (plans, reads the file, runs the failing test, patches, reruns,
 * finishes); a review asking for one more change; a second coder round that addresses it; and
 * an approving review, each review followed by its security review, which finds nothing. Each
 * coder answer is one model turn; the tool outputs are real, produced by the coder's tools on the
 * sample repository.
 */
import type { SecurityReply } from '../../agents/reviewer/output.js';
import type { Plan, Verdict } from '../../core/bus/messages.js';
import type { Answer, OutputItem, Script } from '../../core/scripted-model/index.js';

const plan: Plan = {
  summary: 'Add slugify(title) to src/textkit.js so the existing test passes.',
  steps: [
    { title: 'Implement slugify', detail: 'In src/textkit.js, export slugify(text): lower-case, runs of non-alphanumerics become one dash, trim dashes at both ends.' },
    { title: 'Run the tests', detail: '`npm test` must pass, including the existing slugify test.' },
  ],
  filesToTouch: ['src/textkit.js'],
  risks: ['Titles with accented letters could lose those letters entirely.'],
  acceptanceChecks: ['npm test passes', "slugify('Hello World') === 'hello-world'"],
};

/** The patch that adds slugify() to the sample repository; tests reuse it. */
export const SLUGIFY_PATCH = String.raw`*** Begin Patch
*** Update File: src/textkit.js
@@
 export function capitalize(text) {
   return text.charAt(0).toUpperCase() + text.slice(1);
 }
+
+export function slugify(text) {
+  return text
+    .toLowerCase()
+    .replace(/[^a-z0-9]+/g, '-')
+    .replace(/^-+|-+$/g, '');
+}
*** End Patch`;

const changesRequested: Verdict = {
  decision: 'request_changes',
  summary: 'slugify works for ASCII titles, but accented letters are dropped: "Crème brûlée" becomes "cr-me-br-l-e".',
  comments: [{ file: 'src/textkit.js', line: 6, body: 'Fold accents before replacing (normalize NFKD and strip combining marks), and add a test for it.' }],
};

const secondPatch = String.raw`*** Begin Patch
*** Update File: src/textkit.js
@@ export function slugify(text) {
   return text
+    .normalize('NFKD')
+    .replace(/[\u0300-\u036f]/g, '')
     .toLowerCase()
*** Update File: test/textkit.test.js
@@
   assert.equal(slugify('  Stagegate: plan, build & ship!  '), 'stagegate-plan-build-ship');
 });
+
+test('slugify folds accents', () => {
+  assert.equal(slugify('Crème brûlée'), 'creme-brulee');
+});
*** End Patch`;

const approved: Verdict = {
  decision: 'approve',
  summary: 'slugify handles ASCII and accented titles, with tests for both; the suite passes.',
  comments: [],
};

const securityReview: SecurityReply = {
  summary: 'slugify only transforms strings in memory: no input reaches a shell, a query or the file system.',
  findings: [],
};

/** One model turn: optional reasoning (carried to the next request as encrypted content), a note, tool calls. */
type ToolCall = [name: string, args: Record<string, unknown>];

function turn(id: string, note: string, calls: ToolCall[]): Answer {
  const output: OutputItem[] = [
    { type: 'reasoning', id: `rs_${id}`, summary: [{ type: 'summary_text', text: note }], encrypted_content: `enc:${id}:${Buffer.from(note).toString('base64')}` },
    { type: 'message', id: `msg_${id}`, status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: note, annotations: [] }] },
    ...calls.map(([name, args], i): OutputItem => ({
      type: 'function_call',
      id: `fc_${id}_${i}`,
      call_id: `call_${id}_${i}`,
      name,
      arguments: JSON.stringify(args),
      status: 'completed',
    })),
  ];
  return { output };
}

const read = (path: string): ToolCall => ['read_file', { path, startLine: null, endLine: null }];
const shell = (command: string[]): ToolCall => ['shell', { command, workdir: null, timeoutMs: null }];

const firstRound: Answer[] = [
  turn('1a', 'The test imports slugify from src/textkit.js; reading the module first.', [
    [
      'update_plan',
      {
        steps: [
          { step: 'Read src/textkit.js and its test', status: 'in_progress' },
          { step: 'Add slugify(text)', status: 'pending' },
          { step: 'Run npm test', status: 'pending' },
        ],
      },
    ],
    read('src/textkit.js'),
  ]),
  turn('1b', 'Only capitalize exists. Running the tests to see the failure.', [shell(['npm', 'test'])]),
  turn('1c', 'slugify is missing, as expected. Adding it below capitalize.', [
    [
      'update_plan',
      {
        steps: [
          { step: 'Read src/textkit.js and its test', status: 'completed' },
          { step: 'Add slugify(text)', status: 'in_progress' },
          { step: 'Run npm test', status: 'pending' },
        ],
      },
    ],
    ['apply_patch', { patch: SLUGIFY_PATCH }],
  ]),
  turn('1d', 'Patched; running the tests again.', [shell(['npm', 'test'])]),
  turn('1e', 'All tests pass.', [['finish', { summary: 'Added slugify(text) to src/textkit.js: lower-case, non-alphanumeric runs become one dash, no dash at either end. npm test passes.' }]]),
];

const secondRound: Answer[] = [
  turn('2a', 'The reviewer wants accents folded. Reading the current slugify.', [read('src/textkit.js')]),
  turn('2b', 'Normalising to NFKD and stripping combining marks before the replace; adding a test.', [['apply_patch', { patch: secondPatch }]]),
  turn('2c', 'Running the tests with the new case.', [shell(['npm', 'test'])]),
  turn('2d', 'The suite passes, including the accent test.', [['finish', { summary: 'slugify now folds accents (NFKD, combining marks removed) before slugging; added a test for "Crème brûlée".' }]]),
];

/** Coder answers per round, for tests that check the requests of each round. */
export const DEMO_CODER_TURNS = { firstRound: firstRound.length, secondRound: secondRound.length };

export const DEMO_SCRIPT: Script = {
  answers: {
    planner: [{ json: plan }],
    coder: [...firstRound, ...secondRound],
    // Each review is two calls: the verdict, then the security review.
    reviewer: [{ json: changesRequested }, { json: securityReview }, { json: approved }, { json: securityReview }],
  },
};
