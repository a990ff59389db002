/**
 * A KV entry read with its revision and written back only if nobody wrote in between: the
 * compare-and-set every store in Stagegate is built on (task records, channel claims). The
 * loser of a race gets WriteConflict, re-reads, and decides again.
 */
import type { KV } from '@nats-io/kv';
import type { z } from 'zod';
import { parseJsonAt } from '../parse.js';

export class WriteConflict extends Error {
  override name = 'WriteConflict';
}

export interface Versioned<T> {
  value: T;
  /** Undefined when there is no entry yet: the next write creates it. */
  revision: number | undefined;
}

export interface VersionedKv<T> {
  load(key: string): Promise<Versioned<T | undefined>>;
  /** Writes if the entry is still at `basedOn.revision`; throws WriteConflict otherwise. */
  save(key: string, value: T, basedOn: { revision: number | undefined }): Promise<Versioned<T>>;
}

/** `describe(key)` names the entry in errors: "task t-1", "GitHub status comment of task t-1". */
export function versionedKv<S extends z.ZodType>(kv: KV, schema: S, describe: (key: string) => string): VersionedKv<z.infer<S>> {
  return {
    async load(key) {
      const entry = await kv.get(key);
      if (entry === null || entry.operation !== 'PUT') return { value: undefined, revision: undefined };
      return { value: parseJsonAt(schema, entry.string(), describe(key)), revision: entry.revision };
    },
    async save(key, value, basedOn) {
      const data = JSON.stringify(value);
      try {
        const revision = basedOn.revision === undefined ? await kv.create(key, data) : await kv.update(key, data, basedOn.revision);
        return { value, revision };
      } catch (err) {
        if (err instanceof Error && /wrong last sequence|key exists/i.test(err.message)) {
          throw new WriteConflict(`${describe(key)} was written by someone else`, { cause: err });
        }
        throw err;
      }
    },
  };
}

const MAX_CONFLICT_RETRIES = 50;

/** Runs a read-decide-write step again while another process keeps writing in between. */
export async function retryOnConflict<T>(step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (err) {
      if (!(err instanceof WriteConflict) || attempt >= MAX_CONFLICT_RETRIES) throw err;
    }
  }
}
