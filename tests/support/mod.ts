// SPDX-License-Identifier: Apache-2.0
/**
 * The test helpers every suite uses, one module per concern: temporary files
 * and tools (`fs.ts`), a device's home and what a run left there
 * (`device.ts`), running the real CLI to its end or to a crash point
 * (`cli.ts`, with peak RSS under GNU time), the emulator and its templates
 * (`emulator.ts`), the hostile broker (`hostile_broker.ts`), MQTT clients
 * (`mqtt.ts`), config layouts (`layout.ts`), concurrent steps (`steps.ts`),
 * skips that CI turns into failures (`skip.ts`).
 * Assertions: `./assert.ts`.
 *
 * @module
 */
export * from "./fs.ts";
export * from "./device.ts";
export * from "./cli.ts";
export * from "./emulator.ts";
export * from "./mqtt.ts";
export * from "./layout.ts";
export * from "./steps.ts";
export * from "./pki.ts";
export * from "./hostile_broker.ts";
export * from "./aws_sdk.ts";
export * from "./rotation.ts";
export * from "./skip.ts";
export * from "./aws_iot.ts";
export * from "./faketime.ts";
