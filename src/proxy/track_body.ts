/**
 * Streams a response body to the client and reports when it is done, so the stream's
 * finish (access log, `onDestroy`) runs after the last byte, or when the client leaves.
 *
 * @module
 */

/**
 * Wraps `body` so that `done(bytesSent, error?)` is called exactly once: at the end of
 * the body, on an error reading it, or when the client goes away (the reader is
 * cancelled, which cancels the upstream body and closes its connection).
 */
export function trackBody(
  body: ReadableStream<Uint8Array>,
  clientSignal: AbortSignal,
  done: (bytesSent: number, error?: unknown) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let bytesSent = 0;
  let finished = false;
  const end = (error?: unknown) => {
    if (finished) return;
    finished = true;
    clientSignal.removeEventListener("abort", onAbort);
    done(bytesSent, error);
  };
  const onAbort = () => {
    reader.cancel(clientSignal.reason).catch(() => {});
    end(clientSignal.reason ?? new Error("client went away"));
  };
  clientSignal.addEventListener("abort", onAbort);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done: ended, value } = await reader.read();
        if (ended) {
          controller.close();
          end();
        } else {
          bytesSent += value.byteLength;
          controller.enqueue(value);
        }
      } catch (error) {
        controller.error(error);
        end(error);
      }
    },
    cancel(reason) {
      reader.cancel(reason).catch(() => {});
      end(reason ?? new Error("client went away"));
    },
  }, { highWaterMark: 0 });
}
