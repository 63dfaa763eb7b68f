/** TLS certificates and keys from files: loading, checking, and noticing that they changed. */
import { createPrivateKey, X509Certificate } from "node:crypto";

export type ClientAuth = "none" | "optional" | "required";

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** CA bundle for client certificates; needed unless clientAuth is "none". */
  caFile?: string;
  clientAuth: ClientAuth;
  /** Passphrase of an encrypted private key. */
  passphrase?: string;
}

export interface TlsMaterial {
  cert: string;
  /** Always unencrypted PKCS#8 PEM, so Deno.serve (which takes no passphrase) can use it too. */
  key: string;
  ca?: string;
  /** For log lines: subject and expiry of the leaf certificate. */
  summary: string;
}

export function loadTlsMaterial(files: TlsFiles): TlsMaterial {
  const read = (what: string, path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch (err) {
      throw new Error(`cannot read TLS ${what} ${path}: ${(err as Error).message}`);
    }
  };
  const cert = read("certificate", files.certFile);
  const rawKey = read("private key", files.keyFile);
  let key: string;
  try {
    key = createPrivateKey({ key: rawKey, passphrase: files.passphrase || undefined })
      .export({ type: "pkcs8", format: "pem" }) as string;
  } catch (err) {
    throw new Error(`cannot use TLS private key ${files.keyFile}: ${(err as Error).message}`);
  }
  let x: X509Certificate;
  try {
    x = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`cannot parse TLS certificate ${files.certFile}: ${(err as Error).message}`);
  }
  // A renewal caught between writing the certificate and the key must not install a mismatch.
  if (!x.checkPrivateKey(createPrivateKey(key))) {
    throw new Error(`TLS private key ${files.keyFile} does not match ${files.certFile}`);
  }
  const summary = `${x.subject.replace(/\n/g, ", ")}, valid until ${x.validTo}`;
  let ca: string | undefined;
  if (files.clientAuth !== "none") {
    if (!files.caFile) {
      throw new Error(
        "client certificates are requested (ssl-client-auth) but no CA is configured " +
          "(mqttwk.broker.ssl-ca-file)",
      );
    }
    ca = read("client CA", files.caFile);
  }
  return { cert, key, ca, summary };
}

/** Modification times of the files, to notice a certificate renewal without a SIGHUP. */
export function fileStamp(files: TlsFiles): string {
  return [files.certFile, files.keyFile, files.clientAuth !== "none" ? files.caFile : undefined]
    .filter((p): p is string => !!p)
    .map((p) => {
      try {
        const s = Deno.statSync(p);
        return `${p}:${s.mtime?.getTime()}:${s.size}`;
      } catch {
        return `${p}:missing`;
      }
    }).join("|");
}
