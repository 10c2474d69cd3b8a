/**
 * `deno task bench:kem`: ML-KEM-768 and X-Wing key generation,
 * encapsulation and decapsulation times, for every implementation this
 * runtime has (noble always; native where `node:crypto` has ML-KEM). Also
 * runs under Node 24.7+ (`node bench/kem.ts`, types stripped), where the
 * native path exists.
 *
 * @module
 */

import process from "node:process";
import {
  hasNativeMlKem768,
  type MlKem768,
  nativeMlKem768,
  nativeXWing,
  nobleMlKem768,
  nobleXWing,
  type XWing,
} from "../lib/crypto/kem.ts";

const ROUNDS = Number(process.env.KEM_BENCH_ROUNDS ?? 200);

/** Mean milliseconds per call after a warm-up. */
function time(run: () => unknown): number {
  for (let i = 0; i < 20; i++) run();
  const start = performance.now();
  for (let i = 0; i < ROUNDS; i++) run();
  return (performance.now() - start) / ROUNDS;
}

function measure(name: string, kem: MlKem768 | XWing): string {
  const { publicKey, secretKey } = kem.keygen();
  const { cipherText } = kem.encapsulate(publicKey);
  const keygen = time(() => kem.keygen());
  const encapsulate = time(() => kem.encapsulate(publicKey));
  const decapsulate = time(() => kem.decapsulate(cipherText, secretKey));
  const cell = (ms: number) => `${ms.toFixed(3)} ms`.padStart(10);
  return `| ${name.padEnd(20)} | ${cell(keygen)} | ${cell(encapsulate)} | ${cell(decapsulate)} |`;
}

const runtime = "Deno" in globalThis ? "Deno" : `Node ${process.version}`;
console.log(`${runtime}, ${ROUNDS} rounds each (KEM_BENCH_ROUNDS)`);
console.log("| implementation       |     keygen |     encaps |     decaps |");
console.log("| -------------------- | ---------: | ---------: | ---------: |");
console.log(measure("ML-KEM-768 noble", nobleMlKem768));
console.log(measure("X-Wing noble", nobleXWing));
if (hasNativeMlKem768()) {
  console.log(measure("ML-KEM-768 native", nativeMlKem768));
  console.log(measure("X-Wing native", nativeXWing));
} else {
  console.log("(no native ML-KEM-768 in this runtime)");
}
