// SPDX-License-Identifier: Apache-2.0
/**
 * AWS IoT's REST routes (method, path template, operation) for the resource
 * families the emulator serves, from the AWS IoT API reference: a request is
 * matched to its operation by name, so one the emulator does not implement
 * gets an error naming it instead of a bare 404.
 *
 * @module
 */

/** "METHOD /path/{param} Operation", as in the API reference. */
const ROUTES = [
  "POST /attached-policies/{target} ListAttachedPolicies",
  "GET /billing-groups ListBillingGroups",
  "PUT /billing-groups/addThingToBillingGroup AddThingToBillingGroup",
  "PUT /billing-groups/removeThingFromBillingGroup RemoveThingFromBillingGroup",
  "DELETE /billing-groups/{billingGroupName} DeleteBillingGroup",
  "GET /billing-groups/{billingGroupName} DescribeBillingGroup",
  "PATCH /billing-groups/{billingGroupName} UpdateBillingGroup",
  "POST /billing-groups/{billingGroupName} CreateBillingGroup",
  "GET /billing-groups/{billingGroupName}/things ListThingsInBillingGroup",
  "POST /cacertificate RegisterCACertificate",
  "DELETE /cacertificate/{caCertificateId} DeleteCACertificate",
  "GET /cacertificate/{caCertificateId} DescribeCACertificate",
  "PUT /cacertificate/{caCertificateId} UpdateCACertificate",
  "GET /cacertificates ListCACertificates",
  "GET /certificates ListCertificates",
  "POST /certificates CreateCertificateFromCsr",
  "GET /certificates-by-ca/{caCertificateId} ListCertificatesByCA",
  "GET /certificates-out-going ListOutgoingCertificates",
  "DELETE /certificates/{certificateId} DeleteCertificate",
  "GET /certificates/{certificateId} DescribeCertificate",
  "PUT /certificates/{certificateId} UpdateCertificate",
  "GET /endpoint DescribeEndpoint",
  "POST /keys-and-certificate CreateKeysAndCertificate",
  "GET /policies ListPolicies",
  "DELETE /policies/{policyName} DeletePolicy",
  "GET /policies/{policyName} GetPolicy",
  "POST /policies/{policyName} CreatePolicy",
  "GET /policies/{policyName}/version ListPolicyVersions",
  "POST /policies/{policyName}/version CreatePolicyVersion",
  "DELETE /policies/{policyName}/version/{policyVersionId} DeletePolicyVersion",
  "GET /policies/{policyName}/version/{policyVersionId} GetPolicyVersion",
  "PATCH /policies/{policyName}/version/{policyVersionId} SetDefaultPolicyVersion",
  "POST /policy-targets/{policyName} ListTargetsForPolicy",
  "GET /principal-policies ListPrincipalPolicies",
  "DELETE /principal-policies/{policyName} DetachPrincipalPolicy",
  "PUT /principal-policies/{policyName} AttachPrincipalPolicy",
  "GET /principals/things ListPrincipalThings",
  "GET /provisioning-templates ListProvisioningTemplates",
  "POST /provisioning-templates CreateProvisioningTemplate",
  "DELETE /provisioning-templates/{templateName} DeleteProvisioningTemplate",
  "GET /provisioning-templates/{templateName} DescribeProvisioningTemplate",
  "PATCH /provisioning-templates/{templateName} UpdateProvisioningTemplate",
  "POST /provisioning-templates/{templateName}/provisioning-claim CreateProvisioningClaim",
  "GET /provisioning-templates/{templateName}/versions ListProvisioningTemplateVersions",
  "POST /provisioning-templates/{templateName}/versions CreateProvisioningTemplateVersion",
  "DELETE /provisioning-templates/{templateName}/versions/{versionId} DeleteProvisioningTemplateVersion",
  "GET /provisioning-templates/{templateName}/versions/{versionId} DescribeProvisioningTemplateVersion",
  "POST /target-policies/{policyName} DetachPolicy",
  "PUT /target-policies/{policyName} AttachPolicy",
  "GET /thing-groups ListThingGroups",
  "PUT /thing-groups/addThingToThingGroup AddThingToThingGroup",
  "PUT /thing-groups/removeThingFromThingGroup RemoveThingFromThingGroup",
  "PUT /thing-groups/updateThingGroupsForThing UpdateThingGroupsForThing",
  "DELETE /thing-groups/{thingGroupName} DeleteThingGroup",
  "GET /thing-groups/{thingGroupName} DescribeThingGroup",
  "PATCH /thing-groups/{thingGroupName} UpdateThingGroup",
  "POST /thing-groups/{thingGroupName} CreateThingGroup",
  "GET /thing-groups/{thingGroupName}/things ListThingsInThingGroup",
  "GET /thing-types ListThingTypes",
  "DELETE /thing-types/{thingTypeName} DeleteThingType",
  "GET /thing-types/{thingTypeName} DescribeThingType",
  "POST /thing-types/{thingTypeName} CreateThingType",
  "POST /thing-types/{thingTypeName}/deprecate DeprecateThingType",
  "GET /things ListThings",
  "POST /things RegisterThing",
  "DELETE /things/{thingName} DeleteThing",
  "GET /things/{thingName} DescribeThing",
  "PATCH /things/{thingName} UpdateThing",
  "POST /things/{thingName} CreateThing",
  "DELETE /things/{thingName}/principals DetachThingPrincipal",
  "GET /things/{thingName}/principals ListThingPrincipals",
  "PUT /things/{thingName}/principals AttachThingPrincipal",
  "GET /things/{thingName}/thing-groups ListThingGroupsForThing",
] as const;

interface Route {
  method: string;
  segments: string[];
  operation: string;
  literals: number;
}

const TABLE: Route[] = ROUTES.map((line) => {
  const [method, path, operation] = line.split(" ");
  const segments = path.split("/").slice(1);
  return {
    method,
    segments,
    operation,
    literals: segments.filter((s) => !s.startsWith("{")).length,
  };
});

/** A matched route: the operation and its path parameters (decoded). */
export interface RouteMatch {
  operation: string;
  params: Record<string, string>;
}

/**
 * The operation of `method` and the raw `path` (percent-encoded segments), or
 * undefined when AWS IoT has no such route among those listed. Literal
 * segments win over parameters (`/thing-groups/addThingToThingGroup`).
 */
export function matchRoute(method: string, path: string): RouteMatch | undefined {
  const raw = path.split("/").slice(1);
  if (raw.length > 0 && raw[raw.length - 1] === "") raw.pop();
  let best: RouteMatch | undefined;
  let bestLiterals = -1;
  for (const route of TABLE) {
    if (route.method !== method || route.segments.length !== raw.length) continue;
    const params: Record<string, string> = {};
    const matches = route.segments.every((segment, i) => {
      if (!segment.startsWith("{")) return segment === raw[i];
      try {
        params[segment.slice(1, -1)] = decodeURIComponent(raw[i]);
      } catch {
        return false;
      }
      return raw[i] !== "";
    });
    if (matches && route.literals > bestLiterals) {
      best = { operation: route.operation, params };
      bestLiterals = route.literals;
    }
  }
  return best;
}
