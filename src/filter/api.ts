/**
 * The stream filter contract, re-exported from its own folder (`src/contract/`), which
 * every layer may import. Kept for the modules that import it from here.
 *
 * @module
 */

export type * from "../contract/filter.ts";
