// Runs the orchestrator against a live worker (BW_URL, BW_KEY): one application through the
// session API, one through POST /api/v1/tasks with webhooks to our own receiver, then checks what
// the demo site and the receiver got; and fleet placement, against the real worker (alone, it
// lists itself) and against fake workers (src/fleet-checks.ts). Exits non-zero on the first
// failed check. ci.sh starts the worker; started by hand, give the demo site and the receiver
// fixed ports (BW_EXAMPLE_SITE_PORT, BW_EXAMPLE_HOOK_PORT) and list them in the worker's
// BW_EGRESS_ALLOW (pages, resumes and webhooks reach loopback only at listed addresses).

import { randomBytes, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { strict as assert } from "node:assert";

import { type Applicant, WorkerClient, WorkerError } from "./client.ts";
import { DEMO_DIR, DemoSite } from "./demo-site.ts";
import { checkFleetRouting, checkPlacements } from "./fleet-checks.ts";
import { mintCallbackToken, WebhookReceiver, type WorkerEvent } from "./webhooks.ts";
import { applyViaSession } from "./workflow.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/**
 * The task's webhooks: all for this task and session, in time order, progress from navigating to
 * submitting, one `completed`, and last the session's `state_change` to `closed`.
 */
function checkWebhooks(events: WorkerEvent[], sessionId: string, confirmationId: string): void {
  assert.ok(events.length > 0, "no webhooks arrived");
  for (const e of events) assert.equal(e.session_id, sessionId, `webhook for another session: ${JSON.stringify(e)}`);
  const times = events.map((e) => Date.parse(e.timestamp));
  assert.deepEqual(times, [...times].sort((a, b) => a - b), "webhooks arrived out of order");
  const progress = events.filter((e) => e.type === "progress");
  assert.equal(progress[0]?.data.step, "navigating", "the first progress step is navigating");
  assert.equal(progress[0]?.data.pct, 10);
  const steps = new Set(progress.map((e) => e.data.step));
  for (const step of ["navigating", "analyzing", "filling", "submitting"]) assert.ok(steps.has(step), `no ${step} progress`);
  const [completed, closed] = events.slice(-2);
  assert.equal(closed.type, "state_change");
  assert.equal(closed.data.state, "closed", "the session closed last");
  assert.equal(completed.type, "completed", `the webhook before the close is ${completed.type}`);
  assert.equal(events.filter((e) => e.type === "completed").length, 1, "one completed webhook");
  assert.equal(completed.data.success, true);
  assert.equal(completed.data.confirmation_id, confirmationId);
}

async function main(): Promise<void> {
  const baseUrl = process.env.BW_URL ?? "http://127.0.0.1:8080";
  const apiKey = process.env.BW_KEY;
  if (!apiKey) throw new Error("set BW_KEY (and BW_URL) to the worker's API key");
  const applicant: Applicant = JSON.parse(await readFile(join(DEMO_DIR, "applicant.json"), "utf8"));
  const resume = { filename: "resume.pdf", content_base64: (await readFile(join(DEMO_DIR, "resume.pdf"))).toString("base64") };

  const site = new DemoSite();
  // The worker's egress rules reach loopback only at listed addresses: ci.sh lists these ports.
  const demo = await site.start(Number(process.env.BW_EXAMPLE_SITE_PORT ?? 0));
  const secret = randomBytes(32);
  const receiver = new WebhookReceiver(secret);
  const callbackUrl = await receiver.start(Number(process.env.BW_EXAMPLE_HOOK_PORT ?? 0));
  const client = new WorkerClient({ baseUrl, apiKey, retryBaseDelayMs: 200, healthIntervalMs: 5_000 });
  try {
    await client.initialize();
    assert.ok(client.isWorkerHealthy(), "worker reports healthy");
    console.log(`worker ${baseUrl} healthy; demo site ${demo}; webhooks to ${callbackUrl}`);

    // Fleet mode: this worker has no Redis, so it stands alone and lists itself; work goes to it
    // at the configured URL. The choice among several workers and the 307s: fake workers.
    assert.equal((await client.healthCheck()).fleet, "not_configured");
    const fleet = await client.fleet();
    assert.equal(fleet.fleet, false, JSON.stringify(fleet));
    assert.deepEqual(fleet.workers.map((w) => w.worker_id), [fleet.worker_id], "alone, the worker lists itself");
    const [self] = fleet.workers;
    assert.equal(self.draining, false);
    assert.equal(self.free_slots, self.max_sessions - self.active_sessions);
    checkPlacements();
    await checkFleetRouting();
    console.log(`fleet: alone as ${fleet.worker_id} (${self.free_slots} free slots); placement table and 307s to fake workers checked`);

    // 4xx rules: a bad key and an unknown session fail at once with the worker's error code.
    const stranger = new WorkerClient({ baseUrl, apiKey: "not-the-key-0123456789" });
    await assert.rejects(stranger.createSession(), (e) => e instanceof WorkerError && e.code === "unauthorized");
    await assert.rejects(
      client.getSession("00000000-0000-4000-8000-000000000000"),
      (e) => e instanceof WorkerError && e.statusCode === 404 && e.code === "session_not_found",
    );

    // 1. Step by step through the session API.
    console.log("== session API ==");
    const app = await applyViaSession(client, `${demo}/`, applicant, resume, (line) => console.log(`  ${line}`));
    assert.deepEqual(client.lastPlacement, { baseUrl: baseUrl.replace(/\/+$/, ""), workerId: fleet.worker_id, reason: "single" }, "the session went to the worker itself");
    assert.equal(app.confirmation.confirmation_id, "DEMO-1001");
    assert.deepEqual(
      app.steps.map((s) => s.outcome),
      ["next_step", "next_step", "submitted"],
      "posting → step 1 → step 2 → confirmation",
    );
    assert.equal(site.applications[0]?.email, applicant.user_data.email, "the site received the email");
    assert.match(site.applications[0]?.resume ?? "", /^resume\.pdf \(\d+ bytes\)$/, "the site received the resume");
    console.log(`  confirmed ${app.confirmation.confirmation_id} (${app.confirmation.evidence}): ${app.confirmation.message}`);

    // 2. One call: POST /api/v1/tasks, progress by webhook.
    console.log("== POST /api/v1/tasks ==");
    const taskId = `ts-ci-${randomUUID()}`;
    const result = await client.runTask({
      task_id: taskId,
      job_url: `${demo}/`,
      ...applicant,
      resume_file_url: `${demo}/resume.pdf`,
      mode: "autopilot",
      callback_url: callbackUrl,
      callback_token: await mintCallbackToken(secret, taskId),
      humanize: "fast",
      policy: { timeout_seconds: 120, save_artifacts: true },
    });
    console.log(
      `  success ${result.success}, confirmation ${result.confirmation_id}, ${result.filled_fields.length} fields, ${result.duration_ms} ms`,
    );
    assert.equal(result.success, true, JSON.stringify(result));
    assert.deepEqual(client.lastPlacement, { baseUrl: baseUrl.replace(/\/+$/, ""), workerId: fleet.worker_id, reason: "single" }, "the task went to the worker itself");
    assert.equal(result.next_action, "continue");
    assert.equal(result.confirmation_id, "DEMO-1002");
    assert.equal(site.applications[1]?.email, applicant.user_data.email);
    const events = await waitFor("the webhook of the session's close", () => {
      const got = receiver.forTask(taskId);
      return got.some((e) => e.type === "state_change" && e.data.state === "closed") ? got : undefined;
    });
    checkWebhooks(events, result.session_id!, "DEMO-1002");
    console.log(`  webhooks: ${events.map((e) => (e.type === "progress" ? `progress:${e.data.step}` : e.type === "state_change" ? `state_change:${e.data.state}` : e.type)).join(", ")}`);
    assert.equal(receiver.rejected, 0, "the worker's webhooks all carried a valid token");

    // The receiver refuses what does not carry our token for that task.
    const post = (token: string, task: string) =>
      fetch(callbackUrl, {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: JSON.stringify({ task_id: task, session_id: "x", type: "completed", data: {}, timestamp: new Date().toISOString() }),
      }).then((r) => r.status);
    assert.equal(await post(await mintCallbackToken(randomBytes(32), taskId), taskId), 401, "a token signed with another secret");
    assert.equal(await post(await mintCallbackToken(secret, "other-task"), taskId), 403, "a token for another task");
    assert.equal(receiver.forTask(taskId).length, events.length, "refused webhooks are not recorded");
    console.log("ts-orchestrator: all checks passed");
  } finally {
    await client.shutdown();
    await receiver.stop();
    await site.stop();
  }
}

main().catch((err) => {
  console.error("ts-orchestrator:", err);
  process.exit(1);
});
