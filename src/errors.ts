/**
 * Every failure strata reports is a StrataError with a stable `code` and structured `data`.
 * Each code is classified once, in src/errors/codes.ts (exit status, controller reason, HTTP status).
 */
export class StrataError extends Error {
  readonly code: string;
  readonly data: Record<string, unknown>;

  constructor(code: string, message: string, data: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.data = data;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, data: this.data };
  }
}

/** A location in a model file, 1-based. */
export interface SourcePos {
  file: string;
  line: number;
  column: number;
}

export interface ModelIssue extends SourcePos {
  /** Dotted path of the field, e.g. `services.web.ports.http`. */
  field: string;
  message: string;
}

/** One or more problems in the models; nothing has touched a machine. */
export class ModelError extends StrataError {
  readonly issues: ModelIssue[];
  constructor(issues: ModelIssue[]) {
    super('MODEL_INVALID', issues.map(formatIssue).join('\n'), { issues });
    this.issues = issues;
  }
}

export function formatIssue(i: ModelIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.field ? `${i.field}: ` : ''}${i.message}`;
}

/** Bad command-line usage. */
export class UsageError extends StrataError {
  constructor(message: string) {
    super('USAGE', message);
  }
}

export class TestnetError extends StrataError {}
export class TargetError extends StrataError {}
export class ApplyError extends StrataError {}
export class StateError extends StrataError {}
