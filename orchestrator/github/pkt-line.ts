/**
 * Git's pkt-line framing, as far as the git gateway reads and writes it: a four-hex-digit length
 * (itself included) before each line, `0000` for a flush. Pure: bytes in, values out.
 *
 * A receive-pack request (what `git push` posts) is: the ref update commands
 * `<old> <new> <ref>`, the first one followed by NUL and the client's capabilities; a flush;
 * push options and another flush when the client negotiated `push-options`; then the pack.
 */
export const ZERO_SHA = '0000000000000000000000000000000000000000';
const FLUSH = Buffer.from('0000', 'latin1');

export interface RefUpdate {
  before: string;
  after: string;
  ref: string;
}

export interface ReceivePackRequest {
  updates: RefUpdate[];
  capabilities: string[];
  /** The bytes after the commands (and push options): the pack, empty when only deleting. */
  pack: Buffer;
}

export class PktLineError extends Error {
  override name = 'PktLineError';
}

interface Line {
  /** Null for a flush (or delimiter) packet. */
  data: Buffer | null;
  end: number;
}

function readLine(buf: Buffer, at: number): Line {
  if (at + 4 > buf.length) throw new PktLineError('truncated pkt-line length');
  const hex = buf.subarray(at, at + 4).toString('latin1');
  if (!/^[0-9a-f]{4}$/.test(hex)) throw new PktLineError(`bad pkt-line length '${hex}'`);
  const length = Number.parseInt(hex, 16);
  if (length < 4) return { data: null, end: at + 4 };
  if (at + length > buf.length) throw new PktLineError('truncated pkt-line');
  return { data: buf.subarray(at + 4, at + length), end: at + length };
}

export function encodeLine(text: string | Buffer): Buffer {
  const data = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  if (data.length + 4 > 65520) throw new PktLineError('pkt-line too long');
  return Buffer.concat([Buffer.from((data.length + 4).toString(16).padStart(4, '0'), 'latin1'), data]);
}

export function flush(): Buffer {
  return Buffer.from(FLUSH);
}

/** Splits a receive-pack request body (already un-gzipped) into its commands, capabilities and pack. */
export function parseReceivePackRequest(body: Buffer): ReceivePackRequest {
  const updates: RefUpdate[] = [];
  let capabilities: string[] = [];
  let at = 0;
  for (;;) {
    const line = readLine(body, at);
    at = line.end;
    if (line.data === null) break;
    const text = line.data.toString('utf8').replace(/\n$/, '');
    if (text.startsWith('shallow ')) continue;
    const [command = '', caps] = splitOnce(text, '\0');
    if (caps !== undefined && updates.length === 0) capabilities = caps.split(' ').filter(Boolean);
    const match = /^([0-9a-f]{40}) ([0-9a-f]{40}) (\S+)$/.exec(command);
    if (match === null) throw new PktLineError(`not a ref update command: '${command.slice(0, 120)}'`);
    updates.push({ before: match[1] ?? '', after: match[2] ?? '', ref: match[3] ?? '' });
  }
  if (updates.length > 0 && capabilities.includes('push-options')) {
    for (;;) {
      const line = readLine(body, at);
      at = line.end;
      if (line.data === null) break;
    }
  }
  return { updates, capabilities, pack: body.subarray(at) };
}

/**
 * The receive-pack ref advertisement (`info/refs?service=git-receive-pack`) with capabilities
 * added to its first ref line: the gateway adds `no-thin`, so a push's pack holds every object
 * its deltas need and can be read without the repository.
 */
export function addCapabilities(advertisement: Buffer, extra: readonly string[]): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  let added = false;
  while (at < advertisement.length) {
    const line = readLine(advertisement, at);
    const raw = advertisement.subarray(at, line.end);
    at = line.end;
    if (added || line.data === null) {
      out.push(raw);
      continue;
    }
    const text = line.data.toString('utf8');
    const nul = text.indexOf('\0');
    if (text.startsWith('#') || nul < 0) {
      out.push(raw);
      continue;
    }
    const newline = text.endsWith('\n') ? '\n' : '';
    const caps = text.slice(nul + 1).replace(/\n$/, '').split(' ').filter(Boolean);
    const merged = [...caps, ...extra.filter((c) => !caps.includes(c))];
    out.push(encodeLine(`${text.slice(0, nul)}\0${merged.join(' ')}${newline}`));
    added = true;
  }
  if (!added) throw new PktLineError('no ref line with capabilities in the receive-pack advertisement');
  return Buffer.concat(out);
}

/**
 * A receive-pack answer refusing every update, as git's report-status (in side-band 1 when the
 * client asked for it): the client prints `! [remote rejected] <ref> (<reason>)` and fails.
 */
export function rejectionReport(updates: ReadonlyArray<{ ref: string; reason: string }>, capabilities: readonly string[], message?: string): Buffer {
  const report = Buffer.concat([encodeLine('unpack ok\n'), ...updates.map((u) => encodeLine(`ng ${u.ref} ${u.reason.replace(/\s+/g, ' ')}\n`)), flush()]);
  const sideBand = capabilities.includes('side-band-64k') ? 65515 : capabilities.includes('side-band') ? 995 : 0;
  if (sideBand === 0) return report;
  const out: Buffer[] = [];
  if (message !== undefined) out.push(encodeLine(Buffer.concat([Buffer.from([2]), Buffer.from(`${message}\n`, 'utf8')])));
  for (let i = 0; i < report.length; i += sideBand) out.push(encodeLine(Buffer.concat([Buffer.from([1]), report.subarray(i, i + sideBand)])));
  out.push(flush());
  return Buffer.concat(out);
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + separator.length)];
}
