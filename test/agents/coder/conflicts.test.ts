/** Reading conflict hunks from the text git leaves in a file. */
import { describe, expect, it } from 'vitest';
import { describeConflictPlaces, markerLines, parseConflictHunks, renderConflictHunks } from '../../../agents/coder/conflicts.js';

const TWO = [
  'line 1',
  '<<<<<<< HEAD',
  'export const greeting = "hi";',
  '=======',
  'export const greeting = "hello";',
  '>>>>>>> origin/main',
  'middle',
  '<<<<<<< HEAD',
  'a',
  '||||||| merged common ancestors',
  'base',
  '=======',
  'b',
  'c',
  '>>>>>>> origin/main',
  '',
].join('\n');

describe('conflict hunks', () => {
  it('reads each hunk with its lines and both sides, leaving out the common ancestor of diff3 markers', () => {
    expect(parseConflictHunks(TWO)).toEqual([
      { startLine: 2, endLine: 6, ours: ['export const greeting = "hi";'], theirs: ['export const greeting = "hello";'] },
      { startLine: 8, endLine: 15, ours: ['a'], theirs: ['b', 'c'] },
    ]);
  });

  it('finds nothing in a resolved file, even one with a separator-like line inside a larger text', () => {
    expect(parseConflictHunks('const a = 1;\n// ======== not a marker\n')).toEqual([]);
    expect(markerLines('const a = 1;\n// ======== not a marker\n')).toEqual([]);
  });

  it('names the lines of markers left behind, and an unclosed hunk up to the end of the file', () => {
    expect(markerLines('ok\n<<<<<<< HEAD\nx\n=======\ny\n')).toEqual([2, 4]);
    expect(describeConflictPlaces([{ path: 'a.ts', hunks: [{ startLine: 4, endLine: 4, ours: [], theirs: [] }] }])).toBe('a.ts (line 4)');
    expect(parseConflictHunks('ok\n<<<<<<< HEAD\nx\n=======\ny')).toEqual([{ startLine: 2, endLine: 5, ours: ['x'], theirs: ['y'] }]);
  });

  it('describes where the conflicts are and shows both sides of each hunk', () => {
    const files = [{ path: 'src/greeting.js', hunks: parseConflictHunks(TWO) }, { path: 'logo.png', hunks: [] }];
    expect(describeConflictPlaces(files)).toBe('src/greeting.js (lines 2-6, 8-15); logo.png');
    const text = renderConflictHunks(files);
    expect(text).toContain('### src/greeting.js lines 2-6\nOn the branch:\n```\nexport const greeting = "hi";\n```\nOn the base:\n```\nexport const greeting = "hello";\n```');
    expect(text).toContain('### logo.png\n(conflicted without text markers');
  });
});
