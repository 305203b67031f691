/**
 * Keeps a TLS context's material current: fetches again when the provider's
 * `refreshAfterMs` says so, or on demand (SIGHUP). A failed fetch keeps the old material
 * and is reported; the next attempt comes after the same interval.
 *
 * @module
 */

import type { TlsMaterial } from "../filter/api.ts";
import type { BoundCertificateProvider } from "./material.ts";

/** Options of {@linkcode MaterialRefresher}. */
export interface MaterialRefresherOptions {
  /** Where new material comes from. */
  provider: BoundCertificateProvider;
  /** The material in force now (fetched at start-up). */
  initial: TlsMaterial;
  /** Called with new material; put it in force for new connections here. */
  onUpdate: (material: TlsMaterial) => void;
  /** Called when a fetch fails or `onUpdate` throws; the old material stays in force. */
  onError: (error: unknown) => void;
}

/** Refetches a provider's material on its interval and on demand. */
export class MaterialRefresher {
  #options: MaterialRefresherOptions;
  #current: TlsMaterial;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<boolean> | undefined;
  #closed = false;

  /**
   * Starts the timer when the initial material has a `refreshAfterMs`.
   *
   * @param options The provider, the initial material and the callbacks.
   */
  constructor(options: MaterialRefresherOptions) {
    this.#options = options;
    this.#current = options.initial;
    this.#schedule();
  }

  /** The material in force. */
  get current(): TlsMaterial {
    return this.#current;
  }

  /**
   * Fetches now (for SIGHUP). Calls made while a fetch runs share it.
   *
   * @returns True when new material was put in force.
   */
  refreshNow(): Promise<boolean> {
    this.#running ??= this.#refresh().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stops the timer; later refreshes do nothing. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #refresh(): Promise<boolean> {
    if (this.#closed) return false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    let updated = false;
    try {
      const material = await this.#options.provider.fetch();
      if (!this.#closed) {
        this.#options.onUpdate(material);
        this.#current = material;
        updated = true;
      }
    } catch (error) {
      if (!this.#closed) this.#options.onError(error);
    }
    this.#schedule();
    return updated;
  }

  #schedule(): void {
    const after = this.#current.refreshAfterMs;
    if (this.#closed || after === undefined || !(after > 0)) return;
    // A refresh timer must not keep the process alive on its own.
    const timer = setTimeout(() => void this.refreshNow(), after);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}
