import { resolve } from 'node:path';

/** Local paths are made absolute, since workers clone from wherever they run; URLs stay as given. */
export function normaliseRepo(repo: string): string {
  return /^[a-z+]+:\/\/|^[^/]+@[^/]+:/i.test(repo) ? repo : resolve(repo);
}
