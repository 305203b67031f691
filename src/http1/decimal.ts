/**
 * Decimal numbers of HTTP fields (Content-Length, `timeout=N`): digits only, no sign, no
 * spaces, at most 15 digits so the value stays an exact integer.
 *
 * @module
 */

/**
 * Parses a non-negative decimal of at most 15 digits.
 *
 * @param text The digits, already trimmed.
 * @returns The number, or -1 when the text is not one.
 *
 * @example
 * ```ts
 * parseDecimal("42"); // 42
 * parseDecimal("+42"); // -1
 * ```
 */
export function parseDecimal(text: string): number {
  if (text.length === 0 || text.length > 15) return -1;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}
