// WorkerClient: the seed's EC2WorkerClient (§5) against browser-worker's API.
//
// Rules, as in the seed: retries with exponential backoff (1 s, 2 s, 4 s by default) on network
// errors, timeouts and 5xx; never on 4xx except 408 and 429 (429 waits for `Retry-After` when
// the worker sends one). Calls that act on a page (fill, submit) are never retried: a repeated
// click could apply twice. A health loop keeps `isWorkerHealthy()` current.
//
// Fleet mode (the worker's SPEC §3.9): before creating a session or a task the client asks its
// configured worker for `GET /api/v1/fleet` and places the work on the worker with the most free
// slots that is not draining (the configured one when the worker stands alone, the list is empty
// or the call fails). It remembers which worker holds each session it created and talks to that
// one directly. A worker that does not hold a session answers 307 to the holder: the client sends
// the same call there again with its Authorization header (fetch would drop it across origins),
// but only to an origin the fleet lists, so the API key never goes anywhere else.

export interface WorkerClientConfig {
  baseUrl: string; // env: BW_URL (the seed's EC2_WORKER_URL)
  apiKey: string; // env: BW_KEY (the seed's EC2_WORKER_API_KEY)
  timeout?: number; // per request, default 300_000 ms
  maxRetries?: number; // default 3
  retryBaseDelayMs?: number; // default 1_000 ms
  healthIntervalMs?: number; // default 60_000 ms
}

/** The worker's error envelope `{"error": {"code", "message", "details"}}` with the HTTP status. */
export class WorkerError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly retryAfterMs?: number,
  ) {
    super(`worker ${statusCode} ${code}: ${message}`);
  }
}

export interface HealthCheckResponse {
  status: "healthy" | "degraded";
  active_sessions: number;
  max_sessions: number;
  active_tasks: number;
  uptime_seconds: number;
  version: string;
  /** Fleet mode: whether the worker reaches the fleet's Redis (`not_configured`: it stands alone). */
  fleet?: "connected" | "unreachable" | "not_configured";
  [key: string]: unknown;
}

/** One worker of the fleet, from its heartbeat. */
export interface FleetWorker {
  worker_id: string;
  public_url: string;
  max_sessions: number;
  active_sessions: number;
  free_slots: number;
  draining: boolean;
  version: string;
  last_seen: string;
}

/** `GET /api/v1/fleet`: `fleet: false` when the worker stands alone (then `workers` is itself). */
export interface FleetView {
  fleet: boolean;
  worker_id: string;
  workers: FleetWorker[];
}

/** Where new work went, and why. */
export interface Placement {
  baseUrl: string;
  /** The chosen worker's id; `null` when the fleet could not be asked (or had no candidate). */
  workerId: string | null;
  /** `fleet`: chosen among the fleet's workers; `single`: the worker stands alone; `fallback`: the configured worker, because the list was empty, all draining, or the call failed. */
  reason: "fleet" | "single" | "fallback";
}

/** A 307 to an origin that is not a worker of the fleet: not followed, the key is not sent there. */
export class RedirectRefused extends Error {
  constructor(readonly location: string) {
    super(`refused to follow a redirect to ${location}: not a worker of the fleet`);
  }
}

export interface Applicant {
  user_data: Record<string, unknown>;
  qa_answers: Record<string, string>;
}

export interface RunTaskRequest extends Applicant {
  task_id: string;
  job_url: string;
  profile_id?: string;
  resume_file_url?: string;
  mode?: "autopilot" | "copilot";
  action?: "submit_only";
  session_id?: string;
  callback_url?: string;
  callback_token?: string;
  humanize?: "human" | "fast" | "off";
  policy?: { timeout_seconds?: number; save_artifacts?: boolean };
}

export interface TaskResult {
  task_id: string;
  success: boolean;
  blocked: boolean;
  block_reason: string | null;
  next_action: "continue" | "cooldown" | "needs_human" | "disable_profile";
  platform: string | null;
  confirmation_id: string | null;
  confirmation_message: string | null;
  filled_fields: { label?: string; value?: unknown; source?: string }[];
  screenshots: Record<string, string>;
  timing: Record<string, number>;
  error: string | null;
  duration_ms: number;
  session_id: string | null;
  vnc_url: string | null;
}

export interface Session {
  session_id: string;
  state: string;
  cdp_url?: string;
  timing?: Record<string, number>;
  [key: string]: unknown;
}

export interface Field {
  field_id: string;
  label: string;
  kind: string;
  required: boolean;
  trap: boolean;
}

export interface Analysis {
  platform: string;
  page_kind: string;
  step: { index: number; total: number } | null;
  fields: Field[];
  [key: string]: unknown;
}

export interface FillReport {
  filled_fields: { field_id: string; label: string; value: unknown; source: string; verified: boolean }[];
  skipped: unknown[];
  missing_required: unknown[];
  errors: unknown[];
}

export interface SubmitAnswer {
  outcome: "next_step" | "submitted" | "validation_errors" | "blocked" | "no_control";
  clicked: { text: string } | null;
  page_kind: string;
  confirmation: { confirmation_id: string | null; message: string; evidence: string } | null;
  errors: { field_id: string; message: string }[];
  screenshot: string | null;
  [key: string]: unknown;
}

export interface FillRequest extends Applicant {
  resume_file_url?: string;
  resume?: { filename: string; content_base64: string };
  cover_letter_text?: string;
  overrides?: Record<string, unknown>;
  humanize?: "human" | "fast" | "off";
}

interface CallOptions {
  body?: unknown;
  timeoutMs?: number;
  retry?: boolean;
  /** The worker to ask; default: the configured one. */
  baseUrl?: string;
  /** The session the call is about: sent to the worker known to hold it, which is updated on a 307. */
  sessionId?: string;
  /** Follow a worker's 307 (default); the fleet look-up itself does not (it trusts no redirect). */
  follow?: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const trimSlash = (url: string) => url.replace(/\/+$/, "");
const MAX_REDIRECTS = 3;

function originOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.origin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where to place new work, given the fleet as the configured worker (`configured`) sees it: the
 * worker with the most free slots that is not draining (on a tie the configured one, then by id).
 * The configured worker is reached at `configured`, not at the `public_url` it announces (which
 * may be an address only its own proxy answers).
 */
export function chooseWorker(view: FleetView, configured: string): Placement {
  if (!view.fleet) return { baseUrl: configured, workerId: view.worker_id, reason: "single" };
  const candidates = view.workers.filter((w) => !w.draining && originOf(w.public_url) !== undefined);
  if (candidates.length === 0) return { baseUrl: configured, workerId: null, reason: "fallback" };
  const rank = (w: FleetWorker): [number, number, string] => [w.free_slots, w.worker_id === view.worker_id ? 1 : 0, w.worker_id];
  const best = candidates.reduce((a, b) => {
    const [ra, rb] = [rank(a), rank(b)];
    if (ra[0] !== rb[0]) return ra[0] > rb[0] ? a : b;
    if (ra[1] !== rb[1]) return ra[1] > rb[1] ? a : b;
    return ra[2] <= rb[2] ? a : b;
  });
  const baseUrl = best.worker_id === view.worker_id ? configured : trimSlash(best.public_url);
  return { baseUrl, workerId: best.worker_id, reason: "fleet" };
}

export class WorkerClient {
  private readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly timeout: number;
  private readonly maxRetries: number;
  private readonly retryBaseDelayMs: number;
  private readonly healthIntervalMs: number;
  private healthy = true;
  private healthLoop?: NodeJS.Timeout;
  /** The base URL of the worker holding each session this client knows of. */
  private readonly holders = new Map<string, string>();
  /** Origins the API key may be sent to: the configured worker's and every worker the fleet listed. */
  private readonly fleetOrigins = new Set<string>();
  /** Where the last session or task was placed (for logs and checks). */
  lastPlacement?: Placement;

  constructor(config: WorkerClientConfig) {
    this.baseUrl = config.baseUrl.replace(/\/+$/, "");
    this.apiKey = config.apiKey;
    this.timeout = config.timeout ?? 300_000;
    this.maxRetries = config.maxRetries ?? 3;
    this.retryBaseDelayMs = config.retryBaseDelayMs ?? 1_000;
    this.healthIntervalMs = config.healthIntervalMs ?? 60_000;
    const origin = originOf(this.baseUrl);
    if (origin === undefined) throw new Error(`baseUrl ${config.baseUrl} is not an http(s) URL`);
    this.fleetOrigins.add(origin);
  }

  /** One health check (throws when the worker is unreachable), then one every `healthIntervalMs`. */
  async initialize(): Promise<void> {
    await this.healthCheck();
    this.healthLoop = setInterval(() => {
      this.healthCheck().catch(() => {
        this.healthy = false;
      });
    }, this.healthIntervalMs);
    this.healthLoop.unref();
  }

  async shutdown(): Promise<void> {
    if (this.healthLoop) clearInterval(this.healthLoop);
  }

  async healthCheck(): Promise<HealthCheckResponse> {
    const health = await this.call<HealthCheckResponse>("GET", "/health", { timeoutMs: 5_000, retry: false });
    this.healthy = health.status === "healthy";
    return health;
  }

  isWorkerHealthy(): boolean {
    return this.healthy;
  }

  /** The fleet as the configured worker sees it (without Redis: `fleet: false`, itself only). */
  async fleet(): Promise<FleetView> {
    const view = await this.call<FleetView>("GET", "/api/v1/fleet", { timeoutMs: 5_000, retry: false, follow: false });
    for (const worker of view.workers) {
      const origin = originOf(worker.public_url);
      if (origin !== undefined) this.fleetOrigins.add(origin);
    }
    return view;
  }

  /** Chooses the worker for new work (see `chooseWorker`); the configured one when the fleet cannot be asked. */
  async place(): Promise<Placement> {
    let placement: Placement;
    try {
      placement = chooseWorker(await this.fleet(), this.baseUrl);
    } catch {
      placement = { baseUrl: this.baseUrl, workerId: null, reason: "fallback" };
    }
    this.lastPlacement = placement;
    return placement;
  }

  /** The base URL of the worker known to hold a session (the configured one when not known). */
  workerFor(sessionId: string): string {
    return this.holders.get(sessionId) ?? this.baseUrl;
  }

  /**
   * The V1 one-call application; blocks until the task is done (webhooks report progress
   * meanwhile). A new task is placed on the fleet; one acting on a session goes to its holder.
   */
  async runTask(request: RunTaskRequest): Promise<TaskResult> {
    const timeoutMs = ((request.policy?.timeout_seconds ?? 300) + 30) * 1_000;
    const baseUrl = request.session_id ? this.workerFor(request.session_id) : (await this.place()).baseUrl;
    return this.call<TaskResult>("POST", "/api/v1/tasks", { body: request, timeoutMs, baseUrl });
  }

  /** Opens a session on the worker `place()` chooses (a profile leased elsewhere: 409 `profile_in_use`). */
  async createSession(body: Record<string, unknown> = {}): Promise<Session> {
    const { baseUrl } = await this.place();
    const session = await this.call<Session>("POST", "/api/v2/sessions", { body, baseUrl });
    this.holders.set(session.session_id, baseUrl);
    return session;
  }

  getSession(id: string): Promise<Session> {
    return this.call<Session>("GET", `/api/v2/sessions/${id}`, { sessionId: id });
  }

  navigate(id: string, url: string): Promise<{ current_url: string; title: string; block: unknown }> {
    return this.call("POST", `/api/v2/sessions/${id}/navigate`, { body: { url }, retry: false, sessionId: id });
  }

  analyze(id: string, body: Record<string, unknown> = {}): Promise<Analysis> {
    return this.call<Analysis>("POST", `/api/v2/sessions/${id}/analyze`, { body, sessionId: id });
  }

  fill(id: string, body: FillRequest): Promise<FillReport> {
    return this.call<FillReport>("POST", `/api/v2/sessions/${id}/fill`, { body, retry: false, sessionId: id });
  }

  submit(id: string, action: "auto" | "next" | "submit" = "auto"): Promise<SubmitAnswer> {
    return this.call<SubmitAnswer>("POST", `/api/v2/sessions/${id}/submit`, { body: { action }, retry: false, sessionId: id });
  }

  async deleteSession(id: string): Promise<{ session_id: string; state: string; reason: string; artifacts: string[] }> {
    const closed = await this.call<{ session_id: string; state: string; reason: string; artifacts: string[] }>(
      "DELETE",
      `/api/v2/sessions/${id}`,
      { sessionId: id },
    );
    this.holders.delete(id);
    return closed;
  }

  /** One API call with the seed's retry rules. */
  private async call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
    const attempts = options.retry === false ? 1 : this.maxRetries + 1;
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        const backoff = this.retryBaseDelayMs * 2 ** (attempt - 1);
        const asked = lastError instanceof WorkerError ? lastError.retryAfterMs : undefined;
        await sleep(Math.max(backoff, asked ?? 0));
      }
      const baseUrl = options.sessionId ? this.workerFor(options.sessionId) : (options.baseUrl ?? this.baseUrl);
      try {
        const { value, holder } = await this.request<T>(method, baseUrl, path, options);
        if (options.sessionId && holder !== baseUrl) this.holders.set(options.sessionId, holder);
        return value;
      } catch (err) {
        lastError = err;
        if (isNonRecoverable(err)) throw err;
      }
    }
    const message = lastError instanceof Error ? lastError.message : String(lastError);
    throw new Error(`worker failed after ${attempts} attempt(s): ${message}`, { cause: lastError });
  }

  /**
   * One HTTP exchange, following a worker's 307 (or 308) to the session's holder: same method,
   * body and Authorization, to fleet origins only. Answers the value and the base URL that
   * answered it.
   */
  private async request<T>(method: string, baseUrl: string, path: string, options: CallOptions): Promise<{ value: T; holder: string }> {
    const signal = AbortSignal.timeout(options.timeoutMs ?? this.timeout);
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const maxHops = options.follow === false ? 0 : MAX_REDIRECTS;
    let url = `${baseUrl}${path}`;
    let holder = baseUrl;
    let res: Response;
    for (let hops = 0; ; hops++) {
      res = await fetch(url, {
        method,
        headers: {
          Authorization: `Bearer ${this.apiKey}`,
          ...(payload === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: payload,
        redirect: "manual",
        signal,
      });
      if ((res.status !== 307 && res.status !== 308) || hops >= maxHops) break;
      const location = res.headers.get("location");
      if (location === null) break;
      await res.body?.cancel();
      const next = new URL(location, url);
      const origin = originOf(next.href);
      // A worker that joined since the last look: ask the fleet once more before refusing.
      if (origin === undefined || (!this.fleetOrigins.has(origin) && !(await this.refreshOrigins(origin)))) {
        throw new RedirectRefused(next.href);
      }
      // The holder's base URL: the Location less the path and query the worker kept.
      const sent = new URL(url);
      const suffix = `${sent.pathname}${sent.search}`;
      holder = next.href.endsWith(suffix) ? next.href.slice(0, next.href.length - suffix.length) : origin;
      url = next.href;
    }
    const text = await res.text();
    if (!res.ok) {
      let code = "http_error";
      let message = text;
      let details: unknown;
      try {
        const envelope = JSON.parse(text).error;
        ({ code, message, details } = envelope);
      } catch {
        // not the worker's envelope (e.g. a proxy's page): keep the raw text
      }
      const retryAfter = Number(res.headers.get("retry-after"));
      throw new WorkerError(res.status, code, message, details, retryAfter > 0 ? retryAfter * 1_000 : undefined);
    }
    return { value: JSON.parse(text) as T, holder };
  }

  /** Asks the fleet again; whether `origin` is now one of its workers'. */
  private async refreshOrigins(origin: string): Promise<boolean> {
    try {
      await this.fleet();
    } catch {
      return false;
    }
    return this.fleetOrigins.has(origin);
  }
}

/** 4xx answers are final, except 408 (timeout) and 429 (capacity, rate limit); so are redirects not followed. */
export function isNonRecoverable(err: unknown): boolean {
  if (err instanceof RedirectRefused) return true;
  if (!(err instanceof WorkerError)) return false;
  const code = err.statusCode;
  return code >= 300 && code < 500 && code !== 408 && code !== 429;
}
