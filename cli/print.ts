/** What a command prints: JSON for scripts (`--json`), or the text for people. */
export function print(json: boolean | undefined, value: unknown, text: string): void {
  console.log(json ? JSON.stringify(value) : text);
}
