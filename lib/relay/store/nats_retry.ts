/**
 * Riding out short NATS outages: a server restarting, a client
 * reconnecting to another server of the cluster, a stream electing a new
 * leader after one was lost. Each request waits a short while; a request
 * that failed for one of those reasons is tried again until the store's
 * deadline, and only then does the call fail (with one line).
 *
 * @module
 */

/** Longest wait for one answer before trying again, ms. */
export const ATTEMPT_TIMEOUT_MS = 2_000;

/**
 * Whether an error means "no answer yet" (worth trying again) rather than
 * "no" (a refusal that another try would repeat).
 *
 * @example
 * ```ts
 * retryable(new Error("timeout")); // true
 * ```
 */
export function retryable(error: unknown): boolean {
  const name = (error as { name?: string })?.name ?? "";
  const message = (error as { message?: string })?.message ?? "";
  const status = (error as { status?: number })?.status;
  // A stream with no leader yet answers a publish with "no responders", which the client
  // reports as JetStream not enabled; a store that opened knows better.
  return name === "TimeoutError" || name === "NoRespondersError" || name === "RequestError" ||
    name === "ConnectionError" || name === "JetStreamNotEnabled" || status === 503 ||
    /timeout|no responders|disconnect|temporarily unavailable|no suitable peers/i.test(message);
}

/**
 * Runs `task`, trying again after failures `worthRetrying` accepts (by
 * default {@linkcode retryable}; waiting 50 ms, then twice as long each
 * time, at most 1 s) until `timeoutMs` have passed.
 *
 * @example
 * ```ts
 * const info = await retrying(() => jsm.streams.info(name), 5_000);
 * ```
 */
export async function retrying<T>(
  task: () => Promise<T>,
  timeoutMs: number,
  worthRetrying: (error: unknown) => boolean = retryable,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let wait = 50;
  for (;;) {
    try {
      return await task();
    } catch (error) {
      if (!worthRetrying(error) || Date.now() + wait > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 1_000);
    }
  }
}
