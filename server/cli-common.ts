/** What every CLI verb shares: its input/output and the usage error (exit status 2). */

/** Raised for wrong usage: exit status 2 and a hint to see --help. */
export class UsageError extends Error {}

export interface CliIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  readStdin: () => string;
}
