// SPDX-License-Identifier: Apache-2.0
/**
 * How a provisioning run ends when it fails, by one rule: could time (or a
 * fix in the cloud) heal the last failure? Then exit 75 and systemd retries;
 * a final rejection is 1; what needs a person on the board is 73, 74, 77 or
 * 78; 70 is left for fleetprov's own bugs.
 *
 * @module
 */
import type { Settings } from "../config/settings.ts";
import { ExitCode, FleetprovError, osFailure } from "../errors.ts";
import { NO_ANSWER, SessionError } from "../mqtt/connection.ts";
import { addStatement, allowSent, sentText } from "../mqtt/policy_hints.ts";
import { scopeOfEndpoint } from "../policy/arn.ts";
import { MalformedAnswerError, RejectionError } from "../protocol/mod.ts";
import type { JournalEntry } from "./journal.ts";
import { claimOperations, claimSubscriptions } from "./plan.ts";

/**
 * The create requests (CreateKeysAndCertificate, CreateCertificateFromCsr) one
 * run may send: on AWS each one that arrives mints a certificate, whether its
 * answer is refused, malformed or lost on the way back.
 */
export const MAX_CERTIFICATES_PER_RUN = 3;

/**
 * Whether a create request that failed may still have minted a certificate:
 * the service accepted it (the accepted answer was malformed or oversized) or
 * its answer was lost on the way back (cut mid-packet, never came). A
 * rejection (even a malformed one), a refused connection or a close before any
 * answer byte minted nothing.
 */
export function mayHaveMinted(error: unknown): boolean {
  if (error instanceof MalformedAnswerError) return error.accepted;
  if (!(error instanceof SessionError)) return false;
  return error.kind === "malformed" || error.closeDetail === "mid-packet" ||
    error.code === NO_ANSWER;
}

/** Closes right after the request, in a row at the same step, that mean a policy problem. */
export const POLICY_CLOSES = 3;

/** A run's step as far as the failure messages need it ("start", a journal step, "done"). */
export type Step = string;

/** What a journal on disk says, as far as the failure messages need it. */
export type JournalMark = Pick<JournalEntry, "certificateId"> & { step: string };

/** What the journal kept, for a message: the next run resumes from it. */
export function journalNote(entry: JournalMark | undefined): string {
  return entry
    ? `The journal keeps step ${entry.step} with certificate ${entry.certificateId}; the next run resumes there without a new certificate.`
    : "No certificate was requested yet.";
}

/** The failure of a step that no retry can fix (or an OS condition), as the run's end. */
export function finalError(
  error: unknown,
  step: Step,
  journal: JournalMark | undefined,
): FleetprovError {
  const os = osFailure(error, { note: journalNote(journal) });
  if (os) return os;
  if (error instanceof FleetprovError) return error;
  if (error instanceof RejectionError) return new FleetprovError(error.message, ExitCode.Rejected);
  if (error instanceof SessionError) {
    if (error.kind === "tls") {
      return new FleetprovError(
        `${error.message} The clock is plausible; check root-ca and that endpoint names the server in its certificate.`,
        ExitCode.Config,
      );
    }
    if (error.kind === "denied") return new FleetprovError(error.message, ExitCode.Rejected);
    if (error.kind === "refused") {
      return new FleetprovError(
        `${error.message} Check that the claim certificate is registered and ACTIVE and that its policy allows iot:Connect for this client id.`,
        ExitCode.Rejected,
      );
    }
    return new FleetprovError(
      error.message,
      error.kind === "malformed" ? ExitCode.Rejected : ExitCode.TempFail,
    );
  }
  if (error instanceof MalformedAnswerError) {
    return new FleetprovError(error.message, ExitCode.Rejected);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new FleetprovError(`Unexpected failure at step ${step}: ${message}`, ExitCode.Software);
}

/**
 * The deadline passed at `step`. A malformed answer (bad body, oversized
 * packet) is the service's final word: 1. Everything else that was retried
 * (network, throttling, 5xx, closes, clock, a refused proof) is 75.
 */
export function pastDeadline(error: unknown, step: Step, settings: Settings): FleetprovError {
  const reason = (error as Error).message;
  const seconds = settings.retry.deadlineMs / 1000;
  const malformed = error instanceof MalformedAnswerError ||
    (error instanceof SessionError && error.kind === "malformed");
  if (step === "committed") {
    return new FleetprovError(
      `The runtime config is written, but the new certificate could not connect within the ${seconds} s deadline: ${reason} The next start retries this proof only (no new certificate); if AWS refuses the certificate, check the template's policy (iot:Connect for the thing name).`,
      ExitCode.TempFail,
      { kind: "proof" },
    );
  }
  return new FleetprovError(
    `Provisioning did not finish within the ${seconds} s deadline; last failure at step ${step}: ${reason}`,
    malformed ? ExitCode.Rejected : ExitCode.TempFail,
  );
}

/**
 * The broker closed the connection right after the same request, several
 * times in a row: over MQTT 3.1.1 that is how AWS IoT refuses a packet the
 * claim policy does not allow. The line names the packets the claim
 * connection sent at that step and the statements that would allow them.
 */
export function policyClose(step: Step, settings: Settings): FleetprovError {
  const from = step === "start" ? "start" : "certificate-created";
  const sent = {
    subscribe: claimSubscriptions(settings, from),
    publish: claimOperations(settings, from)[0].topics.request,
  };
  const scope = scopeOfEndpoint(settings.endpoint) ?? {};
  return new FleetprovError(
    `The broker closed the connection right after the request, before any answer, ${POLICY_CLOSES} times in a row at step ${step}; the claim certificate's policy most likely forbids one of the packets: ${
      sentText(sent)
    }. A claim policy allows them with: ${
      allowSent(sent, scope)
    } (--mqtt-version 5 gets the broker's reason code for each; fleetprov lint checks a policy before the boards do).`,
    ExitCode.Rejected,
    { kind: "policy" },
  );
}

/**
 * How many hang-ups right after CONNECT in a row mean "refused": over MQTT
 * 3.1.1 AWS IoT refuses an unknown, inactive or revoked certificate, or a
 * policy without iot:Connect, by closing the connection without CONNACK. One
 * can be a network failure; the same answer three times is a refusal.
 */
export const HANGUPS_MEAN_REFUSED = 3;

/** The broker hung up right after CONNECT again and again: the claim certificate or its policy. */
export function hungUp(step: Step, settings: Settings): FleetprovError {
  return new FleetprovError(
    `The broker closed the connection right after CONNECT, without CONNACK, ${HANGUPS_MEAN_REFUSED} times in a row at step ${step}: this is how AWS IoT refuses a claim certificate over MQTT 3.1.1. Check that the claim certificate is registered and ACTIVE and that its policy allows iot:Connect as client id ${settings.clientId}: ${
      addStatement("iot:Connect", [settings.clientId], scopeOfEndpoint(settings.endpoint) ?? {})
    } (--mqtt-version 5 gets the broker's reason code).`,
    ExitCode.Rejected,
    { kind: "refused" },
  );
}

/** The run already minted its share of certificates. */
export function certificateCap(last: unknown): FleetprovError {
  return new FleetprovError(
    `Stopped after minting ${MAX_CERTIFICATES_PER_RUN} certificates in one run (the cap; each create request that reaches AWS IoT creates one, whatever becomes of its answer); the last failure: ${
      (last as Error)?.message ?? "unknown"
    } Check the provisioning template and its pre-provisioning hook, and that answers reach the board (a path that drops large packets loses them).`,
    ExitCode.Rejected,
    { kind: "certificate-cap" },
  );
}
