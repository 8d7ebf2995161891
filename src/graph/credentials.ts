// What proves our identity to the token endpoint: a client secret (inline or from a file), a certificate (a
// PS256-signed client assertion with an x5t#S256 header), or a federated token file (workload identity).

import {
  constants,
  createHash,
  createPrivateKey,
  type KeyObject,
  randomUUID,
  sign,
  X509Certificate,
} from "node:crypto";
import { readFile } from "node:fs/promises";

import { CredentialError } from "../errors.ts";
import { registerSecret } from "../redact.ts";

const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/**
 * Produces the credential fields of a client-credentials token request (fresh for each request). Every secret
 * value it hands out is registered with src/redact.ts first, so no error or log line built later can carry it.
 */
export type CredentialFields = (tokenUrl: string, now: Date) => Promise<Record<string, string>>;

export function secretFields(secret: string): CredentialFields {
  registerSecret(secret);
  return () => Promise.resolve({ client_secret: secret });
}

/** Reads the secret at every request, so a rotated Docker/Kubernetes secret is picked up without a restart. */
export function secretFileFields(path: string): CredentialFields {
  return async () => {
    const secret = (await readFile(path, "utf8")).trim();
    if (secret === "") {
      throw new CredentialError(`AZURE_CLIENT_SECRET_FILE ${path} is empty`, "empty_secret_file");
    }
    registerSecret(secret);
    return { client_secret: secret };
  };
}

/** A federated token (e.g. the AKS-projected service-account token) used as the client assertion; re-read each time. */
export function federatedFields(path: string): CredentialFields {
  return async () => {
    const assertion = (await readFile(path, "utf8")).trim();
    if (assertion === "") {
      throw new CredentialError(`AZURE_FEDERATED_TOKEN_FILE ${path} is empty`, "empty_federated_token");
    }
    registerSecret(assertion, { ephemeral: true });
    return { client_assertion_type: JWT_BEARER, client_assertion: assertion };
  };
}

interface LoadedCertificate {
  key: KeyObject;
  /** base64url SHA-256 of the certificate's DER: the `x5t#S256` header. */
  thumbprintS256: string;
  notAfter: Date;
}

/** Loads a PEM holding a certificate and its private key (optionally encrypted with `password`). */
async function loadCertificate(path: string, password: string | undefined): Promise<LoadedCertificate> {
  const pem = await readFile(path, "utf8");
  const certPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  const keyPem =
    /-----BEGIN (?:RSA |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |ENCRYPTED )?PRIVATE KEY-----/.exec(
      pem,
    )?.[0];
  if (!certPem || !keyPem) {
    throw new CredentialError(
      `AZURE_CLIENT_CERTIFICATE_PATH ${path} must hold both the certificate and its private key in PEM form`,
      "invalid_certificate",
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(password === undefined ? keyPem : { key: keyPem, passphrase: password });
  } catch (error) {
    throw new CredentialError(
      `cannot read the private key in ${path}: wrong or missing AZURE_CLIENT_CERTIFICATE_PASSWORD?`,
      "invalid_certificate",
      { cause: error },
    );
  }
  const cert = new X509Certificate(certPem);
  if (key.asymmetricKeyType !== "rsa" && key.asymmetricKeyType !== "rsa-pss") {
    throw new CredentialError(
      `the key in ${path} is ${String(key.asymmetricKeyType)}; Entra ID needs RSA`,
      "invalid_certificate",
    );
  }
  return {
    key,
    thumbprintS256: createHash("sha256").update(cert.raw).digest("base64url"),
    notAfter: new Date(cert.validTo),
  };
}

const base64url = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** The client assertion Entra ID expects for certificate credentials: PS256, x5t#S256, 10 minutes valid. */
function certificateAssertion(cert: LoadedCertificate, clientId: string, tokenUrl: string, now: Date): string {
  const iat = Math.floor(now.getTime() / 1000);
  const header = base64url({ alg: "PS256", typ: "JWT", "x5t#S256": cert.thumbprintS256 });
  const payload = base64url({
    aud: tokenUrl,
    iss: clientId,
    sub: clientId,
    jti: randomUUID(),
    nbf: iat,
    iat,
    exp: iat + 600,
  });
  const signature = sign("sha256", Buffer.from(`${header}.${payload}`), {
    key: cert.key,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
  });
  return `${header}.${payload}.${signature.toString("base64url")}`;
}

export function certificateFields(path: string, password: string | undefined, clientId: string): CredentialFields {
  let loaded: Promise<LoadedCertificate> | undefined;
  registerSecret(password);
  return async (tokenUrl, now) => {
    loaded ??= loadCertificate(path, password);
    const cert = await loaded;
    const assertion = certificateAssertion(cert, clientId, tokenUrl, now);
    registerSecret(assertion, { ephemeral: true });
    return { client_assertion_type: JWT_BEARER, client_assertion: assertion };
  };
}
