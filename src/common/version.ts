declare const HQ_VERSION: string | undefined;

/** The version written into access files; a client and a server must agree on it exactly. */
export const VERSION: string = typeof HQ_VERSION === 'string' ? HQ_VERSION : '0.26.2';
