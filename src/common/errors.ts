/**
 * The one error type of the project. `code` is stable (scripts and tests may branch on it);
 * `message` is what the user sees, a single line that says what to do next where possible.
 */
export type HqErrorCode =
  | 'HQ_INVALID_ARGUMENT'
  | 'HQ_INVALID_DURATION'
  | 'HQ_INVALID_RANGE'
  | 'HQ_INVALID_RESOURCE'
  | 'HQ_ACCESS_FILE'
  | 'HQ_VERSION_MISMATCH'
  | 'HQ_SERVER_NOT_FOUND'
  | 'HQ_SERVER_RUNNING'
  | 'HQ_CONNECTION'
  | 'HQ_KEY_MISMATCH'
  | 'HQ_PROTOCOL'
  | 'HQ_NOT_FOUND'
  | 'HQ_TIMEOUT'
  | 'HQ_ALLOCATION'
  | 'HQ_INTERNAL';

export class HqError extends Error {
  readonly code: HqErrorCode;

  constructor(code: HqErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HqError';
    this.code = code;
  }
}

/** Turns anything thrown into a one-line message fit for a user. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
