// SPDX-License-Identifier: Apache-2.0
// What fleetprov uses of jsonc-parser, from its ESM modules, for the release bundle
// (build/bundle.ts): its main module also loads the formatter, whose tables are built at load
// time, a cost on every boot for nothing.
export { parse } from "../../node_modules/jsonc-parser/lib/esm/impl/parser.js";
export { createScanner } from "../../node_modules/jsonc-parser/lib/esm/impl/scanner.js";
