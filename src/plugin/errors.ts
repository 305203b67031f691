/**
 * The errors the plugin host raises. Each names the plugin it is about.
 *
 * @module
 */

/** A plugin could not be started: spawn failure, bad handshake, timeout or early exit. */
export class PluginStartError extends Error {
  /** The plugin's name. */
  readonly plugin: string;

  /** Creates the error. */
  constructor(plugin: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PluginStartError";
    this.plugin = plugin;
  }
}

/** A call could not be made: the plugin is unknown, down, disabled or stopped. */
export class PluginUnavailableError extends Error {
  /** The plugin's name. */
  readonly plugin: string;

  /** Creates the error. */
  constructor(plugin: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PluginUnavailableError";
    this.plugin = plugin;
  }
}

/** A call reached the plugin but failed: a gRPC error or the deadline passed. */
export class PluginCallError extends Error {
  /** The plugin's name. */
  readonly plugin: string;
  /** The gRPC status code (4 is DEADLINE_EXCEEDED). */
  readonly code: number;
  /** True when the call's deadline passed. */
  readonly timedOut: boolean;

  /** Creates the error. */
  constructor(plugin: string, code: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PluginCallError";
    this.plugin = plugin;
    this.code = code;
    this.timedOut = code === 4;
  }
}
