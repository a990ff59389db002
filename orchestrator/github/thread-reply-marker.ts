/**
 * The hidden marker every reply Stagegate posts in a review thread begins with, naming the
 * comment it answers: how a reply already posted is found again (a crash between posting and
 * recording), and how Stagegate's own replies are told from people's whoever posted them.
 */
const PREFIX = '<!-- stagegate:thread-reply:';
const END = ' -->';

export function threadReplyMarker(commentId: number): string {
  return `${PREFIX}${commentId}${END}`;
}

/** The comment a reply of ours answers; undefined for any other comment. */
export function answeredBy(body: string): number | undefined {
  if (!body.startsWith(PREFIX)) return undefined;
  const id = Number.parseInt(body.slice(PREFIX.length), 10);
  return Number.isSafeInteger(id) && id > 0 ? id : undefined;
}

/** The text of a reply of ours without its marker; any other comment as it is. */
export function withoutReplyMarker(body: string): string {
  return answeredBy(body) === undefined ? body : body.slice(body.indexOf(END) + END.length);
}
