/**
 * What the scripted model answers in the demo, per agent role, in order: a plan, a first patch,
 * a review asking for one more change, the follow-up patch, and an approving review.
 */
import type { Plan, Verdict } from '../../core/bus/messages.js';
import type { Script } from '../../core/scripted-model/index.js';

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

const firstPatch = String.raw`*** Begin Patch
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

export const DEMO_SCRIPT: Script = {
  answers: {
    planner: [{ json: plan }],
    coder: [
      { json: { summary: 'Added slugify(text) to src/textkit.js.', patch: firstPatch } },
      { json: { summary: 'slugify now folds accents; added a test for it.', patch: secondPatch } },
    ],
    reviewer: [{ json: changesRequested }, { json: approved }],
  },
};
