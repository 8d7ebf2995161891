// Static reference data for the synthetic tenant: places, apps, error codes.

export interface City {
  city: string;
  state: string;
  country: string;
  lat: number;
  lon: number;
  tz: number; // UTC offset in hours (no DST; good enough for a daily rhythm)
}

const c = (city: string, state: string, country: string, lat: number, lon: number, tz: number): City => ({
  city,
  state,
  country,
  lat,
  lon,
  tz,
});

/** Cities where employees live and work. */
export const HOME_CITIES: readonly City[] = [
  c("Seattle", "Washington", "US", 47.6062, -122.3321, -8),
  c("New York", "New York", "US", 40.7128, -74.006, -5),
  c("Chicago", "Illinois", "US", 41.8781, -87.6298, -6),
  c("Austin", "Texas", "US", 30.2672, -97.7431, -6),
  c("London", "England", "GB", 51.5074, -0.1278, 0),
  c("Leeds", "England", "GB", 53.7996, -1.5491, 0),
  c("Manchester", "England", "GB", 53.4808, -2.2426, 0),
  c("Berlin", "Berlin", "DE", 52.52, 13.405, 1),
  c("Munich", "Bayern", "DE", 48.1351, 11.582, 1),
  c("Frankfurt", "Hessen", "DE", 50.1109, 8.6821, 1),
  c("Paris", "Ile-de-France", "FR", 48.8566, 2.3522, 1),
  c("Lyon", "Auvergne-Rhone-Alpes", "FR", 45.764, 4.8357, 1),
  c("Amsterdam", "Noord-Holland", "NL", 52.3676, 4.9041, 1),
  c("Dublin", "Dublin", "IE", 53.3498, -6.2603, 0),
  c("Bengaluru", "Karnataka", "IN", 12.9716, 77.5946, 5.5),
  c("Mumbai", "Maharashtra", "IN", 19.076, 72.8777, 5.5),
  c("Tokyo", "Tokyo", "JP", 35.6762, 139.6503, 9),
  c("Sydney", "New South Wales", "AU", -33.8688, 151.2093, 10),
  c("Sao Paulo", "Sao Paulo", "BR", -23.5505, -46.6333, -3),
  c("Toronto", "Ontario", "CA", 43.6532, -79.3832, -5),
  c("Singapore", "Singapore", "SG", 1.3521, 103.8198, 8),
  c("Madrid", "Madrid", "ES", 40.4168, -3.7038, 1),
  c("Stockholm", "Stockholm", "SE", 59.3293, 18.0686, 1),
  c("Warsaw", "Mazowieckie", "PL", 52.2297, 21.0122, 1),
];

/** Places attacks come from (never a home city). */
export const FOREIGN_CITIES: readonly City[] = [
  c("Moscow", "Moscow", "RU", 55.7558, 37.6173, 3),
  c("Shanghai", "Shanghai", "CN", 31.2304, 121.4737, 8),
  c("Lagos", "Lagos", "NG", 6.5244, 3.3792, 1),
  c("Hanoi", "Ha Noi", "VN", 21.0278, 105.8342, 7),
  c("Bucharest", "Bucuresti", "RO", 44.4268, 26.1025, 2),
];

export const FIRST_NAMES = [
  "Priya",
  "James",
  "Maria",
  "Wei",
  "Fatima",
  "Lukas",
  "Sofia",
  "Mohammed",
  "Emma",
  "Hiroshi",
  "Olivia",
  "Carlos",
  "Aisha",
  "Noah",
  "Ingrid",
  "Rahul",
  "Chloe",
  "Mateo",
  "Hannah",
  "Kenji",
  "Amelia",
  "Oluwaseun",
  "Lena",
  "Diego",
  "Grace",
  "Arjun",
  "Zoe",
  "Pierre",
  "Mia",
  "Tomasz",
] as const;
export const LAST_NAMES = [
  "Natarajan",
  "Smith",
  "Garcia",
  "Chen",
  "Khan",
  "Muller",
  "Rossi",
  "Ali",
  "Johnson",
  "Tanaka",
  "Brown",
  "Silva",
  "Okafor",
  "Williams",
  "Larsen",
  "Sharma",
  "Martin",
  "Lopez",
  "Schmidt",
  "Sato",
  "Taylor",
  "Adeyemi",
  "Fischer",
  "Fernandez",
  "Kelly",
  "Patel",
  "Dubois",
  "Kowalski",
  "Nguyen",
  "Walsh",
] as const;
export const DEPARTMENTS = [
  "Sales",
  "Engineering",
  "Finance",
  "HR",
  "Marketing",
  "IT",
  "Legal",
  "Operations",
  "Support",
];
export const DOMAINS = ["northwind", "fabrikam", "contoso", "tailspin", "woodgrove", "adatum", "litware", "proseware"];

export interface App {
  appId: string;
  name: string;
  resourceId: string;
  resource: string;
  weight: number; // interactive
  niWeight: number; // non-interactive
  admin?: boolean;
}
const EXO = ["00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online"] as const;
const SPO = ["00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online"] as const;
const GRAPH = ["00000003-0000-0000-c000-000000000000", "Microsoft Graph"] as const;
const ARM = ["797f4846-ba00-4fd7-ba43-dac1f8f63013", "Windows Azure Service Management API"] as const;
const AAD = ["00000002-0000-0000-c000-000000000000", "Windows Azure Active Directory"] as const;
const TEAMS_SVC = ["cc15fd57-2c6c-4117-a88c-83b1d56b4bbe", "Microsoft Teams Services"] as const;
const app = (
  appId: string,
  name: string,
  r: readonly [string, string],
  weight: number,
  niWeight: number,
  admin = false,
): App => ({ appId, name, resourceId: r[0], resource: r[1], weight, niWeight, admin });

export const APPS: readonly App[] = [
  app(EXO[0], EXO[1], EXO, 20, 4),
  app("4765445b-32c6-49b0-83e6-1d93765276ca", "OfficeHome", GRAPH, 12, 2),
  app("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams", TEAMS_SVC, 18, 20),
  app(SPO[0], SPO[1], SPO, 12, 3),
  app("d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Office", EXO, 10, 12),
  app("c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Azure Portal", ARM, 4, 1, true),
  app("14d82eec-204b-4c2f-b7e8-296a70dab67e", "Microsoft Graph Command Line Tools", GRAPH, 1.5, 0.5, true),
  app("04b07795-8ddb-461a-bbee-02f9e1bf7b46", "Microsoft Azure CLI", ARM, 1.5, 1, true),
  app("1950a258-227b-4e31-a9cf-717495945fc2", "Microsoft Azure PowerShell", ARM, 1, 0.5, true),
  app("19db86c3-b2b9-44cc-b339-36da233a3be2", "My Signins", GRAPH, 1, 0),
  app("38aa3b87-a06d-4817-b275-7a316988d93b", "Windows Sign In", AAD, 6, 2),
  app("27922004-5251-4030-b22d-91ecd9a37ea4", "Outlook Mobile", EXO, 5, 10),
  app("ab9b8c07-8f02-4f72-87fa-80105867a763", "OneDrive SyncEngine", SPO, 2, 10),
  app("29d9ed98-a469-4536-ade2-f981bc1d605e", "Microsoft Authentication Broker", AAD, 0, 8),
  app("ecd6b820-32c2-49b6-98a6-444530e5a77a", "Microsoft Edge", GRAPH, 0, 6),
];
export const SPRAY_APPS: readonly App[] = [
  app("1b730954-1685-4b74-9bfd-dac224a7b894", "Azure Active Directory PowerShell", AAD, 1, 0),
  app(EXO[0], EXO[1], EXO, 1, 0),
  app("d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Office", EXO, 1, 0),
];

export const LEGACY_CLIENTS = ["IMAP", "POP", "SMTP", "Exchange ActiveSync", "MAPI", "other clients"];

/** [weight, errorCode, failureReason] for failed interactive sign-ins. */
// Non-zero codes of interactive sign-ins. Interrupts (50140 "keep me signed in", 50074/50076 "MFA required",
// 16000 account picker, 50058 silent SSO) are the commonest in real tenants, well ahead of bad passwords.
export const INTERACTIVE_FAILURES: ReadonlyArray<readonly [number, readonly [number, string]]> = [
  [14, [50126, "Error validating credentials due to invalid username or password."]],
  [22, [50074, "Strong Authentication is required."]],
  [28, [50140, "This error occurred due to 'Keep me signed in' interrupt when the user was signing in."]],
  [6, [500121, "Authentication failed during strong authentication request."]],
  [
    6,
    [53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."],
  ],
  [
    8,
    [
      50076,
      "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access.",
    ],
  ],
  [
    5,
    [
      16000,
      "Either multiple user identities are available for the current request or selected account is not supported for the scenario.",
    ],
  ],
  [3, [50053, "Account is locked because user tried to sign in too many times with an incorrect user ID or password."]],
  [2, [50057, "User account is disabled. The account has been disabled by an administrator."]],
  [2, [50055, "Invalid password, entered expired password."]],
  [4, [50058, "Session information is not sufficient for single-sign-on."]],
  [
    1,
    [
      700016,
      "Application with identifier was not found in the directory. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
    ],
  ],
];
/** authenticationStepResultDetail (and status.additionalDetails) of a denied MFA prompt (500121), weighted. */
export const MFA_DENIALS: ReadonlyArray<readonly [number, string]> = [
  [6, "MFA denied; user declined the authentication"],
  [3, "MFA denied; user did not respond to mobile app notification"],
  [1, "MFA denied; Phone App Reported Fraud"],
];
export const NON_INTERACTIVE_FAILURES: ReadonlyArray<readonly [number, readonly [number, string]]> = [
  [5, [50173, "The provided grant has expired due to it being revoked, a fresh auth token is needed."]],
  [4, [70043, "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access."]],
  [3, [50133, "Session is invalid due to expiration or recent password change."]],
  [
    2,
    [53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."],
  ],
];
export const SP_FAILURES: ReadonlyArray<readonly [number, readonly [number, string]]> = [
  [
    5,
    [
      7000215,
      "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
    ],
  ],
  [3, [7000222, "The provided client secret keys for app are expired."]],
  [2, [700027, "Client assertion failed signature validation."]],
];
/** Errors where primary authentication did not complete (CA is not evaluated). */
export const PRIMARY_AUTH_FAILURES = new Set([50126, 50053, 50057, 50055, 700016]);

export interface Device {
  os: string;
  browser: (v: number) => string;
  ua: (v: number) => string;
  trust: string[];
  mobile: boolean;
}
export const DESKTOPS: ReadonlyArray<readonly [number, Device]> = [
  [
    45,
    {
      os: "Windows 10",
      browser: (v) => `Edge ${v}.0.0`,
      ua: (v) =>
        `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${v}.0.0.0 Safari/537.36 Edg/${v}.0.0.0`,
      trust: ["Azure AD joined", "Hybrid Azure AD joined"],
      mobile: false,
    },
  ],
  [
    25,
    {
      os: "Windows 11",
      browser: (v) => `Chrome ${v}.0.0`,
      ua: (v) =>
        `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${v}.0.0.0 Safari/537.36`,
      trust: ["Azure AD joined"],
      mobile: false,
    },
  ],
  [
    15,
    {
      os: "MacOs",
      browser: (v) => `Safari ${Math.floor(v / 7)}.1`,
      ua: (v) =>
        `Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${Math.floor(v / 7)}.1 Safari/605.1.15`,
      trust: ["Azure AD registered", ""],
      mobile: false,
    },
  ],
  [
    4,
    {
      os: "Linux",
      browser: (v) => `Firefox ${v}.0`,
      ua: (v) => `Mozilla/5.0 (X11; Linux x86_64; rv:${v}.0) Gecko/20100101 Firefox/${v}.0`,
      trust: [""],
      mobile: false,
    },
  ],
];
export const MOBILES: ReadonlyArray<readonly [number, Device]> = [
  [
    55,
    {
      os: "Ios 17",
      browser: (v) => `Mobile Safari ${Math.floor(v / 7)}.0`,
      ua: (v) =>
        `Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/${Math.floor(v / 7)}.0 Mobile/15E148 Safari/604.1`,
      trust: ["Azure AD registered", ""],
      mobile: true,
    },
  ],
  [
    45,
    {
      os: "Android 14",
      browser: (v) => `Chrome Mobile ${v}.0.0`,
      ua: (v) =>
        `Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${v}.0.0.0 Mobile Safari/537.36`,
      trust: ["Azure AD registered", ""],
      mobile: true,
    },
  ],
];
export const SPRAY_USER_AGENTS = [
  "python-requests/2.31.0",
  "BAV2ROPC",
  "Mozilla/5.0 (compatible; MSAL 1.0)",
  "Go-http-client/1.1",
];

// Real tenants list ~9 policies per sign-in, most notEnabled (disabled) or notApplied; the first five are evaluated
// by the simulator, the rest carry their fixed `result`.
export const CA_POLICIES: ReadonlyArray<{ name: string; grant: readonly string[]; result?: string }> = [
  { name: "Require MFA for all users", grant: ["Mfa"] },
  { name: "Block legacy authentication", grant: ["Block"] },
  { name: "Require compliant device for admin portals", grant: ["RequireCompliantDevice"] },
  { name: "Block access from untrusted countries", grant: ["Block"] },
  { name: "Require MFA for Azure management", grant: ["Mfa"] },
  { name: "Legacy: require terms of use for guests", grant: ["TermsOfUse"], result: "notEnabled" },
  { name: "Pilot: token protection for Exchange Online", grant: [], result: "notEnabled" },
  { name: "Require password change for high user risk", grant: ["Mfa", "PasswordChange"], result: "notApplied" },
  {
    name: "Report-only: phishing-resistant MFA for admins",
    grant: ["AuthenticationStrength"],
    result: "reportOnlyNotApplied",
  },
  { name: "Old: block downloads on unmanaged devices", grant: [], result: "notEnabled" },
];
export const UNTRUSTED_COUNTRIES = new Set(["RU", "CN", "NG", "VN"]);

export const SERVICE_PRINCIPALS = [
  "HR Sync Connector",
  "Backup Orchestrator",
  "SIEM Log Collector",
  "Build Pipeline (CI)",
  "Invoice Processing Bot",
  "Terraform Deployer",
];
export const MANAGED_IDENTITIES = [
  "/subscriptions/{sub}/resourceGroups/rg-web/providers/Microsoft.Web/sites/intranet-web",
  "/subscriptions/{sub}/resourceGroups/rg-data/providers/Microsoft.Compute/virtualMachines/etl-vm01",
  "/subscriptions/{sub}/resourceGroups/rg-ops/providers/Microsoft.Logic/workflows/ticket-router",
];

/** Public-looking first octets for synthetic IPv4 prefixes (avoids private ranges). */
export const IPV4_FIRST_OCTETS = [
  20, 23, 31, 37, 45, 51, 62, 77, 81, 86, 91, 94, 102, 103, 109, 145, 151, 176, 185, 188, 193, 194, 195, 212, 213, 217,
];

/**
 * Autonomous systems (real ASNs of each country's large broadband and mobile networks) that a country's addresses
 * belong to: an address's /24 (IPv6: its first three groups) picks one (asnFor), so a user's home and phone
 * addresses keep their ASNs and a trip brings one of the few others of the country. "AZ" is Azure (Microsoft's 8075,
 * the published examples' 3598 is Microsoft's corporate network).
 */
export const COUNTRY_ASNS: Readonly<Record<string, readonly number[]>> = {
  US: [7922, 7018, 701, 20115, 22773],
  GB: [2856, 5089, 5607, 12576],
  DE: [3320, 3209, 6805, 8881],
  FR: [3215, 12322, 5410, 15557],
  NL: [1136, 33915, 50266],
  IE: [5466, 6830, 15502],
  IN: [9829, 24560, 55836, 17488],
  JP: [2516, 4713, 17676],
  AU: [1221, 4804, 7545],
  BR: [28573, 18881, 26599],
  CA: [812, 577, 852],
  SG: [9506, 4657, 17547],
  ES: [3352, 12479, 12430],
  SE: [3301, 1257, 8473],
  PL: [5617, 12912, 29314],
  RU: [12389, 8359, 31213],
  CN: [4134, 4837, 9808],
  NG: [29465, 36873, 37148],
  VN: [7552, 45899, 18403],
  RO: [8708, 9050],
  AZ: [8075],
};

/**
 * Hosting and VPN providers' networks (first two octets, none a country's prefix from IPV4_FIRST_OCTETS) with the
 * ASN and the city their addresses geolocate to: where an AiTM proxy or a personal VPN signs in from.
 */
export const HOSTING_NETWORKS: ReadonlyArray<{ prefix: string; asn: number; name: string; city: string }> = [
  { prefix: "159.89", asn: 14061, name: "DigitalOcean", city: "Amsterdam" },
  { prefix: "95.216", asn: 24940, name: "Hetzner", city: "Frankfurt" },
  { prefix: "146.70", asn: 9009, name: "M247", city: "Bucharest" },
  { prefix: "147.135", asn: 16276, name: "OVH", city: "Paris" },
  { prefix: "149.28", asn: 20473, name: "Vultr", city: "Singapore" },
];
