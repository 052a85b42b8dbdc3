/** Bad command-line usage: printed with the command's name, exit code 2. */
export class UsageError extends Error {}
