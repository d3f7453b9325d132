// Fleet routing without a fleet: the placement rule as a table, and the client against fake
// workers on loopback (each port its own origin) that answer what a fleet's workers answer:
// `GET /api/v1/fleet`, and a 307 to the holder for a session held elsewhere. CI has one real
// worker (no Redis), so this is where the 307 and the choice among several workers are checked.

import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { strict as assert } from "node:assert";

import { chooseWorker, type FleetView, type FleetWorker, RedirectRefused, WorkerClient } from "./client.ts";

const worker = (worker_id: string, free_slots: number, draining = false, public_url = `https://${worker_id}.example`): FleetWorker => ({
  worker_id,
  public_url,
  max_sessions: 5,
  active_sessions: 5 - free_slots,
  free_slots,
  draining,
  version: "0.0.0",
  last_seen: new Date(0).toISOString(),
});

const CONFIGURED = "https://configured.example";

/** [case, the fleet as the configured worker "a" answers it, the expected placement]. */
const PLACEMENTS: [string, FleetView, { baseUrl: string; reason: string }][] = [
  ["alone: the configured worker, not its announced URL", { fleet: false, worker_id: "a", workers: [worker("a", 3, false, "http://127.0.0.1:8080")] }, { baseUrl: CONFIGURED, reason: "single" }],
  ["alone and full: still the configured worker", { fleet: false, worker_id: "a", workers: [worker("a", 0)] }, { baseUrl: CONFIGURED, reason: "single" }],
  ["the most free slots", { fleet: true, worker_id: "a", workers: [worker("a", 1), worker("b", 4), worker("c", 2)] }, { baseUrl: "https://b.example", reason: "fleet" }],
  ["draining ones are skipped", { fleet: true, worker_id: "a", workers: [worker("a", 1), worker("b", 4, true)] }, { baseUrl: CONFIGURED, reason: "fleet" }],
  ["a tie goes to the configured worker", { fleet: true, worker_id: "b", workers: [worker("a", 2), worker("b", 2)] }, { baseUrl: CONFIGURED, reason: "fleet" }],
  ["a tie among others goes to the lower id", { fleet: true, worker_id: "z", workers: [worker("c", 2), worker("b", 2), worker("z", 0)] }, { baseUrl: "https://b.example", reason: "fleet" }],
  ["all draining: the configured worker", { fleet: true, worker_id: "a", workers: [worker("a", 3, true), worker("b", 3, true)] }, { baseUrl: CONFIGURED, reason: "fallback" }],
  ["an empty list: the configured worker", { fleet: true, worker_id: "a", workers: [] }, { baseUrl: CONFIGURED, reason: "fallback" }],
  ["a worker without an http(s) URL is skipped", { fleet: true, worker_id: "a", workers: [worker("a", 1), worker("b", 4, false, "not a url")] }, { baseUrl: CONFIGURED, reason: "fleet" }],
  ["a trailing slash is dropped", { fleet: true, worker_id: "a", workers: [worker("b", 1, false, "https://b.example/")] }, { baseUrl: "https://b.example", reason: "fleet" }],
];

export function checkPlacements(): void {
  for (const [name, view, expected] of PLACEMENTS) {
    const got = chooseWorker(view, CONFIGURED);
    assert.deepEqual({ baseUrl: got.baseUrl, reason: got.reason }, expected, name);
  }
}

interface Seen {
  method: string;
  path: string;
  auth: string | undefined;
  body: string;
}

/** A fake worker: records every request; `answer` gives status, headers and JSON body. */
class FakeWorker {
  readonly seen: Seen[] = [];
  url = "";
  private readonly server: Server;

  constructor(answer: (req: Seen) => [number, Record<string, string>, unknown]) {
    this.server = createServer(async (req: IncomingMessage, res) => {
      let body = "";
      for await (const chunk of req) body += chunk;
      const seen = { method: req.method ?? "", path: req.url ?? "", auth: req.headers.authorization, body };
      this.seen.push(seen);
      const [status, headers, json] = answer(seen);
      res.writeHead(status, { "Content-Type": "application/json", ...headers }).end(JSON.stringify(json));
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Worker "a" (configured) lists "a" (1 free slot), "b" (2) and "c" (9, draining, at an address
 * nothing answers); it sends session routes to "b" with a 307, except one to an address the fleet
 * does not list. "b" holds the sessions.
 */
export async function checkFleetRouting(): Promise<void> {
  const key = "fake-fleet-key-0123456789";
  const nowhere = "http://127.0.0.1:9"; // the draining worker's address: nothing listens
  const unlisted = "http://127.0.0.1:7"; // not in the fleet (nothing listens either)
  const unauthorized: [number, Record<string, string>, unknown] = [401, {}, { error: { code: "unauthorized", message: "no" } }];
  const b = new FakeWorker((req) => {
    if (req.auth !== `Bearer ${key}`) return unauthorized;
    if (req.method === "POST" && req.path === "/api/v2/sessions") return [201, {}, { session_id: "s-1", state: "ready" }];
    if (req.path.endsWith("/navigate")) return [200, {}, { current_url: JSON.parse(req.body).url, title: "t", block: null }];
    return [200, {}, { session_id: "s-1", state: "ready" }];
  });
  let view: FleetView = { fleet: true, worker_id: "a", workers: [] };
  const a = new FakeWorker((req) => {
    if (req.auth !== `Bearer ${key}`) return unauthorized;
    if (req.path === "/api/v1/fleet") return [200, {}, view];
    if (req.path.startsWith("/api/v2/sessions/s-far")) return [307, { Location: `${unlisted}${req.path}` }, {}];
    if (req.path.startsWith("/api/v2/sessions/")) return [307, { Location: `${b.url}${req.path}` }, {}];
    return [404, {}, { error: { code: "not_found", message: req.path } }];
  });
  try {
    await Promise.all([a.start(), b.start()]);
    view = { fleet: true, worker_id: "a", workers: [worker("a", 1, false, a.url), worker("b", 2, false, b.url), worker("c", 9, true, nowhere)] };

    // Placement: the create goes to "b" (the most free slots not draining), "a" is only asked.
    const client = new WorkerClient({ baseUrl: a.url, apiKey: key, maxRetries: 0 });
    const session = await client.createSession({});
    assert.deepEqual(client.lastPlacement, { baseUrl: b.url, workerId: "b", reason: "fleet" });
    assert.deepEqual(a.seen.map((r) => `${r.method} ${r.path}`), ["GET /api/v1/fleet"], "worker a was only asked for the fleet");
    assert.deepEqual(b.seen.map((r) => `${r.method} ${r.path} ${r.auth}`), [`POST /api/v2/sessions Bearer ${key}`]);
    assert.equal(client.workerFor(session.session_id), b.url);

    // A client that does not know the holder (say, restarted) asks "a", gets 307 and sends the
    // same call, body and key to "b"; the next call goes to "b" directly.
    const restarted = new WorkerClient({ baseUrl: a.url, apiKey: key, maxRetries: 0 });
    const page = await restarted.navigate("s-1", "https://jobs.example/1");
    assert.equal(page.current_url, "https://jobs.example/1", "the body went along with the redirect");
    assert.deepEqual(b.seen.at(-1), { method: "POST", path: "/api/v2/sessions/s-1/navigate", auth: `Bearer ${key}`, body: '{"url":"https://jobs.example/1"}' });
    assert.equal(restarted.workerFor("s-1"), b.url);
    assert.deepEqual(
      a.seen.slice(-2).map((r) => `${r.method} ${r.path}`),
      ["POST /api/v2/sessions/s-1/navigate", "GET /api/v1/fleet"],
      "worker a sent the call on, and was asked for the fleet before the key went to b",
    );
    const asked = a.seen.length;
    await restarted.getSession("s-1");
    assert.equal(a.seen.length, asked, "the second call went to b directly");
    assert.equal(b.seen.at(-1)?.path, "/api/v2/sessions/s-1");

    // A 307 to an address the fleet does not list is not followed: the key stays home.
    await assert.rejects(restarted.getSession("s-far"), (e) => e instanceof RedirectRefused && e.location.startsWith(unlisted));
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
}
