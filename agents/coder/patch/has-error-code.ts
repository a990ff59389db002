/** Whether a Node file-system error carries one of these `code`s (ENOENT, ENOTDIR, ...). */
export function hasErrorCode(err: unknown, ...codes: string[]): boolean {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' && codes.includes(err.code);
}
