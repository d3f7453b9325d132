// The webhook receiver. The worker POSTs each event to `callback_url` with the caller's
// `callback_token` as `Authorization: Bearer`. The orchestrator mints that token as a short-lived
// HS256 JWT naming the task, and checks it here with jose before it trusts the payload.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { jwtVerify, SignJWT } from "jose";

const ISSUER = "ts-orchestrator";
const AUDIENCE = "browser-worker-callback";

export interface WorkerEvent {
  task_id: string | null;
  session_id: string;
  type: "progress" | "state_change" | "captcha_detected" | "review_required" | "screenshot" | "error" | "completed";
  data: Record<string, unknown>;
  timestamp: string;
}

/** A callback token for one task: HS256, `sub` = task id, valid for `ttlSeconds`. */
export function mintCallbackToken(secret: Uint8Array, taskId: string, ttlSeconds = 3600): Promise<string> {
  return new SignJWT({ task_id: taskId })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(taskId)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(secret);
}

export class WebhookReceiver {
  /** Accepted events, in arrival order. */
  readonly events: WorkerEvent[] = [];
  /** Requests refused (no, bad or mismatched token; bad body). */
  rejected = 0;
  private server?: Server;

  constructor(private readonly secret: Uint8Array) {}

  /** Listens on 127.0.0.1 (`port`, or an ephemeral one); returns the callback URL. */
  async start(listenPort = 0): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        this.handle(req.method ?? "", req.url ?? "", req.headers.authorization, Buffer.concat(chunks))
          .then((status) => res.writeHead(status).end())
          .catch(() => res.writeHead(500).end());
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(listenPort, "127.0.0.1", resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/webhooks/worker`;
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve));
  }

  /** Events of one task, in arrival order. */
  forTask(taskId: string): WorkerEvent[] {
    return this.events.filter((e) => e.task_id === taskId);
  }

  private async handle(method: string, url: string, authorization: string | undefined, body: Buffer): Promise<number> {
    if (method !== "POST" || url !== "/webhooks/worker") return 404;
    const token = authorization?.match(/^Bearer (.+)$/)?.[1];
    let claims;
    try {
      if (!token) throw new Error("no token");
      ({ payload: claims } = await jwtVerify(token, this.secret, {
        algorithms: ["HS256"],
        issuer: ISSUER,
        audience: AUDIENCE,
      }));
    } catch {
      this.rejected++;
      return 401;
    }
    let event: WorkerEvent;
    try {
      event = JSON.parse(body.toString("utf8"));
    } catch {
      this.rejected++;
      return 400;
    }
    // A token is good for its own task only.
    if (event.task_id !== claims.sub) {
      this.rejected++;
      return 403;
    }
    this.events.push(event);
    return 204;
  }
}
