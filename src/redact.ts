// Keeps secrets out of every stored or logged text. Errors are built without secrets at their source (the token
// endpoint's and Graph's own words go through `redact` before they become a message); `redact` is also the last
// step before a log line is written (src/log.ts) and before an error is stored in `cycles.error`.
//
// It removes two kinds of thing: the secrets this process knows (client secrets, certificate passwords, the
// database password, issued access tokens, client assertions), in the forms a hostile peer could echo them back
// (raw, form-encoded, percent-encoded, JSON-escaped); and whatever looks like a credential whatever its value
// (JWTs, PEM blocks, `Bearer …`, `client_secret=…` and similar fields).

export const REDACTED = "[redacted]";

/** Shorter values are not treated as secrets: redacting "a" would mangle every line while hiding nothing. */
const MIN_SECRET_LENGTH = 4;
/** Access tokens and assertions are renewed all the time: only the latest few are kept. */
const MAX_EPHEMERAL = 32;

const permanent = new Set<string>();
const ephemeral: string[] = [];
let knownPattern: RegExp | undefined;

const SHAPES: ReadonlyArray<[RegExp, string]> = [
  // PEM blocks (certificates, private keys), also when cut off before their END line.
  [/-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|$)/g, REDACTED],
  // JWTs: access tokens, client assertions, federated tokens.
  [/eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g, REDACTED],
  [/\b(Bearer|Basic)(\s+|%20|\+)[A-Za-z0-9._~+/=%-]+/gi, `$1$2${REDACTED}`],
  // name=value, "name":"value", name: value for fields that carry credentials (also percent-encoded); `sig` is a SAS
  // URL's signature, AccountKey and SharedAccessSignature a storage connection string's credential.
  [
    /\b(client_secret|client_assertion|access_token|refresh_token|id_token|assertion|password|passphrase|secret|sig|accountkey|sharedaccesssignature)((?:"|\\")?\s*(?:=|:|%3D)\s*(?:"|\\")?)([^&"\\\s,;}]+)/gi,
    `$1$2${REDACTED}`,
  ],
];

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The forms a secret can come back in: as is, form- or percent-encoded, JSON-escaped. */
function forms(secret: string): string[] {
  const form = new URLSearchParams({ s: secret }).toString().slice(2);
  return [secret, form, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)];
}

function rebuild(): void {
  const all = new Set<string>();
  for (const secret of [...permanent, ...ephemeral]) {
    for (const form of forms(secret)) {
      all.add(form);
    }
  }
  knownPattern =
    all.size === 0
      ? undefined
      : new RegExp(
          [...all]
            .sort((a, b) => b.length - a.length)
            .map(escapeRegExp)
            .join("|"),
          "g",
        );
}

/**
 * Remembers a secret so `redact` removes it wherever it turns up. `ephemeral` values (access tokens, assertions)
 * are forgotten after the latest MAX_EPHEMERAL; the shape rules still catch old JWTs.
 */
export function registerSecret(value: string | undefined, options: { ephemeral?: boolean } = {}): void {
  if (value === undefined || value.length < MIN_SECRET_LENGTH || permanent.has(value) || ephemeral.includes(value)) {
    return;
  }
  if (options.ephemeral) {
    ephemeral.push(value);
    if (ephemeral.length > MAX_EPHEMERAL) {
      ephemeral.shift();
    }
  } else {
    permanent.add(value);
  }
  rebuild();
}

/** Registers the secrets of a connection string (its password). */
export function registerUrlSecrets(url: string | undefined): void {
  if (url === undefined) {
    return;
  }
  try {
    const password = new URL(url).password;
    if (password) {
      registerSecret(decodeURIComponent(password));
    }
  } catch {
    // Not a URL (a libpq keyword string): nothing to take from it.
  }
}

/** `text` without any known secret or credential-shaped value. */
export function redact(text: string): string {
  let out = knownPattern ? text.replace(knownPattern, REDACTED) : text;
  for (const [pattern, replacement] of SHAPES) {
    out = out.replace(pattern, replacement);
  }
  return out;
}

/** `redact` for an optional text (a cycle's error, which is absent on success). */
export function redactOptional(text: string | undefined): string | undefined {
  return text === undefined ? undefined : redact(text);
}
