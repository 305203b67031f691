/**
 * The first plugin client, on `@grpc/grpc-js`, kept for `bench/plugin_bench.ts` to measure
 * against the client Mosaic uses ({@link ./client.ts}, over `node:http2`); the same
 * interface and errors. Mosaic itself no longer loads it.
 *
 * @module
 */

import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import type { PluginRequest, PluginResponse } from "../filter/api.ts";
import { PluginCallError } from "./errors.ts";
import {
  CALL_PATH,
  decodeHealthResponse,
  decodeResponse,
  encodeHealthRequest,
  encodeRequest,
  HEALTH_CHECK_PATH,
  HEALTH_SERVICE,
  type ServingStatus,
} from "./proto.ts";

/** Largest message either side may send: bodies travel in one message. */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

function serializeRequest(request: PluginRequest): Buffer {
  const bytes = encodeRequest(request);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function deserializeResponse(bytes: Buffer): PluginResponse {
  return decodeResponse(bytes);
}

function serializeHealth(service: string): Buffer {
  return Buffer.from(encodeHealthRequest(service));
}

/** What a health check found. */
export type HealthResult = ServingStatus | "UNIMPLEMENTED";

/** A gRPC connection to one plugin process, through `@grpc/grpc-js`. */
export class GrpcJsPluginClient {
  #plugin: string;
  #client: grpc.Client;

  /**
   * Creates the client; it connects lazily (see {@linkcode GrpcJsPluginClient.ready}).
   *
   * @param plugin The plugin's name, for errors.
   * @param target `host:port` or `unix:///path`.
   */
  constructor(plugin: string, target: string) {
    this.#plugin = plugin;
    this.#client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
    });
  }

  /**
   * Connects, so the first call does not pay for it.
   *
   * @param timeoutMs How long to try.
   * @throws {Error} when no connection is made in time.
   */
  ready(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#client.waitForReady(Date.now() + timeoutMs, (err) => err ? reject(err) : resolve());
    });
  }

  /**
   * Calls `proto.Plugin/Call`.
   *
   * @param request The request.
   * @param timeoutMs The call's deadline; 0 means none.
   * @returns The plugin's response.
   * @throws {PluginCallError} on any gRPC error, `timedOut` set when the deadline passed.
   */
  call(request: PluginRequest, timeoutMs: number): Promise<PluginResponse> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        CALL_PATH,
        serializeRequest,
        deserializeResponse,
        request,
        timeoutMs > 0 ? { deadline: Date.now() + timeoutMs } : {},
        (err: grpc.ServiceError | null, value?: PluginResponse) => {
          if (err) reject(this.#error("call", err, timeoutMs));
          else resolve(value!);
        },
      );
    });
  }

  /**
   * Asks `grpc.health.v1.Health/Check` about service `plugin` (go-plugin's name).
   *
   * @param timeoutMs The check's deadline.
   * @returns The serving status, or `UNIMPLEMENTED` when the plugin has no health service.
   * @throws {PluginCallError} on any other gRPC error.
   */
  health(timeoutMs: number): Promise<HealthResult> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        HEALTH_CHECK_PATH,
        serializeHealth,
        decodeHealthResponse,
        HEALTH_SERVICE,
        { deadline: Date.now() + timeoutMs },
        (err: grpc.ServiceError | null, value?: ServingStatus) => {
          if (!err) resolve(value!);
          else if (err.code === grpc.status.UNIMPLEMENTED) resolve("UNIMPLEMENTED");
          // A health service that does not know "plugin" still answers for the server.
          else if (err.code === grpc.status.NOT_FOUND) resolve("SERVICE_UNKNOWN");
          else reject(this.#error("health check", err, timeoutMs));
        },
      );
    });
  }

  /** Closes the connection; calls in flight finish first. */
  close(): void {
    this.#client.close();
  }

  #error(what: string, err: grpc.ServiceError, timeoutMs: number): PluginCallError {
    const code = err.code ?? grpc.status.UNKNOWN;
    const text = code === grpc.status.DEADLINE_EXCEEDED
      ? `timed out after ${timeoutMs} ms`
      : `failed with ${grpc.status[code] ?? code}: ${err.details || err.message}`;
    return new PluginCallError(this.#plugin, code, `Plugin "${this.#plugin}" ${what} ${text}`, {
      cause: err,
    });
  }
}
