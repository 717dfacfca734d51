// SPDX-License-Identifier: Apache-2.0
/**
 * What the claim connection does, from the settings alone: which create
 * operation (CreateKeysAndCertificate, or CreateCertificateFromCsr when the
 * key is made on the board, read from `device-key` or held in a secure
 * element), the topics of each step in the payload format and template of
 * the config, its one SUBSCRIBE at CONNACK, and every MQTT action with its
 * resource in the order the broker checks them. The provisioning run and
 * `fleetprov lint` both read it from here, so lint checks what the device
 * does.
 *
 * @module
 */
import type { Settings } from "../config/settings.ts";
import type { IotAction } from "../policy/arn.ts";
import { type Operation, type OperationTopics, operationTopics } from "../protocol/mod.ts";

/** The create operation a device with these settings uses. */
export type CreateOperation = Exclude<Operation, "RegisterThing">;

/**
 * CreateCertificateFromCsr when the key is generated on the board, lives in
 * a secure element, or comes with its CSR (`csr-file` and `device-key`);
 * CreateKeysAndCertificate otherwise (a CSR without its key is not used, as
 * the Device Client does).
 */
export function createOperationOf(settings: Settings): CreateOperation {
  const fp = settings.fleetProvisioning;
  const csr = fp.generateKey !== undefined || settings.secureElement.enabled ||
    (fp.csrFile !== undefined && fp.deviceKey !== undefined);
  return csr ? "CreateCertificateFromCsr" : "CreateKeysAndCertificate";
}

/**
 * The step a planned action belongs to: of the claim connection (`connect`,
 * `subscribe`, an operation), or `proof`, the new certificate's connection.
 */
export type PlanStep = "connect" | "subscribe" | Operation | "proof";

/** One MQTT action of the claim connection, as the broker checks it. */
export interface PlannedAction {
  step: PlanStep;
  /** The packet that carries it (`delivery`: the broker's PUBLISH of an answer). */
  packet: "CONNECT" | "SUBSCRIBE" | "PUBLISH" | "delivery";
  action: IotAction;
  /** Client id, topic or topic filter. */
  name: string;
  /**
   * False for the delivery of a rejection: without it provisioning still
   * works, but a rejection (throttling, a bad parameter) arrives as silence.
   */
  required: boolean;
}

/** Everything the claim connection will do. */
export interface ClaimPlan {
  clientId: string;
  createOperation: CreateOperation;
  /** The operations in order, with their topics. */
  operations: { operation: Operation; topics: OperationTopics }[];
  /** The topic filters of its one SUBSCRIBE at CONNACK. */
  subscriptions: string[];
  actions: PlannedAction[];
}

/**
 * The operations a claim connection opened at `from` performs, with their
 * topics: the create operation (unless the certificate exists already) and
 * RegisterThing.
 */
export function claimOperations(
  settings: Settings,
  from: "start" | "certificate-created" = "start",
): { operation: Operation; topics: OperationTopics }[] {
  const format = settings.payloadFormat;
  const templateName = settings.fleetProvisioning.templateName;
  const operations: Operation[] = from === "start"
    ? [createOperationOf(settings), "RegisterThing"]
    : ["RegisterThing"];
  return operations.map((operation) => ({
    operation,
    topics: operationTopics(operation, { format, templateName }),
  }));
}

/**
 * Every answer topic the claim connection will wait on from `from` on, for
 * its one SUBSCRIBE at CONNACK: accepted and rejected of each operation.
 */
export function claimSubscriptions(
  settings: Settings,
  from: "start" | "certificate-created" = "start",
): string[] {
  return claimOperations(settings, from).flatMap(({ topics }) => [
    topics.accepted,
    topics.rejected,
  ]);
}

/** The claim connection of a first boot, action by action, in the order the broker checks them. */
export function claimPlan(settings: Settings, clientId = settings.clientId): ClaimPlan {
  const operations = claimOperations(settings);
  const subscriptions = claimSubscriptions(settings);
  const actions: PlannedAction[] = [
    { step: "connect", packet: "CONNECT", action: "iot:Connect", name: clientId, required: true },
    ...subscriptions.map((name): PlannedAction => ({
      step: "subscribe",
      packet: "SUBSCRIBE",
      action: "iot:Subscribe",
      name,
      required: true,
    })),
  ];
  for (const { operation, topics } of operations) {
    const step = operation;
    actions.push(
      { step, packet: "PUBLISH", action: "iot:Publish", name: topics.request, required: true },
      { step, packet: "delivery", action: "iot:Receive", name: topics.accepted, required: true },
      { step, packet: "delivery", action: "iot:Receive", name: topics.rejected, required: false },
    );
  }
  return {
    clientId,
    createOperation: createOperationOf(settings),
    operations,
    subscriptions,
    actions,
  };
}

/**
 * The proof: the new certificate connects as the thing RegisterThing named
 * (client id = thing name), with the thing attached to it, so its policies'
 * `${iot:Connection.Thing.*}` variables resolve. A device policy's other
 * actions (a rotation's topics) are planned beside it.
 */
export function proofPlan(thingName: string): PlannedAction[] {
  return [
    { step: "proof", packet: "CONNECT", action: "iot:Connect", name: thingName, required: true },
  ];
}
