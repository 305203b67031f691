/**
 * Reads a child's stdout or stderr line by line.
 *
 * @module
 */

/** Lines longer than this are cut, so a plugin cannot make the host buffer without end. */
export const MAX_LINE_LENGTH = 16 * 1024;

/** Splits a byte stream into lines (`\n`, with a trailing `\r` dropped). */
export class LineReader {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  #lines: string[] = [];
  #done = false;

  /** Starts reading `stream`. */
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /**
   * The next line, or `undefined` at the end of the stream. A last line without a
   * newline is returned too.
   */
  async next(): Promise<string | undefined> {
    while (this.#lines.length === 0) {
      if (this.#done) return undefined;
      const { value, done } = await this.#reader.read();
      if (done) {
        this.#done = true;
        if (this.#buffer !== "") {
          this.#lines.push(this.#buffer);
          this.#buffer = "";
        }
        break;
      }
      this.#split(value);
    }
    return this.#lines.shift();
  }

  /**
   * Calls `onLine` for every remaining line until the stream ends.
   *
   * @returns A promise that settles at the end of the stream; it never rejects.
   */
  async forward(onLine: (line: string) => void): Promise<void> {
    try {
      for (let line = await this.next(); line !== undefined; line = await this.next()) {
        onLine(line);
      }
    } catch {
      // The stream broke (the child died): there is nothing more to read.
    }
  }

  /** Stops reading; pending and later reads see the end of the stream. */
  async cancel(): Promise<void> {
    this.#done = true;
    try {
      await this.#reader.cancel();
    } catch {
      // Already closed.
    }
  }

  #split(chunk: string): void {
    let text = this.#buffer + chunk;
    let nl = text.indexOf("\n");
    while (nl !== -1) {
      let line = text.slice(0, nl);
      if (line.endsWith("\r")) line = line.slice(0, -1);
      this.#lines.push(line.length > MAX_LINE_LENGTH ? line.slice(0, MAX_LINE_LENGTH) : line);
      text = text.slice(nl + 1);
      nl = text.indexOf("\n");
    }
    // Keep a partial line, but never more than the limit: the rest is dropped.
    this.#buffer = text.length > MAX_LINE_LENGTH ? text.slice(0, MAX_LINE_LENGTH) : text;
  }
}

/** Keeps the last `size` lines, for error messages about a child that died. */
export class LineRing {
  #lines: string[] = [];
  #size: number;

  /** Creates a ring of `size` lines. */
  constructor(size: number) {
    this.#size = size;
  }

  /** Adds a line, dropping the oldest when full. */
  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#size) this.#lines.shift();
  }

  /** The kept lines, oldest first. */
  lines(): string[] {
    return [...this.#lines];
  }
}
