// SPDX-License-Identifier: Apache-2.0
import { assert, assertEquals, assertThrows } from "./support/assert.ts";
import { operationTopics, routeOf } from "../src/protocol/mod.ts";
import { filterMatches } from "../src/emulator/mqtt/authorize.ts";
import { isAllowed } from "../src/policy/mod.ts";
import { claimPolicy, fpCertPolicy } from "../src/emulator/defaults.ts";

Deno.test("topics: request, accepted and rejected of each operation and format", () => {
  assertEquals(operationTopics("CreateKeysAndCertificate"), {
    request: "$aws/certificates/create/json",
    accepted: "$aws/certificates/create/json/accepted",
    rejected: "$aws/certificates/create/json/rejected",
  });
  assertEquals(
    operationTopics("CreateCertificateFromCsr", { format: "cbor" }).accepted,
    "$aws/certificates/create-from-csr/cbor/accepted",
  );
  assertEquals(
    operationTopics("RegisterThing", { templateName: "T1" }).rejected,
    "$aws/provisioning-templates/T1/provision/json/rejected",
  );
  assertThrows(() => operationTopics("RegisterThing"), Error, /template name/);
});

Deno.test("topics: the emulator routes every request and answer topic back to its operation", () => {
  for (
    const operation of [
      "CreateKeysAndCertificate",
      "CreateCertificateFromCsr",
      "RegisterThing",
    ] as const
  ) {
    for (const format of ["json", "cbor"] as const) {
      const topics = operationTopics(operation, { format, templateName: "Tmpl" });
      assertEquals(routeOf(topics.request), {
        operation,
        format,
        templateName: operation === "RegisterThing" ? "Tmpl" : undefined,
        answer: undefined,
      });
      assertEquals(routeOf(topics.accepted)?.answer, "accepted");
      assertEquals(routeOf(topics.rejected)?.answer, "rejected");
    }
  }
  assertEquals(routeOf("$aws/certificates/create/xml"), undefined);
  assertEquals(routeOf("$aws/things/x/shadow/get"), undefined);
});

Deno.test("topics: MQTT filter matching, with wildcards never matching $ topics at the first level", () => {
  const t = "$aws/certificates/create/json/accepted";
  assert(filterMatches(t, t));
  assert(filterMatches("$aws/certificates/create/json/+", t));
  assert(filterMatches("$aws/certificates/create/#", t));
  assert(filterMatches("$aws/certificates/create/json/accepted/#", t));
  assert(!filterMatches("#", t));
  assert(!filterMatches("+/certificates/create/json/accepted", t));
  assert(!filterMatches("$aws/certificates/create/json", t));
  assert(!filterMatches("$aws/certificates/create/json/accepted/x", t));
  assert(filterMatches("a/+/c", "a/b/c"));
  assert(!filterMatches("a/+", "a/b/c"));
});

Deno.test("topics: the claim policy allows the provisioning topics of its template only", () => {
  const policy = [claimPolicy("Tmpl")];
  const vars = { clientId: "c" };
  const ok = (action: "iot:Publish" | "iot:Subscribe" | "iot:Connect", name: string) =>
    isAllowed(policy, { action, name }, vars);
  assert(ok("iot:Connect", "anything"));
  assert(ok("iot:Publish", "$aws/certificates/create/json"));
  assert(ok("iot:Publish", "$aws/certificates/create-from-csr/cbor"));
  assert(ok("iot:Publish", "$aws/provisioning-templates/Tmpl/provision/json"));
  assert(ok("iot:Subscribe", "$aws/certificates/create/json/accepted"));
  assert(ok("iot:Subscribe", "$aws/provisioning-templates/Tmpl/provision/json/+"));
  assert(!ok("iot:Publish", "$aws/provisioning-templates/Other/provision/json"));
  assert(!ok("iot:Publish", "devices/telemetry"));
  assert(!ok("iot:Subscribe", "#"));
  assert(!ok("iot:Subscribe", "$aws/things/x/shadow/get"));
});

Deno.test("topics: FPCertPolicy binds connect and topics to the thing name; Deny wins", () => {
  const policy = [fpCertPolicy()];
  assert(
    isAllowed(policy, { action: "iot:Connect", name: "board-1" }, {
      clientId: "board-1",
      thingName: "board-1",
    }),
  );
  // Without an attached thing the variable is unresolved and nothing matches.
  assert(!isAllowed(policy, { action: "iot:Connect", name: "board-1" }, { clientId: "board-1" }));
  assert(
    isAllowed(policy, { action: "iot:Publish", name: "$aws/things/board-1/shadow/update" }, {
      clientId: "board-1",
      thingName: "board-1",
    }),
  );
  assert(
    !isAllowed(policy, { action: "iot:Publish", name: "$aws/things/board-2/shadow/update" }, {
      clientId: "board-1",
      thingName: "board-1",
    }),
  );
  const deny = { Statement: [{ Effect: "Deny", Action: "iot:*", Resource: "*" }] };
  assert(
    !isAllowed([...policy, deny], { action: "iot:Connect", name: "board-1" }, {
      clientId: "board-1",
      thingName: "board-1",
    }),
  );
});
