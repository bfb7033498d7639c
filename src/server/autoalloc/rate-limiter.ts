/**
 * How often a queue may submit. Every failed submission or failed allocation moves to the next,
 * longer delay between submission attempts; a success moves back to none. Too many failures in
 * a row pause the queue. Pure: the caller passes the time.
 */
export const SUBMISSION_DELAYS_MS = [0, 60_000, 15 * 60_000, 30 * 60_000, 60 * 60_000] as const;
export const MAX_SUBMISSION_FAILS = 10;
export const DEFAULT_MAX_ALLOCATION_FAILS = 3;

export type LimiterStatus =
  'ok' | 'wait' | 'too-many-failed-submissions' | 'too-many-failed-allocations';

export class RateLimiter {
  private delayIndex = 0;
  private lastAttemptMs: number | null = null;
  private submissionFails = 0;
  private allocationFails = 0;

  private readonly maxAllocationFails: number;

  constructor(maxAllocationFails: number = DEFAULT_MAX_ALLOCATION_FAILS) {
    this.maxAllocationFails = maxAllocationFails;
  }

  status(nowMs: number): LimiterStatus {
    if (this.allocationFails >= this.maxAllocationFails) {
      return 'too-many-failed-allocations';
    }
    if (this.submissionFails >= MAX_SUBMISSION_FAILS) {
      return 'too-many-failed-submissions';
    }
    if (this.lastAttemptMs !== null && nowMs - this.lastAttemptMs < this.delayMs()) {
      return 'wait';
    }
    return 'ok';
  }

  onAttempt(nowMs: number): void {
    this.lastAttemptMs = nowMs;
  }

  onSubmissionSuccess(): void {
    this.submissionFails = 0;
    if (this.allocationFails === 0) {
      this.delayIndex = 0;
    }
  }

  onSubmissionFail(): void {
    this.submissionFails++;
    this.longer();
  }

  onAllocationSuccess(): void {
    this.allocationFails = 0;
    this.delayIndex = 0;
  }

  onAllocationFail(): void {
    this.allocationFails++;
    this.longer();
  }

  /** A resumed queue starts over. */
  reset(): void {
    this.submissionFails = 0;
    this.allocationFails = 0;
    this.delayIndex = 0;
    this.lastAttemptMs = null;
  }

  private delayMs(): number {
    return SUBMISSION_DELAYS_MS[this.delayIndex] ?? 0;
  }

  private longer(): void {
    this.delayIndex = Math.min(this.delayIndex + 1, SUBMISSION_DELAYS_MS.length - 1);
  }
}
