/** Where a value sits in a model file: keys and list indexes from the document's root. */
export type FieldPath = readonly (string | number)[];

/** A dotted field path; a segment with control characters is quoted, so it cannot forge lines. */
export function fieldName(path: FieldPath): string {
  return path
    .map((p) => (typeof p === 'number' ? `[${p}]` : /[\u0000-\u001f\u007f]/.test(p) ? JSON.stringify(p) : p))
    .join('.')
    .replace(/\.\[/g, '[');
}
