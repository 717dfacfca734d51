// SPDX-License-Identifier: Apache-2.0
/**
 * How a failed rotation ends, by provisioning's rule (could time, or a fix
 * in the cloud, heal it? then 75), in a rotation's words: it connects with
 * the device's own certificate, so a refusal points at the device policy and
 * the rotation template's topics, and every message says the old certificate
 * stays active.
 *
 * @module
 */
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError } from "../errors.ts";
import { SessionError } from "../mqtt/connection.ts";
import type { RunPolicy } from "../provisioning/attempts.ts";
import {
  certificateCap,
  finalError,
  HANGUPS_MEAN_REFUSED,
  POLICY_CLOSES,
} from "../provisioning/outcome.ts";
import { allowSent, sentText } from "../mqtt/policy_hints.ts";
import { scopeOfEndpoint } from "../policy/arn.ts";
import { claimOperations, claimSubscriptions } from "../provisioning/plan.ts";
import { MalformedAnswerError } from "../protocol/mod.ts";
import type { CurrentIdentity } from "./identity.ts";

/**
 * The rotation's wording of its failures. With `retryRefusedProof` false a
 * refused proof ends the run at once (it is otherwise retried: policy lag).
 */
export function rotationPolicy(
  settings: Settings,
  identity: CurrentIdentity,
  options: { retryRefusedProof: boolean },
): RunPolicy {
  const kept = `The old certificate ${identity.certificateId} stays active.`;
  return {
    proofStep: options.retryRefusedProof ? "registered" : "",
    policyClose: (step) =>
      new FleetprovError(
        `The broker closed the connection right after the request, before any answer, ${POLICY_CLOSES} times in a row at step ${step}: ${
          deviceTopicsHint(settings, identity, step)
        } ${kept}`,
        ExitCode.Rejected,
        { kind: "policy" },
      ),
    hungUp: (step) =>
      new FleetprovError(
        `The broker closed the connection right after CONNECT, without CONNACK, ${HANGUPS_MEAN_REFUSED} times in a row at step ${step}: AWS IoT refuses ${
          step === "registered"
            ? "the new certificate (MQTT 3.1.1 says no this way); check the policy the rotation template attaches (iot:Connect for the thing name)."
            : `the device certificate ${identity.certificateId} (MQTT 3.1.1 says no this way). Check that it is ACTIVE (a backend that retired it before the board switched?) and that its policy allows iot:Connect as client id ${identity.thingName} (--mqtt-version 5 gets the broker's reason code).`
        } ${kept}`,
        ExitCode.Rejected,
        { kind: "refused" },
      ),
    finalError: (error, step, journal) => {
      if (error instanceof SessionError && error.kind === "denied") {
        // The broker's refusal names the packet, the topic, the policy and the statement.
        return new FleetprovError(`${error.message} ${kept}`, ExitCode.Rejected, {
          kind: "policy",
        });
      }
      if (error instanceof SessionError && error.kind === "refused") {
        const whose = step === "registered"
          ? "the new certificate is ACTIVE and that the policy the rotation template attaches"
          : `the device certificate ${identity.certificateId} is ACTIVE and that its policy`;
        return new FleetprovError(
          `${error.message} Check that ${whose} allows iot:Connect as client id ${identity.thingName}. ${kept}`,
          ExitCode.Rejected,
          { kind: "refused" },
        );
      }
      const ended = finalError(error, step, journal);
      return new FleetprovError(`${ended.message} ${kept}`, ended.exitCode, {
        cause: error,
        kind: ended.kind,
      });
    },
    certificateCap: (last) => {
      const capped = certificateCap(last);
      return new FleetprovError(`${capped.message} ${kept}`, capped.exitCode, {
        kind: capped.kind,
      });
    },
    pastDeadline: (error, step) => {
      const reason = (error as Error).message;
      const seconds = settings.retry.deadlineMs / 1000;
      if (step === "registered") {
        return new FleetprovError(
          `The new certificate could not connect within the ${seconds} s deadline: ${reason} ${kept} The next fleetprov rotate retries this proof only (no new certificate); if AWS IoT keeps refusing it, check the policy the rotation template attaches (iot:Connect for the thing name).`,
          ExitCode.TempFail,
          { kind: "proof" },
        );
      }
      const malformed = error instanceof MalformedAnswerError ||
        (error instanceof SessionError && error.kind === "malformed");
      return new FleetprovError(
        `The rotation did not finish within the ${seconds} s deadline; last failure at step ${step}: ${reason} ${kept}`,
        malformed ? ExitCode.Rejected : ExitCode.TempFail,
      );
    },
  };
}

/**
 * What the device policy must allow for the packets a rotation sent at
 * `step`, named with the statements that allow them (as `fleetprov lint`
 * writes its fixes), for the device's own thing only.
 */
function deviceTopicsHint(settings: Settings, identity: CurrentIdentity, step: string): string {
  const from = step === "start" ? "start" : "certificate-created";
  const sent = {
    subscribe: claimSubscriptions(settings, from),
    publish: claimOperations(settings, from)[0].topics.request,
  };
  const scope = scopeOfEndpoint(settings.endpoint) ?? {};
  return `the device certificate's policy (the one attached to certificate ${identity.certificateId}) most likely forbids one of the packets: ${
    sentText(sent)
  }. A device policy allows them with: ${
    allowSent(sent, scope)
  }; with iot:Connect only as its own thing (client/\${iot:Connection.Thing.ThingName}).`;
}
