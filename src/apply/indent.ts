/** Text indented by four spaces, for output quoted under a message. */
export function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
