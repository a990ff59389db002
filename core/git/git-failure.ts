/**
 * Why git failed, in plain words with the way out, for the failures it is known to give: a remote
 * that refuses a push (GitHub's reasons), cannot be reached, or has no such repository. git itself
 * prints only its terse lines, and a job's reason would otherwise end there.
 */
const PUSH_REFUSALS: ReadonlyArray<{ match: RegExp; explain: string }> = [
  {
    match: /without `?workflows?`? (permission|scope)/i,
    explain:
      'push refused: the token lacks the workflows permission (GitHub refuses changes to .github/workflows without it); grant the GitHub App `workflows: write` (a personal token: the `workflow` scope), or keep the change out of .github/workflows',
  },
  {
    match: /GH006|protected branch hook declined/i,
    explain: 'push refused: the branch is protected on GitHub; Stagegate pushes only its own task branch, so check the repository rules that match `stagegate/*`',
  },
  {
    match: /GH013|repository rule violations/i,
    explain: 'push refused by a repository ruleset (required signatures, file paths or sizes); see the rule GitHub names above and allow Stagegate\'s branches or change the rule',
  },
  {
    match: /\[rejected\].*\((non-fast-forward|fetch first)\)/i,
    explain: 'push refused: the branch moved on GitHub since it was cloned (someone pushed to it); Stagegate never pushes over it, so the next round starts from the branch as it is now',
  },
  {
    match: /\[rejected\].*\(stale info\)/i,
    explain: 'push refused: the branch moved on GitHub while it was being rebased (someone pushed to it); the rebase is not pushed over it, and the next round starts from the branch as it is now',
  },
];

const ANY_COMMAND: ReadonlyArray<{ match: RegExp; explain: string }> = [
  {
    match: /Could not resolve host|Failed to connect|Connection refused|Connection timed out|Couldn't connect to server/i,
    explain:
      "git could not reach the repository's server: check the network and the repository URL; for a GitHub task that is serve's git gateway (STAGEGATE_GIT_GATEWAY_URL), so check that serve is running and reachable from the worker",
  },
  {
    match: /Repository not found|repository '[^']*' (not found|does not exist)|does not appear to be a git repository/i,
    explain: "the repository was not found: check the task's repository path or URL; through serve's git gateway it is also refused for a task that is done or cancelled, or that does not work on that repository",
  },
  {
    match: /Authentication failed|could not read Username|terminal prompts disabled/i,
    explain: "the repository asked for credentials git does not have: agents hold none, so clone GitHub repositories through serve's git gateway, and check that serve's token or GitHub App can read the repository",
  },
];

/** What a failed git command's output means, if git or the remote is known to fail that way. */
export function explainGitFailure(args: readonly string[], output: string): string | undefined {
  const known = [...(args.includes('push') ? PUSH_REFUSALS : []), ...ANY_COMMAND];
  return known.find((e) => e.match.test(output))?.explain;
}
