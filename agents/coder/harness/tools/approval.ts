/**
 * Which commands need a human's approval before they run (`requireApproval` in the config).
 * A pattern is one of:
 *
 * - `/regex/flags` — a JavaScript regular expression, tested against the whole command text
 *   (a string as written; an argv as `formatArgv` shows it). `/\bcurl\b|\bwget\b/` asks before
 *   any curl or wget.
 * - anything else — a command prefix, in words: it matches when a command begins with those
 *   words. Every command inside the text counts: the text is cut at `;` `&&` `||` `|` `&`
 *   newlines, parentheses, backquotes, `$(` and quotes, and leading `VAR=value` assignments and
 *   the wrappers `sudo env command exec nohup time xargs` are skipped; a program given by path
 *   counts by its name. So `git push` matches `git push origin main`, `cd app && git push` and
 *   `sh -c 'git push'` (and `/usr/bin/git push`), but neither `git pushx` nor `git status`.
 *
 * This is a gate for people, not a security boundary — the sandbox is that — and it errs
 * toward asking: quoted text that reads like a command (`echo "git push"`) matches too, and a
 * regex pattern that does not compile matches every command.
 */
import { StagegateError, errorMessage } from '../../../../core/errors.js';
import type { Logger } from '../../../../core/log.js';

const WRAPPERS = new Set(['sudo', 'env', 'command', 'exec', 'nohup', 'time', 'xargs']);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;
const SEPARATORS = /&&|\|\||\$\(|[;&|()`\n'"]/;

/** The first pattern the command matches, or undefined when it may run without asking. */
export function findApprovalPattern(command: string, patterns: readonly string[], log: Logger): string | undefined {
  const starts = commandStarts(command);
  return patterns.find((pattern) => {
    const regex = regexPattern(pattern);
    if (regex === undefined) return starts.some((words) => startsWithWords(words, pattern.trim().split(/\s+/)));
    if (regex instanceof RegExp) return regex.test(command);
    log.warn({ pattern, reason: regex.error }, 'requireApproval pattern is not a valid regular expression; every command needs approval');
    return true;
  });
}

/** Throws CONFIG_INVALID naming the first pattern that is an invalid regular expression. */
export function validateApprovalPatterns(patterns: readonly string[]): void {
  for (const pattern of patterns) {
    const regex = regexPattern(pattern);
    if (regex !== undefined && !(regex instanceof RegExp)) {
      throw new StagegateError('CONFIG_INVALID', `requireApproval pattern ${pattern} is not a valid regular expression: ${regex.error}`, {
        details: { pattern },
      });
    }
  }
}

/** undefined for a prefix pattern; the RegExp, or why it is none, for a `/regex/flags` pattern. */
function regexPattern(pattern: string): RegExp | { error: string } | undefined {
  const parts = /^\/(.+)\/([a-z]*)$/s.exec(pattern.trim());
  if (parts === null) return undefined;
  try {
    return new RegExp(parts[1] ?? '', parts[2]);
  } catch (err) {
    return { error: errorMessage(err) };
  }
}

/** The words of each command inside the text, from the program name on. */
function commandStarts(command: string): string[][] {
  return command.split(SEPARATORS).map((segment) => {
    const words = segment.trim().split(/\s+/).filter((word) => word !== '');
    let first = 0;
    while (first < words.length && (ASSIGNMENT.test(words[first] ?? '') || WRAPPERS.has(words[first] ?? ''))) first += 1;
    return words.slice(first);
  });
}

function startsWithWords(words: readonly string[], prefix: readonly string[]): boolean {
  if (prefix.length === 0 || words.length < prefix.length) return false;
  return prefix.every((word, i) => {
    const actual = words[i] ?? '';
    return i === 0 && !word.includes('/') ? actual.split('/').at(-1) === word : actual === word;
  });
}
