/**
 * The protocol codec contract: what a codec (Bolt built in, or a module loaded by URL)
 * gives the core so that any multiplexed request/response protocol runs through the same
 * listeners, routes, stream filters, load balancers and upstream pools as HTTP.
 *
 * A codec only turns bytes into frames and back. The core does the rest for every codec:
 * connections, heartbeats answered locally, the stream lifecycle, multiplexed upstream
 * pools with request ids rewritten both ways, timeouts, drain.
 *
 * @module
 */

/** The kind of a frame. */
export type FrameType = "request" | "oneway" | "response" | "heartbeat" | "heartbeat_ack";

/** One decoded frame of a request/response protocol. */
export interface ProtocolFrame {
  /** Request, oneway request (no answer), response, heartbeat or its answer. */
  type: FrameType;
  /** The id that pairs a response with its request on one connection. */
  requestId: number;
  /**
   * The frame's header map in wire order, names and values as sent (case kept). Routes
   * and stream filters see it as the request's (or response's) headers.
   */
  headers: [string, string][];
  /** The payload, untouched (Bolt: the serialized content). */
  body: Uint8Array;
  /** Responses: the protocol's own status code; 0 for requests. */
  status: number;
  /** Requests: the timeout the client gave, in milliseconds; 0 when none. */
  timeoutMs: number;
  /**
   * The codec's own fields, carried from decode to encode untouched by the core (Bolt:
   * the serialization byte, the class name, the command version).
   */
  meta: unknown;
}

/** What a request looks like to routes, filters and the access log. */
export interface RequestLine {
  /** `RequestStream.method`. */
  method: string;
  /** `RequestStream.path`: starts with `/`. */
  path: string;
}

/** A protocol codec: bytes ⇄ frames, and the protocol's rules the core cannot know. */
export interface ProtocolCodec {
  /** The protocol's name, as `downstream_protocol` names it (`bolt`). */
  readonly name: string;
  /**
   * The length of the frame that starts `bytes`, once enough of its head is there to
   * tell; undefined when more bytes are needed. The core refuses a frame longer than the
   * listener's limit from this answer alone, before buffering it.
   *
   * @throws {ProtocolError} when the bytes cannot start a frame of this protocol
   */
  frameLength(bytes: Uint8Array): number | undefined;
  /**
   * Decodes one whole frame (exactly the bytes `frameLength` counted).
   *
   * @throws {ProtocolError} when the frame is malformed
   */
  decode(frame: Uint8Array): ProtocolFrame;
  /** Encodes a frame (one the codec decoded or made, with the core's changes). */
  encode(frame: ProtocolFrame): Uint8Array;
  /**
   * The request line routes and filters see for a request frame.
   */
  requestLine(request: ProtocolFrame): RequestLine;
  /**
   * A response to `request` for a status the proxy chose, in HTTP terms: 403 from a
   * filter's `respond()`, 404 (no route), 502 (no upstream, upstream gone), 503
   * (overflow), 504 (timeout), 500. `message` is the local response's body as text.
   */
  respond(request: ProtocolFrame, status: number, message: string): ProtocolFrame;
  /** The HTTP-style status of a response frame (MOSN's status mapping: success is 200). */
  httpStatus(response: ProtocolFrame): number;
  /** The answer to a heartbeat, sent by the core without a stream. */
  heartbeatAck(heartbeat: ProtocolFrame): ProtocolFrame;
}

/**
 * Makes a codec from its config (`extend_config.config`). The conventional export of a
 * codec module is `createProtocolCodec`.
 */
export type CreateProtocolCodec = (config: unknown) => ProtocolCodec | Promise<ProtocolCodec>;

/** Bytes that do not make a frame of the protocol. */
export class ProtocolError extends Error {
  /** Makes the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
  }
}
