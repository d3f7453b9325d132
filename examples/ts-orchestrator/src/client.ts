// WorkerClient: the seed's EC2WorkerClient (§5) against browser-worker's API.
//
// Rules, as in the seed: retries with exponential backoff (1 s, 2 s, 4 s by default) on network
// errors, timeouts and 5xx; never on 4xx except 408 and 429 (429 waits for `Retry-After` when
// the worker sends one). Calls that act on a page (fill, submit) are never retried: a repeated
// click could apply twice. A health loop keeps `isWorkerHealthy()` current.

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
  [key: string]: unknown;
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
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class WorkerClient {
  private readonly baseUrl: string;
  private readonly apiKey: string;
  private readonly timeout: number;
  private readonly maxRetries: number;
  private readonly retryBaseDelayMs: number;
  private readonly healthIntervalMs: number;
  private healthy = true;
  private healthLoop?: NodeJS.Timeout;

  constructor(config: WorkerClientConfig) {
    this.baseUrl = config.baseUrl.replace(/\/+$/, "");
    this.apiKey = config.apiKey;
    this.timeout = config.timeout ?? 300_000;
    this.maxRetries = config.maxRetries ?? 3;
    this.retryBaseDelayMs = config.retryBaseDelayMs ?? 1_000;
    this.healthIntervalMs = config.healthIntervalMs ?? 60_000;
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

  /** The V1 one-call application; blocks until the task is done (webhooks report progress meanwhile). */
  runTask(request: RunTaskRequest): Promise<TaskResult> {
    const timeoutMs = ((request.policy?.timeout_seconds ?? 300) + 30) * 1_000;
    return this.call<TaskResult>("POST", "/api/v1/tasks", { body: request, timeoutMs });
  }

  createSession(body: Record<string, unknown> = {}): Promise<Session> {
    return this.call<Session>("POST", "/api/v2/sessions", { body });
  }

  getSession(id: string): Promise<Session> {
    return this.call<Session>("GET", `/api/v2/sessions/${id}`);
  }

  navigate(id: string, url: string): Promise<{ current_url: string; title: string; block: unknown }> {
    return this.call("POST", `/api/v2/sessions/${id}/navigate`, { body: { url }, retry: false });
  }

  analyze(id: string, body: Record<string, unknown> = {}): Promise<Analysis> {
    return this.call<Analysis>("POST", `/api/v2/sessions/${id}/analyze`, { body });
  }

  fill(id: string, body: FillRequest): Promise<FillReport> {
    return this.call<FillReport>("POST", `/api/v2/sessions/${id}/fill`, { body, retry: false });
  }

  submit(id: string, action: "auto" | "next" | "submit" = "auto"): Promise<SubmitAnswer> {
    return this.call<SubmitAnswer>("POST", `/api/v2/sessions/${id}/submit`, { body: { action }, retry: false });
  }

  deleteSession(id: string): Promise<{ session_id: string; state: string; reason: string; artifacts: string[] }> {
    return this.call("DELETE", `/api/v2/sessions/${id}`);
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
      try {
        return await this.request<T>(method, path, options.body, options.timeoutMs ?? this.timeout);
      } catch (err) {
        lastError = err;
        if (isNonRecoverable(err)) throw err;
      }
    }
    const message = lastError instanceof Error ? lastError.message : String(lastError);
    throw new Error(`worker failed after ${attempts} attempt(s): ${message}`, { cause: lastError });
  }

  private async request<T>(method: string, path: string, body: unknown, timeoutMs: number): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${this.apiKey}`,
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
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
    return JSON.parse(text) as T;
  }
}

/** 4xx answers are final, except 408 (timeout) and 429 (capacity, rate limit). */
export function isNonRecoverable(err: unknown): boolean {
  if (!(err instanceof WorkerError)) return false;
  const code = err.statusCode;
  return code >= 400 && code < 500 && code !== 408 && code !== 429;
}
