// Makes baileys7 trust a mock's root key, with its certificate signature check made strict (see the header of
// handshake.test.mjs for why both are needed: unmodified baileys7 accepts a chain signed by any key, because
// libsignal 6.0.0's verify returns false instead of throwing). Both objects are the live, mutable ones the
// package's socket reads at handshake time; restore() puts the originals back.
import { createRequire } from 'node:module';
import { b7Defaults, b7Crypto } from './clients.mjs';

const require = createRequire(import.meta.url);
const libsignalCurve = createRequire(require.resolve('baileys7'))('libsignal/src/curve.js');

const ORIGINAL_ROOT_KEY = b7Defaults.WA_CERT_DETAILS.PUBLIC_KEY;
const ORIGINAL_VERIFY = b7Crypto.Curve.verify;

/** Every verify call since the last trustMockRoot(): {pubKey (hex), valid}. */
export const verifyCalls = [];

export function trustMockRoot(rootPubKeyHex) {
  verifyCalls.length = 0;
  b7Defaults.WA_CERT_DETAILS.PUBLIC_KEY = Buffer.from(rootPubKeyHex, 'hex');
  b7Crypto.Curve.verify = (pubKey, message, signature) => {
    let valid;
    try {
      valid = libsignalCurve.verifySignature(b7Crypto.generateSignalPubKey(pubKey), message, signature) === true;
    } catch {
      valid = false;
    }
    verifyCalls.push({ pubKey: Buffer.from(pubKey).toString('hex'), valid });
    return valid;
  };
}

export function restoreB7() {
  b7Defaults.WA_CERT_DETAILS.PUBLIC_KEY = ORIGINAL_ROOT_KEY;
  b7Crypto.Curve.verify = ORIGINAL_VERIFY;
}
