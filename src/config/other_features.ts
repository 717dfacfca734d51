// SPDX-License-Identifier: Apache-2.0
/**
 * The settings of other Device Client features (jobs, tunneling, device
 * defender, pub/sub, shadows, sensor publish, SDK logging), as rows of the
 * settings table: accepted, ignored, listed once (their whole config
 * sections are ignored too, `known_keys.ts`).
 *
 * @module
 */
import type { Setting } from "./schema.ts";

/** A setting of another Device Client feature: accepted, ignored, listed once. */
function other(flag: string | undefined, key: string | undefined, since: string): Setting {
  const kind = flag?.startsWith("--enable-") ? "boolean" : "any";
  return { flag, key, type: { kind }, since, help: "", ignored: true };
}

/** Settings of other Device Client features (their whole sections are ignored too). */
export const OTHER_FEATURES: readonly Setting[] = [
  {
    ...other("--enable-sdk-logging", "logging.enable-sdk-logging", "1.1"),
    type: { kind: "switch" },
  },
  other("--sdk-log-level", "logging.sdk-log-level", "1.1"),
  other("--sdk-log-file", "logging.sdk-log-file", "1.1"),
  other("--enable-jobs", "jobs.enabled", "0.1"),
  other("--jobs-handler-dir", "jobs.handler-directory", "0.2"),
  other("--enable-tunneling", "tunneling.enabled", "0.1"),
  other("--tunneling-region", undefined, "0.1"),
  other("--tunneling-service", undefined, "0.1"),
  { ...other("--tunneling-disable-notification", undefined, "0.1"), type: { kind: "switch" } },
  other("--enable-device-defender", "device-defender.enabled", "0.1"),
  other("--device-defender-interval", "device-defender.interval", "0.1"),
  other("--enable-pub-sub", "samples.pub-sub.enabled", "1.1"),
  other("--publish-topic", "samples.pub-sub.publish-topic", "1.1"),
  other("--publish-file", "samples.pub-sub.publish-file", "1.1"),
  other("--subscribe-topic", "samples.pub-sub.subscribe-topic", "1.1"),
  other("--subscribe-file", "samples.pub-sub.subscribe-file", "1.1"),
  other("--enable-sample-shadow", "sample-shadow.enabled", "1.3"),
  other("--shadow-name", "sample-shadow.shadow-name", "1.3"),
  other("--shadow-input-file", "sample-shadow.shadow-input-file", "1.3"),
  other("--shadow-output-file", "sample-shadow.shadow-output-file", "1.3"),
  other("--enable-config-shadow", "config-shadow.enabled", "1.3"),
  // The Device Client has no flag for sensor publish (1.6); fleetprov accepts one anyway.
  other("--enable-sensor-publish", "sensor-publish.sensors", "1.6"),
];
