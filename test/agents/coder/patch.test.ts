import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StagegateError, type ErrorCode } from '../../../core/errors.js';
import { applyPatch, parsePatch, type AppliedPatch } from '../../../agents/coder/patch/index.js';
import { seekSequence } from '../../../agents/coder/patch/seek-sequence.js';
import { writeChanges } from '../../../agents/coder/patch/write-changes.js';

type Files = Record<string, string>;

const tempDirs: string[] = [];

afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempTree(files: Files = {}): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'stagegate-patch-'));
  tempDirs.push(dir);
  for (const [file, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), content);
  }
  return dir;
}

/** Every regular file under `dir` with its content; directories show only through their files. */
async function readTree(dir: string): Promise<Files> {
  const files: Files = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    files[path.relative(dir, full)] = await readFile(full, 'utf8');
  }
  return files;
}

function patch(...lines: string[]): string {
  return ['*** Begin Patch', ...lines, '*** End Patch', ''].join('\n');
}

async function refusal(attempt: Promise<unknown>): Promise<StagegateError> {
  try {
    await attempt;
  } catch (err) {
    if (err instanceof StagegateError) return err;
    throw err;
  }
  throw new Error('expected the patch to be refused, but it applied');
}

const nothing: AppliedPatch = { added: [], modified: [], deleted: [], moved: [] };

interface AppliedCase {
  name: string;
  files: Files;
  patch: string;
  expected: Files;
  applied: Partial<AppliedPatch>;
}

const appliedCases: AppliedCase[] = [
  {
    name: 'adds a file, creating the directories above it',
    files: {},
    patch: patch('*** Add File: docs/guide/intro.md', '+# Intro', '+', '+Hello'),
    expected: { 'docs/guide/intro.md': '# Intro\n\nHello\n' },
    applied: { added: ['docs/guide/intro.md'] },
  },
  {
    name: 'adds an empty file when the Add File section has no lines',
    files: {},
    patch: patch('*** Add File: empty.txt'),
    expected: { 'empty.txt': '' },
    applied: { added: ['empty.txt'] },
  },
  {
    name: 'overwrites an existing file with Add File',
    files: { 'notes.txt': 'old\n' },
    patch: patch('*** Add File: notes.txt', '+new'),
    expected: { 'notes.txt': 'new\n' },
    applied: { added: ['notes.txt'] },
  },
  {
    name: 'changes two separate places in one file, one chunk each',
    files: { 'list.txt': 'one\ntwo\nthree\nfour\nfive\n' },
    patch: patch('*** Update File: list.txt', '@@', ' one', '-two', '+TWO', '@@', ' four', '-five', '+FIVE'),
    expected: { 'list.txt': 'one\nTWO\nthree\nfour\nFIVE\n' },
    applied: { modified: ['list.txt'] },
  },
  {
    name: 'uses the @@ anchor line to choose between identical lines',
    files: { 'calc.py': 'def first():\n    return 1\n\ndef second():\n    return 1\n' },
    patch: patch('*** Update File: calc.py', '@@ def second():', '-    return 1', '+    return 2'),
    expected: { 'calc.py': 'def first():\n    return 1\n\ndef second():\n    return 2\n' },
    applied: { modified: ['calc.py'] },
  },
  {
    name: 'inserts lines between context lines',
    files: { 'a.txt': 'start\nend\n' },
    patch: patch('*** Update File: a.txt', '@@', ' start', '+middle', ' end'),
    expected: { 'a.txt': 'start\nmiddle\nend\n' },
    applied: { modified: ['a.txt'] },
  },
  {
    name: 'removes lines when a chunk adds none',
    files: { 'a.txt': 'keep\ndrop\nkeep too\n' },
    patch: patch('*** Update File: a.txt', '@@', ' keep', '-drop', ' keep too'),
    expected: { 'a.txt': 'keep\nkeep too\n' },
    applied: { modified: ['a.txt'] },
  },
  {
    name: 'appends the lines of a chunk that only adds to the end of the file',
    files: { 'log.txt': 'first\nsecond\n' },
    patch: patch('*** Update File: log.txt', '@@', '+third'),
    expected: { 'log.txt': 'first\nsecond\nthird\n' },
    applied: { modified: ['log.txt'] },
  },
  {
    name: 'replaces the last lines, not an earlier copy, when the chunk ends with *** End of File',
    files: { 'a.txt': 'same\nother\nsame\n' },
    patch: patch('*** Update File: a.txt', '@@', '-same', '+last', '*** End of File'),
    expected: { 'a.txt': 'same\nother\nlast\n' },
    applied: { modified: ['a.txt'] },
  },
  {
    name: 'renames a file into a new directory and changes its content on the way',
    files: { 'old/name.txt': 'old content\n', 'old/other.txt': 'stays\n' },
    patch: patch('*** Update File: old/name.txt', '*** Move to: new/dir/name.txt', '@@', '-old content', '+new content'),
    expected: { 'old/other.txt': 'stays\n', 'new/dir/name.txt': 'new content\n' },
    applied: { moved: [{ from: 'old/name.txt', to: 'new/dir/name.txt' }] },
  },
  {
    name: 'moves a file over an existing destination',
    files: { 'from.txt': 'mine\n', 'to.txt': 'theirs\n' },
    patch: patch('*** Update File: from.txt', '*** Move to: to.txt', '@@', ' mine', '+added'),
    expected: { 'to.txt': 'mine\nadded\n' },
    applied: { moved: [{ from: 'from.txt', to: 'to.txt' }] },
  },
  {
    name: 'keeps the file when Move to names the file itself',
    files: { 'a.txt': 'x\n' },
    patch: patch('*** Update File: a.txt', '*** Move to: ./a.txt', '@@', '-x', '+y'),
    expected: { 'a.txt': 'y\n' },
    applied: { modified: ['a.txt'] },
  },
  {
    name: 'deletes a file',
    files: { 'obsolete.txt': 'bye\n', 'keep.txt': 'hi\n' },
    patch: patch('*** Delete File: obsolete.txt'),
    expected: { 'keep.txt': 'hi\n' },
    applied: { deleted: ['obsolete.txt'] },
  },
  {
    name: 'runs operations in order, so an update sees the file an earlier add created',
    files: {},
    patch: patch('*** Add File: new.txt', '+draft', '*** Update File: new.txt', '@@', '-draft', '+final'),
    expected: { 'new.txt': 'final\n' },
    applied: { added: ['new.txt'], modified: ['new.txt'] },
  },
  {
    name: 'matches file lines that carry trailing whitespace the patch left out',
    files: { 'a.txt': 'alpha   \nbeta\t\n' },
    patch: patch('*** Update File: a.txt', '@@', '-alpha', '-beta', '+gamma'),
    expected: { 'a.txt': 'gamma\n' },
    applied: { modified: ['a.txt'] },
  },
  {
    name: 'matches file lines whose indentation differs from the patch',
    files: { 'a.py': '        value = 1\n' },
    patch: patch('*** Update File: a.py', '@@', '-value = 1', '+        value = 2'),
    expected: { 'a.py': '        value = 2\n' },
    applied: { modified: ['a.py'] },
  },
  {
    name: 'matches typographic dashes, quotes and non-breaking spaces written in ASCII',
    files: { 'a.md': 'range 1\u20132 \u201cquoted\u201d it\u2019s\u00a0here\n' },
    patch: patch('*** Update File: a.md', '@@', '-range 1-2 "quoted" it\'s here', '+replaced'),
    expected: { 'a.md': 'replaced\n' },
    applied: { modified: ['a.md'] },
  },
  {
    name: 'keeps the CRLF line endings of a CRLF file, new lines included',
    files: { 'win.txt': 'a\r\nb\r\nc\r\n' },
    patch: patch('*** Update File: win.txt', '@@', '-b', '+B', '+B2'),
    expected: { 'win.txt': 'a\r\nB\r\nB2\r\nc\r\n' },
    applied: { modified: ['win.txt'] },
  },
  {
    name: 'ends an updated file with a newline even when it had none',
    files: { 'a.txt': 'no newline at end' },
    patch: patch('*** Update File: a.txt', '@@', '-no newline at end', '+first', '+second'),
    expected: { 'a.txt': 'first\nsecond\n' },
    applied: { modified: ['a.txt'] },
  },
  {
    name: 'accepts markers and operation headers padded with whitespace',
    files: { 'a.txt': 'one\n' },
    patch: ' *** Begin Patch \n  *** Update File: a.txt  \n@@ \n-one\n+two\n*** End of File \n *** End Patch \n',
    expected: { 'a.txt': 'two\n' },
    applied: { modified: ['a.txt'] },
  },
  {
    name: "accepts a patch wrapped in a <<'EOF' heredoc",
    files: {},
    patch: "<<'EOF'\n*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\nEOF\n",
    expected: { 'a.txt': 'hi\n' },
    applied: { added: ['a.txt'] },
  },
  {
    name: 'accepts a patch written with CRLF line endings',
    files: { 'a.txt': 'one\n' },
    patch: '*** Begin Patch\r\n*** Update File: a.txt\r\n@@\r\n-one\r\n+two\r\n*** End Patch\r\n',
    expected: { 'a.txt': 'two\n' },
    applied: { modified: ['a.txt'] },
  },
  {
    name: 'reads an empty line inside a chunk as an empty context line',
    files: { 'a.txt': 'top\n\nbottom\n' },
    patch: patch('*** Update File: a.txt', '@@', ' top', '', '-bottom', '+BOTTOM'),
    expected: { 'a.txt': 'top\n\nBOTTOM\n' },
    applied: { modified: ['a.txt'] },
  },
];

interface RefusedCase {
  name: string;
  files: Files;
  patch: string;
  code: ErrorCode;
  message: string;
}

const refusedCases: RefusedCase[] = [
  {
    name: 'refuses an empty patch',
    files: { 'a.txt': 'stable\n' },
    patch: patch(),
    code: 'PATCH_INVALID',
    message: "invalid patch, line 2: expected at least one '*** Add File: PATH'",
  },
  {
    name: 'refuses text that does not start with *** Begin Patch',
    files: {},
    patch: 'diff --git a/x b/x\n',
    code: 'PATCH_INVALID',
    message: "invalid patch, line 1: expected '*** Begin Patch', got 'diff --git a/x b/x'",
  },
  {
    name: 'refuses a patch that does not end with *** End Patch',
    files: {},
    patch: '*** Begin Patch\n*** Add File: a.txt\n+x\n',
    code: 'PATCH_INVALID',
    message: "invalid patch, line 3: expected '*** End Patch' as the last line, got '+x'",
  },
  {
    name: 'refuses an unknown operation header',
    files: { 'a.txt': 'stable\n' },
    patch: patch('*** Frobnicate File: a.txt'),
    code: 'PATCH_INVALID',
    message: "invalid patch, line 2: expected '*** Add File: PATH', '*** Delete File: PATH' or '*** Update File: PATH', got '*** Frobnicate File: a.txt'",
  },
  {
    name: 'refuses an Update File section with no changes',
    files: { 'a.txt': 'stable\n' },
    patch: patch('*** Update File: a.txt'),
    code: 'PATCH_INVALID',
    message: "invalid patch, line 2: '*** Update File: a.txt' has no changes",
  },
  {
    name: 'refuses a second chunk that does not start with @@',
    files: { 'a.txt': 'one\ntwo\n' },
    patch: patch('*** Update File: a.txt', '@@', '-one', '+ONE', 'two'),
    code: 'PATCH_INVALID',
    message: "invalid patch, line 6: expected '@@' to start the next change to 'a.txt', got 'two'",
  },
  {
    name: 'refuses an @@ line with no change lines after it',
    files: { 'a.txt': 'one\n' },
    patch: patch('*** Update File: a.txt', '@@', '*** End of File'),
    code: 'PATCH_INVALID',
    message: "invalid patch, line 4: expected a line starting with ' ', '-' or '+' in the change to 'a.txt', got '*** End of File'",
  },
  {
    name: 'refuses a *** Move to: line without a path',
    files: { 'a.txt': 'one\n' },
    patch: patch('*** Update File: a.txt', '*** Move to: ', '@@', '-one', '+two'),
    code: 'PATCH_INVALID',
    message: "invalid patch, line 3: expected a path after '*** Move to:'",
  },
  {
    name: 'refuses a chunk whose lines are not in the file, showing the lines it looked for',
    files: { 'a.txt': 'one\ntwo\nthree\n' },
    patch: patch('*** Update File: a.txt', '@@', '-one', '+ONE', '@@', ' two', '-missing'),
    code: 'PATCH_REJECTED',
    message: "cannot apply chunk 2 of 2 to 'a.txt': these lines were not found after line 1:\n  | two\n  | missing",
  },
  {
    name: 'refuses an @@ anchor line that is not in the file',
    files: { 'a.txt': 'one\n' },
    patch: patch('*** Update File: a.txt', '@@ def absent():', '-one', '+two'),
    code: 'PATCH_REJECTED',
    message: "cannot apply chunk 1 of 1 to 'a.txt': the '@@ def absent():' anchor line was not found",
  },
  {
    name: 'refuses an *** End of File chunk whose lines are not the last ones',
    files: { 'a.txt': 'one\ntwo\n' },
    patch: patch('*** Update File: a.txt', '@@', '-one', '+ONE', '*** End of File'),
    code: 'PATCH_REJECTED',
    message: "cannot apply chunk 1 of 1 to 'a.txt': these lines were not found at the end of the file:\n  | one",
  },
  {
    name: 'refuses to update a file that does not exist',
    files: { 'a.txt': 'stable\n' },
    patch: patch('*** Update File: missing.txt', '@@', '-old', '+new'),
    code: 'PATCH_REJECTED',
    message: "cannot update 'missing.txt': no such file",
  },
  {
    name: 'refuses to delete a file that does not exist',
    files: { 'a.txt': 'stable\n' },
    patch: patch('*** Delete File: missing.txt'),
    code: 'PATCH_REJECTED',
    message: "cannot delete 'missing.txt': no such file",
  },
  {
    name: 'refuses to delete a directory',
    files: { 'dir/a.txt': 'stable\n' },
    patch: patch('*** Delete File: dir'),
    code: 'PATCH_REJECTED',
    message: "cannot delete 'dir': it is a directory, and only files can be patched",
  },
  {
    name: 'refuses to add a file where a directory is',
    files: { 'dir/a.txt': 'stable\n' },
    patch: patch('*** Add File: dir', '+x'),
    code: 'PATCH_REJECTED',
    message: "cannot add 'dir': a directory is in the way",
  },
  {
    name: 'refuses to add a file below a path that is a file',
    files: { 'a.txt': 'stable\n' },
    patch: patch('*** Add File: a.txt/b.txt', '+x'),
    code: 'PATCH_REJECTED',
    message: "cannot add 'a.txt/b.txt': 'a.txt' is a file, not a directory",
  },
  {
    name: 'refuses an absolute path',
    files: { 'a.txt': 'stable\n' },
    patch: patch('*** Add File: /tmp/stagegate-patch-test-absolute.txt', '+x'),
    code: 'PATH_ESCAPE',
    message: "refused path '/tmp/stagegate-patch-test-absolute.txt': it is an absolute path",
  },
  {
    name: 'refuses a path that climbs out with ..',
    files: { 'a.txt': 'stable\n' },
    patch: patch('*** Add File: ../outside.txt', '+x'),
    code: 'PATH_ESCAPE',
    message: "refused path '../outside.txt': it climbs out of the working directory",
  },
  {
    name: 'refuses a path that climbs out with .. after going down',
    files: { 'sub/a.txt': 'stable\n' },
    patch: patch('*** Update File: sub/../../a.txt', '@@', '-stable', '+changed'),
    code: 'PATH_ESCAPE',
    message: "refused path 'sub/../../a.txt': it climbs out of the working directory",
  },
  {
    name: 'refuses a move whose destination climbs out',
    files: { 'a.txt': 'stable\n' },
    patch: patch('*** Update File: a.txt', '*** Move to: ../a.txt', '@@', '-stable', '+moved'),
    code: 'PATH_ESCAPE',
    message: "refused path '../a.txt'",
  },
];

describe('applyPatch', () => {
  it.each(appliedCases)('$name', async ({ files, patch: text, expected, applied }) => {
    const dir = await tempTree(files);

    const result = await applyPatch(text, { cwd: dir });

    expect(await readTree(dir)).toEqual(expected);
    expect(result).toEqual({ ...nothing, ...applied });
  });

  it.each(refusedCases)('$name, changing nothing', async ({ files, patch: text, code, message }) => {
    const dir = await tempTree(files);

    const error = await refusal(applyPatch(text, { cwd: dir }));

    expect(error.code).toBe(code);
    expect(error.message).toContain(message);
    expect(await readTree(dir)).toEqual(files);
  });

  it('leaves the first file untouched when the second operation fails', async () => {
    const dir = await tempTree({ 'first.txt': 'original\n' });

    const error = await refusal(
      applyPatch(
        patch(
          '*** Update File: first.txt',
          '@@',
          '-original',
          '+changed',
          '*** Add File: created/new.txt',
          '+new',
          '*** Update File: missing.txt',
          '@@',
          '-old',
          '+new',
        ),
        { cwd: dir },
      ),
    );

    expect(error.code).toBe('PATCH_REJECTED');
    expect(await readTree(dir)).toEqual({ 'first.txt': 'original\n' });
    expect(await readdir(dir)).toEqual(['first.txt']);
  });

  it('writes nothing when a later operation leaves the working directory', async () => {
    const dir = await tempTree({ 'first.txt': 'original\n' });

    const error = await refusal(
      applyPatch(patch('*** Delete File: first.txt', '*** Add File: ../escaped.txt', '+x'), { cwd: dir }),
    );

    expect(error.code).toBe('PATH_ESCAPE');
    expect(await readTree(dir)).toEqual({ 'first.txt': 'original\n' });
  });

  it('refuses a path through a symbolic link to a directory outside, writing nothing there', async () => {
    const outside = await tempTree();
    const dir = await tempTree();
    await symlink(outside, path.join(dir, 'link'));

    const error = await refusal(applyPatch(patch('*** Add File: link/evil.txt', '+x'), { cwd: dir }));

    expect(error.code).toBe('PATH_ESCAPE');
    expect(error.message).toContain("refused path 'link/evil.txt': it leads outside the working directory");
    expect(await readdir(outside)).toEqual([]);
  });

  it('refuses to update a file through a symbolic link that points outside', async () => {
    const outside = await tempTree({ 'secret.txt': 'secret\n' });
    const dir = await tempTree();
    await symlink(path.join(outside, 'secret.txt'), path.join(dir, 'secret.txt'));

    const error = await refusal(
      applyPatch(patch('*** Update File: secret.txt', '@@', '-secret', '+leaked'), { cwd: dir }),
    );

    expect(error.code).toBe('PATH_ESCAPE');
    expect(await readTree(outside)).toEqual({ 'secret.txt': 'secret\n' });
  });

  it('refuses a dangling symbolic link whose target would be created outside', async () => {
    const outside = await tempTree();
    const dir = await tempTree();
    await symlink(path.join(outside, 'created.txt'), path.join(dir, 'dangling.txt'));

    const error = await refusal(applyPatch(patch('*** Add File: dangling.txt', '+x'), { cwd: dir }));

    expect(error.code).toBe('PATH_ESCAPE');
    expect(await readdir(outside)).toEqual([]);
  });

  it('writes through a symbolic link that stays inside the working directory', async () => {
    const dir = await tempTree({ 'real/a.txt': 'one\n' });
    await symlink('real', path.join(dir, 'alias'));

    const result = await applyPatch(patch('*** Update File: alias/a.txt', '@@', '-one', '+two'), { cwd: dir });

    expect(result.modified).toEqual(['alias/a.txt']);
    expect(await readFile(path.join(dir, 'real/a.txt'), 'utf8')).toBe('two\n');
  });

  it('refuses to delete a symbolic link rather than guess between link and target', async () => {
    const dir = await tempTree({ 'a.txt': 'one\n' });
    await symlink('a.txt', path.join(dir, 'link.txt'));

    const error = await refusal(applyPatch(patch('*** Delete File: link.txt'), { cwd: dir }));

    expect(error.code).toBe('PATCH_REJECTED');
    expect(error.message).toBe("cannot delete 'link.txt': it is a symbolic link; only regular files are deleted or moved");
  });

  it('refuses a path caught in a symbolic link loop', async () => {
    const dir = await tempTree();
    await symlink('loop', path.join(dir, 'loop'));

    const error = await refusal(applyPatch(patch('*** Add File: loop/a.txt', '+x'), { cwd: dir }));

    expect(error.code).toBe('PATCH_REJECTED');
    expect(error.message).toBe("cannot resolve 'loop/a.txt': more than 40 symbolic links");
  });

  it('refuses to update a file that is not UTF-8 text', async () => {
    const dir = await tempTree();
    await writeFile(path.join(dir, 'image.bin'), Buffer.from([0xff, 0xfe, 0x00, 0x0a]));

    const error = await refusal(applyPatch(patch('*** Update File: image.bin', '@@', '+x'), { cwd: dir }));

    expect(error.message).toBe("cannot update 'image.bin': it is not UTF-8 text");
  });

  it('refuses a working directory that does not exist', async () => {
    const dir = path.join(await tempTree(), 'absent');

    const error = await refusal(applyPatch(patch('*** Add File: a.txt', '+x'), { cwd: dir }));

    expect(error.code).toBe('PATCH_REJECTED');
    expect(error.message).toBe(`cannot apply a patch in '${dir}': it is not a directory`);
  });
});

describe('writeChanges', () => {
  it('undoes the writes already made when a later one fails', async () => {
    const dir = await tempTree({ 'a.txt': 'old\n', 'gone.txt': 'kept\n' });
    const at = (file: string): string => path.join(dir, file);

    const error = await refusal(
      writeChanges([
        { type: 'write', path: at('a.txt'), display: 'a.txt', content: 'new\n' },
        { type: 'remove', path: at('gone.txt'), display: 'gone.txt' },
        { type: 'write', path: at('made/b.txt'), display: 'made/b.txt', content: 'b\n' },
        // Planning would have refused this one; here it stands for a disk that fails mid-way.
        { type: 'write', path: at('a.txt/c.txt'), display: 'a.txt/c.txt', content: 'c\n' },
      ]),
    );

    expect(error.code).toBe('PATCH_REJECTED');
    expect(error.message).toMatch(/^could not write 'a\.txt\/c\.txt': .*; no file was changed$/);
    expect(await readTree(dir)).toEqual({ 'a.txt': 'old\n', 'gone.txt': 'kept\n' });
    expect(await readdir(dir)).toEqual(['a.txt', 'gone.txt']);
  });
});

describe('parsePatch', () => {
  it('returns each operation in order, with anchors, old and new lines, and end-of-file marks', () => {
    const operations = parsePatch(
      patch(
        '*** Add File: a.txt',
        '+hello',
        '*** Delete File: b.txt',
        '*** Update File: c.py',
        '*** Move to: d.py',
        '@@ class C:',
        ' keep',
        '-old',
        '+new',
        '@@',
        '+tail',
        '*** End of File',
      ),
    );

    expect(operations).toEqual([
      { type: 'add', path: 'a.txt', contents: 'hello\n' },
      { type: 'delete', path: 'b.txt' },
      {
        type: 'update',
        path: 'c.py',
        moveTo: 'd.py',
        chunks: [
          { context: 'class C:', oldLines: ['keep', 'old'], newLines: ['keep', 'new'], isEndOfFile: false },
          { context: undefined, oldLines: [], newLines: ['tail'], isEndOfFile: true },
        ],
      },
    ]);
  });

  it('counts line numbers from the original text, leading blank lines included', () => {
    expect(() => parsePatch('\n\n*** Begin Patch\n*** Bogus\n*** End Patch\n')).toThrow(
      "invalid patch, line 4: expected '*** Add File: PATH', '*** Delete File: PATH' or '*** Update File: PATH', got '*** Bogus'",
    );
  });
});

describe('seekSequence', () => {
  const cases: Array<{ name: string; lines: string[]; pattern: string[]; start?: number; atEnd?: boolean; found: number | undefined }> = [
    { name: 'finds an exact match', lines: ['a', 'b', 'c'], pattern: ['b', 'c'], found: 1 },
    { name: 'ignores trailing whitespace', lines: ['a  ', 'b\t'], pattern: ['a', 'b'], found: 0 },
    { name: 'ignores surrounding whitespace', lines: ['  a  ', '\tb'], pattern: ['a', 'b'], found: 0 },
    { name: 'folds Unicode dashes, quotes and spaces', lines: ['x \u2014 \u2018y\u2019\u00a0z'], pattern: ["x - 'y' z"], found: 0 },
    { name: 'prefers a later exact match to an earlier loose one', lines: ['a ', 'a'], pattern: ['a'], found: 1 },
    { name: 'searches only from the start index', lines: ['a', 'b', 'a'], pattern: ['a'], start: 1, found: 2 },
    { name: 'anchors an end-of-file pattern at the end', lines: ['a', 'b', 'a'], pattern: ['a'], atEnd: true, found: 2 },
    { name: 'does not fall back when the end of the file differs', lines: ['a', 'b'], pattern: ['a'], atEnd: true, found: undefined },
    { name: 'reports a missing pattern as undefined', lines: ['a'], pattern: ['z'], found: undefined },
    { name: 'reports a pattern longer than the file as undefined', lines: ['a'], pattern: ['a', 'a'], found: undefined },
    { name: 'matches an empty pattern at the start index', lines: ['a', 'b'], pattern: [], start: 1, found: 1 },
  ];

  it.each(cases)('$name', ({ lines, pattern, start = 0, atEnd = false, found }) => {
    expect(seekSequence(lines, pattern, start, atEnd)).toBe(found);
  });
});
