/**
 * GitHub's reasons for refusing a push, in plain words with the way out: git itself only prints
 * the remote's terse line (and the job's reason would otherwise end there).
 */
const EXPLANATIONS: ReadonlyArray<{ match: RegExp; explain: string }> = [
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

/** What a failed push's output means, if it is a refusal GitHub is known to give. */
export function explainPushRefusal(output: string): string | undefined {
  return EXPLANATIONS.find((e) => e.match.test(output))?.explain;
}
