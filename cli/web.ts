/**
 * `securechat web`: serves the web client, a single page built into this
 * program, on the user's own loopback address. The page runs securechat's
 * own lib/ code in the browser (crypto included) and talks to any relay over
 * WebSocket; serving it from the user's executable rather than from a relay
 * keeps the trust model of the terminal client, since whoever serves the
 * page's code could swap it.
 *
 * Only loopback addresses are served unless `--allow-remote` says otherwise:
 * the page is plain HTTP, and over a network anyone on the path could
 * replace its code and take the identity it unlocks. The server answers only
 * requests whose `Host` names a loopback host and its own port (a web site
 * that rebinds its name to 127.0.0.1 gets nothing), sends a strict
 * Content-Security-Policy, and serves three files from memory.
 *
 * @module
 */

import { Command } from "commander";
import { spawn } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import process from "node:process";
import { gzipSync } from "node:zlib";
import { formatServerAddress, type ServerAddress } from "../lib/identity/server_address.ts";
import { socketErrorText } from "../lib/core/errors.ts";
import { CliError, ExitCode } from "./exit_codes.ts";
import { serverAddress } from "./options.ts";

/** Default address of the page. */
export const DEFAULT_WEB_LISTEN: ServerAddress = { host: "127.0.0.1", port: 7879 };

/**
 * The page's Content-Security-Policy: its own script and style only, no
 * inline code, no frames, no forms, and network access only to WebSockets
 * (relays live anywhere, so any ws:/wss: host).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src ws: wss:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const HEADERS: Record<string, string> = {
  "Content-Security-Policy": CONTENT_SECURITY_POLICY,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "X-Frame-Options": "DENY",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
  "Cache-Control": "no-store",
};

interface WebOptions {
  listen: ServerAddress;
  open?: boolean;
  allowRemote?: boolean;
}

/** One file of the page, kept in memory plain and gzipped. */
interface Asset {
  type: string;
  body: Uint8Array;
  gzipped: Uint8Array;
}

/**
 * Whether `host` is a loopback address or name (127.0.0.0/8, ::1, localhost).
 *
 * @example
 * ```ts
 * isLoopbackHost("127.0.0.1"); // true
 * isLoopbackHost("0.0.0.0"); // false
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Builds the `web` sub-command.
 *
 * @example
 * ```ts
 * program.addCommand(webCommand());
 * ```
 */
export function webCommand(): Command {
  const shown = formatServerAddress(DEFAULT_WEB_LISTEN);
  return new Command("web")
    .description("serve the web client (a page built into this program) on this computer")
    .option(
      "--listen <host:port>",
      `where to serve the page (default ${shown}); port 0 picks a free one`,
      (text: string) => serverAddress(text, { allowPortZero: true }),
      DEFAULT_WEB_LISTEN,
    )
    .option("--open", "open the page in the default browser")
    .option(
      "--allow-remote",
      "serve on a non-loopback address (plain HTTP: anyone on the network path could swap the code)",
    )
    .action((options: WebOptions) => runWeb(options));
}

async function loadAssets(): Promise<Map<string, Asset>> {
  let page: { PAGE_HTML: string; PAGE_CSS: string; PAGE_SCRIPT: string };
  try {
    page = await import("../web/page.generated.ts");
  } catch {
    throw new CliError(
      "the web page is not built into this program; run `deno task build:web` (part of " +
        "`deno task build`) first",
      ExitCode.failure,
    );
  }
  const asset = (type: string, text: string): Asset => {
    const body = new TextEncoder().encode(text);
    return { type, body, gzipped: gzipSync(body, { level: 9 }) };
  };
  return new Map([
    ["/", asset("text/html; charset=utf-8", page.PAGE_HTML)],
    ["/app.css", asset("text/css; charset=utf-8", page.PAGE_CSS)],
    ["/app.js", asset("text/javascript; charset=utf-8", page.PAGE_SCRIPT)],
  ]);
}

/** Whether a request's `Host` names this server: a loopback name or address, and our port. */
function hostAllowed(header: string | undefined, port: number, listen: ServerAddress): boolean {
  if (header === undefined) return false;
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:]+)(?::(\d+))?$/.exec(header);
  if (!match || Number(match[2] ?? "80") !== port) return false;
  const host = match[1].replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return isLoopbackHost(host) || host === listen.host.toLowerCase();
}

function respond(
  response: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body?: Uint8Array | string,
): void {
  response.writeHead(status, { ...HEADERS, ...headers });
  response.end(body);
}

function handler(assets: Map<string, Asset>, listen: ServerAddress, port: () => number) {
  return (request: IncomingMessage, response: ServerResponse) => {
    const text = { "Content-Type": "text/plain; charset=utf-8" };
    if (!hostAllowed(request.headers.host, port(), listen)) {
      respond(response, 421, text, "this page is served only as http://127.0.0.1 or localhost\n");
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      respond(response, 405, { ...text, Allow: "GET, HEAD" }, "only GET\n");
      return;
    }
    const path = (request.url ?? "/").split("?")[0];
    if (path === "/favicon.ico") {
      respond(response, 204, {});
      return;
    }
    const asset = assets.get(path);
    if (asset === undefined) {
      respond(response, 404, text, "not found\n");
      return;
    }
    const gzip = /\bgzip\b/.test(String(request.headers["accept-encoding"] ?? ""));
    const body = gzip ? asset.gzipped : asset.body;
    const headers: Record<string, string> = {
      "Content-Type": asset.type,
      "Content-Length": String(body.length),
      Vary: "Accept-Encoding",
    };
    if (gzip) headers["Content-Encoding"] = "gzip";
    respond(response, 200, headers, request.method === "HEAD" ? undefined : body);
  };
}

async function runWeb(options: WebOptions): Promise<void> {
  const { listen } = options;
  if (!isLoopbackHost(listen.host) && !options.allowRemote) {
    throw new CliError(
      `--listen ${
        formatServerAddress(listen)
      } is not a loopback address. The page is served over ` +
        "plain HTTP: on a network, anyone on the path could replace its code and take the " +
        "identity it unlocks, and relays admit pages from loopback origins only. Serve it on " +
        "127.0.0.1 (open an SSH tunnel to reach it from elsewhere), or pass --allow-remote if " +
        "TLS in front of it is yours",
      ExitCode.usage,
    );
  }
  const assets = await loadAssets();
  let boundPort = listen.port;
  const server = createServer(handler(assets, listen, () => boundPort));
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) =>
      reject(
        new CliError(
          `cannot serve the page on ${formatServerAddress(listen)}: ${socketErrorText(error)}`,
          ExitCode.network,
        ),
      ));
    server.listen({ host: listen.host, port: listen.port }, () => resolve());
  });
  const address = server.address();
  if (address !== null && typeof address !== "string") boundPort = address.port;
  const url = `http://${formatServerAddress({ host: listen.host, port: boundPort })}/`;
  const stopped = new Promise<void>((resolve) => {
    const stop = () => {
      server.close(() => resolve());
      server.closeAllConnections?.();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
  process.stdout.write(`serving the web client on ${url}\n`);
  if (options.open) openBrowser(url);
  await stopped;
}

/** Opens `url` with the desktop's opener; failure only costs a notice. */
function openBrowser(url: string): void {
  const [command, args] = process.platform === "darwin"
    ? ["open", [url]]
    : process.platform === "win32"
    ? ["cmd", ["/c", "start", "", url]]
    : ["xdg-open", [url]];
  const child = spawn(command, args, { stdio: "ignore", detached: true });
  child.on(
    "error",
    () => process.stderr.write(`securechat: could not open a browser; visit ${url}\n`),
  );
  child.unref();
}
