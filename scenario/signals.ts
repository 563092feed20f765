/**
 * Control flow inside a scenario: a skip (a requirement the host lacks) and an expectation that
 * already reported its failure and ends the step, as kselftest's TEST_ASSERT ends a test.
 * @module
 */

/** Thrown by `requires`/`skip`: the step (or scenario, before any step) is skipped with the reason. */
export class SkipSignal extends Error {
  constructor(readonly reason: string) {
    super(`SKIP ${reason}`);
    this.name = "SkipSignal";
  }
}

/**
 * Thrown after a failed expectation was recorded: ends the step without another result line (or,
 * when it was recorded as XFAIL, `xfailed`, only the {@link xfail} block it happened in).
 */
export class ExpectationFailed extends Error {
  constructor(readonly claim: string, readonly reason: string, readonly xfailed = false) {
    super(`${claim}: ${reason}`);
    this.name = "ExpectationFailed";
  }
}

/** Why a scenario was stopped from outside its own logic: its deadline passed, or the user pressed Ctrl-C. */
export type StopCause = "deadline" | "interrupt";

/**
 * Thrown once a scenario's deadline has passed or the run was interrupted: the line that noticed it
 * was recorded (`deadline exceeded` / interrupted); everything after it unwinds to the runner,
 * which runs the cleanup.
 */
export class ScenarioStopped extends Error {
  constructor(readonly why: StopCause, readonly reason: string) {
    super(reason);
    this.name = "ScenarioStopped";
  }
}
