// Deterministic directory audit events (Graph's directoryAudit resource) per (tenant, UTC hour) bucket: user, group,
// role, application, policy and device changes, initiated by admins, by users themselves, or by apps.
import { APPS, CA_POLICIES } from "./catalog.ts";
import { stampAt } from "./events.ts";
import type { Stamp } from "./events.ts";
import { arrivalDelayMs, type GenConfig, type GenEvent } from "./generate.ts";
import { chance, hash32, int, mulberry32, pick, poisson, rngFor, uuid, weighted } from "./random.ts";
import type { Rng } from "./random.ts";
import { DAY_WEIGHT_SUM, hourWeight, tenantModel } from "./tenant.ts";
import type { ServicePrincipal, TenantModel, User } from "./tenant.ts";

const HOUR_MS = 3_600_000;

/** Default audit events per user per day (each a change to or by that user). */
const DEFAULT_AUDITS_PER_USER_PER_DAY = 2;

type Initiator = { user: User } | { app: { appId: string; displayName: string; servicePrincipalId: string } };

interface Ctx {
  model: TenantModel;
  rng: Rng;
  at: Stamp;
  /** The user the event is about (the subject, or the self-service actor). */
  user: User;
  admin: User;
}

interface Activity {
  weight: number;
  build: (c: Ctx) => Record<string, unknown>;
}

const GROUPS = [
  "All Employees",
  "Finance Team",
  "Engineering",
  "VPN Users",
  "SSPR Enabled Users",
  "Intune Pilot",
  "Sales EMEA",
  "Privileged Access Reviewers",
];
const ROLES: ReadonlyArray<readonly [string, string, string]> = [
  ["User Administrator", "fe930be7-5e62-47db-91af-98c3a49a38b1", "UserAccountAdmin"],
  ["Helpdesk Administrator", "729827e3-9c14-49f7-bb1b-9608f156bbb8", "HelpDeskAdmin"],
  ["Global Reader", "f2ef992c-3afb-46b9-b7cf-a126ee74c451", "GlobalReader"],
  ["Security Reader", "5d6b6bb7-de71-4623-b4af-96380a352509", "SecurityReader"],
  ["Application Administrator", "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "ApplicationAdministrator"],
  ["Global Administrator", "62e90394-69f5-4237-9190-012177145e10", "TenantAdmins"],
];
const ATTRIBUTES: ReadonlyArray<readonly [string, readonly string[]]> = [
  ["JobTitle", ["Analyst", "Senior Analyst", "Engineer", "Senior Engineer", "Manager", "Director"]],
  ["Department", ["Finance", "Sales", "Engineering", "IT", "HR", "Marketing", "Operations"]],
  ["Mobile", ["+44 7700 900123", "+1 206 555 0147", "+49 151 23456789", "+33 6 12 34 56 78"]],
  ["UsageLocation", ["US", "GB", "DE", "FR", "NL", "IN"]],
  ["AccountEnabled", ["true", "false"]],
];
const SYNC_APPS = [
  { appId: "cb1056e2-e479-49de-ae31-7812af012ed8", displayName: "Microsoft Azure AD Connect" },
  { appId: "0000000c-0000-0000-c000-000000000000", displayName: "Microsoft App Access Panel" },
  { appId: "d32c68ad-72d2-4acb-a0c7-46bb2cf93873", displayName: "Microsoft Substrate Management" },
];
const SECURITY_INFO = [
  "User registered Authenticator App with Notification and Code",
  "User registered Mobile Phone SMS",
  "User registered FIDO2 Security Key",
  "User changed default security info",
];
const USER_AGENTS = [
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
  "Microsoft Graph PowerShell SDK/2.19.0",
];

const json = (v: unknown): string => JSON.stringify(v);
const prop = (displayName: string, oldValue: string | null, newValue: string | null): Record<string, unknown> => ({
  displayName,
  oldValue,
  newValue,
});

function userInitiator(u: User): Record<string, unknown> {
  return {
    app: null,
    user: {
      id: u.id,
      displayName: u.displayName,
      userPrincipalName: u.upn,
      ipAddress: u.homeIp,
      userType: null,
      homeTenantId: null,
      homeTenantName: null,
    },
  };
}

function appInitiator(app: {
  appId: string;
  displayName: string;
  servicePrincipalId: string;
}): Record<string, unknown> {
  return { app: { ...app, servicePrincipalName: null }, user: null };
}

function userTarget(u: User, modifiedProperties: Array<Record<string, unknown>> = []): Record<string, unknown> {
  return {
    id: u.id,
    displayName: null,
    type: "User",
    userPrincipalName: u.upn,
    groupType: null,
    modifiedProperties,
  };
}

function target(
  type: string,
  id: string,
  displayName: string | null,
  modifiedProperties: Array<Record<string, unknown>> = [],
): Record<string, unknown> {
  return { id, displayName, type, userPrincipalName: null, groupType: null, modifiedProperties };
}

function included(props: Array<Record<string, unknown>>): Record<string, unknown> {
  return prop("Included Updated Properties", null, json(props.map((p) => p.displayName).join(", ")));
}

function initiatorFor(c: Ctx, by: Initiator): Record<string, unknown> {
  return "user" in by ? userInitiator(by.user) : appInitiator(by.app);
}

function syncApp(c: Ctx): Initiator {
  const a = pick(c.rng, SYNC_APPS);
  return { app: { ...a, servicePrincipalId: uuidFrom(c.model, a.appId) } };
}

/** A stable service principal id per (tenant, app). */
function uuidFrom(model: TenantModel, appId: string): string {
  return uuid(rngFor(model.seed, model.tenantId, "sp", appId));
}

const ACTIVITIES: readonly Activity[] = [
  {
    weight: 22,
    build: (c) => {
      const [name, values] = pick(c.rng, ATTRIBUTES);
      const oldV = pick(c.rng, values);
      let newV = pick(c.rng, values);
      if (newV === oldV) {
        newV = values[(values.indexOf(oldV) + 1) % values.length] ?? oldV;
      }
      const mods = [prop(name, json([oldV]), json([newV]))];
      const by: Initiator = chance(c.rng, 0.35) ? syncApp(c) : { user: c.admin };
      return {
        category: "UserManagement",
        activityDisplayName: "Update user",
        loggedByService: "Core Directory",
        operationType: "Update",
        initiatedBy: initiatorFor(c, by),
        targetResources: [userTarget(c.user, [...mods, included(mods)])],
        additionalDetails: [{ key: "UserType", value: c.user.guest ? "Guest" : "Member" }],
      };
    },
  },
  {
    weight: 4,
    build: (c) => {
      const mods = [
        prop("AccountEnabled", "[]", "[true]"),
        prop("DisplayName", "[]", json([c.user.displayName])),
        prop("UserPrincipalName", "[]", json([c.user.upn])),
        prop("UserType", "[]", json([c.user.guest ? "Guest" : "Member"])),
      ];
      return {
        category: "UserManagement",
        activityDisplayName: "Add user",
        loggedByService: "Core Directory",
        operationType: "Add",
        initiatedBy: userInitiator(c.admin),
        targetResources: [userTarget(c.user, [...mods, included(mods)])],
        additionalDetails: [{ key: "UserType", value: c.user.guest ? "Guest" : "Member" }],
      };
    },
  },
  {
    weight: 6,
    build: (c) => ({
      category: "UserManagement",
      activityDisplayName: "Reset password",
      loggedByService: "Core Directory",
      operationType: "Update",
      initiatedBy: userInitiator(c.admin),
      targetResources: [userTarget(c.user)],
      additionalDetails: [{ key: "User-Agent", value: pick(c.rng, USER_AGENTS) }],
    }),
  },
  {
    weight: 8,
    build: (c) => ({
      category: "UserManagement",
      activityDisplayName: "Reset password (self-service)",
      loggedByService: "Self-service Password Management",
      operationType: "Update",
      initiatedBy: userInitiator(c.user),
      targetResources: [userTarget(c.user)],
      additionalDetails: [],
      ...(chance(c.rng, 0.15) ? { result: "failure", resultReason: "User's account is locked" } : {}),
    }),
  },
  {
    weight: 14,
    build: (c) => {
      const name = pick(c.rng, GROUPS);
      const groupId = uuid(rngFor(c.model.seed, c.model.tenantId, "group", name));
      const add = chance(c.rng, 0.8);
      const mods = [prop("Group.ObjectID", null, json(groupId)), prop("Group.DisplayName", null, json(name))];
      return {
        category: "GroupManagement",
        activityDisplayName: add ? "Add member to group" : "Remove member from group",
        loggedByService: "Core Directory",
        operationType: add ? "Assign" : "Unassign",
        initiatedBy: initiatorFor(c, chance(c.rng, 0.3) ? syncApp(c) : { user: c.admin }),
        targetResources: [userTarget(c.user, mods), target("Group", groupId, null)],
        additionalDetails: [],
      };
    },
  },
  {
    weight: 7,
    build: (c) => {
      const joined = chance(c.rng, 0.5);
      const deviceId = uuid(c.rng);
      const name = joined
        ? c.user.desktop.displayName || `DESKTOP-${int(c.rng, 1000, 9999)}`
        : `${c.user.displayName}'s iPhone`;
      return {
        category: "Device",
        activityDisplayName: joined ? "Update device" : "Register device",
        loggedByService: "Core Directory",
        operationType: joined ? "Update" : "Add",
        initiatedBy: appInitiator({
          appId: "01cb2876-7ebd-4aa4-9cc9-d28bd4d359a9",
          displayName: "Device Registration Service",
          servicePrincipalId: uuidFrom(c.model, "01cb2876-7ebd-4aa4-9cc9-d28bd4d359a9"),
        }),
        targetResources: [
          target("Device", deviceId, name, [
            prop("DeviceOSType", null, json([joined ? "Windows" : "IphoneDevice"])),
            prop("DeviceTrustType", null, json([joined ? "AzureAd" : "Workplace"])),
          ]),
          userTarget(c.user),
        ],
        additionalDetails: [
          { key: "Device Id", value: deviceId },
          { key: "Device OS", value: joined ? "Windows" : "iOS" },
        ],
      };
    },
  },
];

/** A role holder's role: the same one each time they are assigned (again). */
function roleOf(u: User): readonly [string, string, string] {
  return (
    ROLES[hash32("role-of", u.id) % ROLES.length] ?? [
      "Global Reader",
      "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
      "GlobalReader",
    ]
  );
}

/** A role holder, the first of the tenant's list most often (some admins are assigned roles again and again). */
function roleHolder(model: TenantModel, rng: Rng): User | undefined {
  return model.privilegedUsers.length > 0
    ? weighted(
        rng,
        model.privilegedUsers.map((u, i) => [1 / (i + 1), u] as const),
      )
    : undefined;
}

const anyUser = (model: TenantModel, rng: Rng): User | undefined =>
  model.users.length > 0 ? pick(rng, model.users) : undefined;

/**
 * Activities at a tenant's rate rather than every user's: per day, `base` plus `per1000Users` for each 1,000 users. A
 * 5,000-user tenant gets about 3 role assignments (to its few dozen role holders), 11 consent grants and 21
 * security-info registrations a day, as real tenants of that size log; a per-user share of the audit volume gave
 * hundreds of each.
 */
export const TENANT_RATES = {
  roleAssignments: { base: 1.5, per1000Users: 0.3 },
  consentGrants: { base: 1, per1000Users: 2 },
  securityInfo: { base: 1, per1000Users: 4 },
} as const;

const RARE_ACTIVITIES: ReadonlyArray<{
  rate: { base: number; per1000Users: number };
  /** The user the event is about (undefined: none to be had). */
  subject: (model: TenantModel, rng: Rng) => User | undefined;
  build: (c: Ctx) => Record<string, unknown>;
}> = [
  {
    rate: TENANT_RATES.roleAssignments,
    subject: roleHolder,
    build: (c) => {
      const [name, templateId, wellKnown] = roleOf(c.user);
      const mods = [
        prop("Role.ObjectID", null, json(uuid(rngFor(c.model.seed, c.model.tenantId, "role", name)))),
        prop("Role.DisplayName", null, json(name)),
        prop("Role.TemplateId", null, json(templateId)),
        prop("Role.WellKnownObjectName", null, json(wellKnown)),
      ];
      return {
        category: "RoleManagement",
        activityDisplayName: "Add member to role",
        loggedByService: "Core Directory",
        operationType: "Assign",
        initiatedBy: userInitiator(c.admin),
        targetResources: [userTarget(c.user, mods), target("Role", templateId, name)],
        additionalDetails: [],
      };
    },
  },
  {
    rate: TENANT_RATES.consentGrants,
    subject: anyUser,
    build: (c) => {
      const app = pick(c.rng, APPS);
      const admin = chance(c.rng, 0.4);
      const actor = admin ? c.admin : c.user;
      const mods = [
        prop("ConsentContext.IsAdminConsent", null, json(admin ? "True" : "False")),
        prop("ConsentContext.IsAppOnly", null, json("False")),
        prop("ConsentContext.OnBehalfOfAll", null, json(admin ? "True" : "False")),
        prop(
          "ConsentAction.Permissions",
          null,
          json(
            `[] => [[Id: ${uuid(c.rng)}, ClientId: ${uuidFrom(c.model, app.appId)}, Scope:  User.Read openid profile offline_access]]; `,
          ),
        ),
      ];
      return {
        category: "ApplicationManagement",
        activityDisplayName: "Consent to application",
        loggedByService: "Core Directory",
        operationType: "Assign",
        initiatedBy: userInitiator(actor),
        targetResources: [target("ServicePrincipal", uuidFrom(c.model, app.appId), app.name, mods)],
        additionalDetails: [
          { key: "User-Agent", value: pick(c.rng, USER_AGENTS) },
          { key: "AppId", value: app.appId },
        ],
      };
    },
  },
  {
    rate: TENANT_RATES.securityInfo,
    subject: anyUser,
    build: (c) => ({
      category: "UserManagement",
      activityDisplayName: "User registered security info",
      loggedByService: "Authentication Methods",
      operationType: "Add",
      initiatedBy: userInitiator(c.user),
      targetResources: [userTarget(c.user)],
      additionalDetails: [],
      resultReason: pick(c.rng, SECURITY_INFO),
    }),
  },
];

/** Tenant-wide changes: not about one user (policies, application credentials, service principals). */
function tenantActivity(c: Ctx, sp: ServicePrincipal): Record<string, unknown> {
  if (chance(c.rng, 0.5)) {
    const i = int(c.rng, 0, CA_POLICIES.length - 1);
    const policy = CA_POLICIES[i] ?? { name: "Require MFA for all users", grant: ["Mfa"] };
    const id = c.model.caPolicyIds[i] ?? uuid(c.rng);
    const state = (s: string): string =>
      json({
        id,
        displayName: policy.name,
        state: s,
        grantControls: { operator: "OR", builtInControls: policy.grant },
      });
    const [from, to] = pick(c.rng, [
      ["enabledForReportingButNotEnforced", "enabled"],
      ["enabled", "enabled"],
      ["enabled", "disabled"],
    ] as const);
    return {
      category: "Policy",
      activityDisplayName: "Update conditional access policy",
      loggedByService: "Conditional Access",
      operationType: "Update",
      initiatedBy: userInitiator(c.admin),
      targetResources: [target("Policy", id, policy.name, [prop("ConditionalAccessPolicy", state(from), state(to))])],
      additionalDetails: [],
    };
  }
  const keyId = uuid(c.rng);
  return {
    category: "ApplicationManagement",
    activityDisplayName: "Update application – Certificates and secrets management ",
    loggedByService: "Core Directory",
    operationType: "Update",
    initiatedBy: userInitiator(c.admin),
    targetResources: [
      target("Application", uuidFrom(c.model, `app-object-${sp.appId}`), sp.name, [
        prop(
          "KeyDescription",
          "[]",
          json([`[KeyIdentifier=${keyId},KeyType=Password,KeyUsage=Verify,DisplayName=${sp.name} secret]`]),
        ),
        prop("Included Updated Properties", null, json("KeyDescription")),
      ]),
    ],
    additionalDetails: [
      { key: "User-Agent", value: pick(c.rng, USER_AGENTS) },
      { key: "AppId", value: sp.appId },
    ],
  };
}

function finish(c: Ctx, body: Record<string, unknown>): Record<string, unknown> {
  const correlationId = uuid(c.rng);
  const service = String(body.loggedByService);
  const prefix = service === "Core Directory" ? "Directory" : service === "Conditional Access" ? "IPCGraph" : "SSGM";
  const suffix = `${"ABCDEFGHJKLMNPQRSTUVWXYZ".charAt(int(c.rng, 0, 23))}${int(c.rng, 1000, 9999)}_${int(c.rng, 1e7, 9e7)}`;
  return {
    id: `${prefix}_${correlationId}_${suffix}`,
    category: body.category,
    correlationId,
    result: "success",
    resultReason: "",
    activityDisplayName: body.activityDisplayName,
    activityDateTime: c.at.text,
    loggedByService: body.loggedByService,
    operationType: body.operationType,
    initiatedBy: body.initiatedBy,
    targetResources: body.targetResources,
    additionalDetails: body.additionalDetails,
    ...(body.result !== undefined ? { result: body.result } : {}),
    ...(body.resultReason !== undefined ? { resultReason: body.resultReason } : {}),
  };
}

/** Generates every directory audit event within [hour*1h, (hour+1)*1h) for a tenant, sorted by time then id. */
export function generateAuditHour(cfg: GenConfig, tenantId: string, hour: number): GenEvent[] {
  const model = tenantModel(cfg.seed, tenantId, cfg.users);
  const hourMs = hour * HOUR_MS;
  const rng = rngFor(cfg.seed, tenantId, "audit-hour", hour);
  const perDay = cfg.auditsPerUserPerDay ?? DEFAULT_AUDITS_PER_USER_PER_DAY;
  // The directory changes admins make are the role holders'.
  const admins = model.privilegedUsers;
  const raw: Array<{ obj: Record<string, unknown>; at: Stamp }> = [];
  const at = (): Stamp => stampAt(hourMs + Math.floor(rng() * HOUR_MS), rng);
  const activities = ACTIVITIES.map((a) => [a.weight, a] as const);
  for (const user of model.users) {
    const d = new Date(hourMs + user.home.tz * HOUR_MS);
    const weekend = (d.getUTCDay() === 0 || d.getUTCDay() === 6) && cfg.quietWeekends !== false;
    const w = hourWeight(d.getUTCHours()) / DAY_WEIGHT_SUM;
    const n = poisson(rng, perDay * user.activity * w * (weekend ? 0.1 : 1));
    for (let i = 0; i < n; i++) {
      const c: Ctx = { model, rng, at: at(), user, admin: admins.length > 0 ? pick(rng, admins) : user };
      raw.push({ obj: finish(c, weighted(rng, activities).build(c)), at: c.at });
    }
  }
  // A couple of tenant-wide changes a day.
  const n = poisson(rng, (2 * hourWeight(((hour % 24) + 24) % 24)) / DAY_WEIGHT_SUM);
  for (let i = 0; i < n && model.users.length > 0; i++) {
    const user = pick(rng, model.users);
    const c: Ctx = { model, rng, at: at(), user, admin: admins.length > 0 ? pick(rng, admins) : user };
    const sp = model.servicePrincipals.length > 0 ? pick(rng, model.servicePrincipals) : undefined;
    if (sp) {
      raw.push({ obj: finish(c, tenantActivity(c, sp)), at: c.at });
    }
  }
  const utcWeight = hourWeight(((hour % 24) + 24) % 24) / DAY_WEIGHT_SUM;
  for (const a of RARE_ACTIVITIES) {
    for (let i = poisson(rng, (a.rate.base + (a.rate.per1000Users * cfg.users) / 1000) * utcWeight); i > 0; i--) {
      const user = a.subject(model, rng);
      if (user) {
        const c: Ctx = { model, rng, at: at(), user, admin: admins.length > 0 ? pick(rng, admins) : user };
        raw.push({ obj: finish(c, a.build(c)), at: c.at });
      }
    }
  }
  const lat = rngFor(cfg.seed, tenantId, "audit-latency", hour);
  const out: GenEvent[] = raw.map(({ obj, at: s }) => {
    const createdMs = s.sec * 1000 + s.frac / 10_000;
    const delay = arrivalDelayMs(cfg, lat);
    return { obj, sec: s.sec, frac: s.frac, types: [], visibleAtMs: Math.ceil(createdMs + delay) };
  });
  out.sort((a, b) => a.sec - b.sec || a.frac - b.frac || (String(a.obj.id) < String(b.obj.id) ? -1 : 1));
  return out;
}

/** One realistic directory audit event for tests; overrides are shallow-merged last. */
export function makeDirectoryAudit(
  seed = 1,
  overrides: Record<string, unknown> = {},
  opts: { tenantId?: string } = {},
): Record<string, unknown> {
  const rng = mulberry32(seed);
  const model = tenantModel(1, opts.tenantId ?? "00000000-0000-4000-8000-000000000001", 50);
  const user = pick(rng, model.users);
  const admins = model.privilegedUsers;
  const c: Ctx = {
    model,
    rng,
    at: stampAt(Date.now() - int(rng, 0, 3_600_000), rng),
    user,
    admin: admins.length > 0 ? pick(rng, admins) : user,
  };
  return {
    ...finish(
      c,
      weighted(
        rng,
        ACTIVITIES.map((a) => [a.weight, a] as const),
      ).build(c),
    ),
    ...overrides,
  };
}
