// The session-stepping workflow: what POST /api/v1/tasks does in one call, done step by step by the
// orchestrator so it can decide between steps (review the fields, stop for a person, …).

import type { Applicant, FillRequest, SubmitAnswer, WorkerClient } from "./client.ts";

export interface StepLog {
  step: number;
  page_kind: string;
  filled: number;
  outcome: SubmitAnswer["outcome"];
  clicked: string | null;
}

export interface Application {
  session_id: string;
  steps: StepLog[];
  confirmation: NonNullable<SubmitAnswer["confirmation"]>;
}

/**
 * Opens a session, navigates to `jobUrl` and loops analyze → fill (on a form) → submit until the
 * page confirms the submission; closes the session whatever happens.
 */
export async function applyViaSession(
  client: WorkerClient,
  jobUrl: string,
  applicant: Applicant,
  resume: FillRequest["resume"],
  log: (line: string) => void = console.log,
  maxSteps = 10,
): Promise<Application> {
  const session = await client.createSession({ humanize: "fast" });
  const id = session.session_id;
  log(`session ${id} opened`);
  try {
    const page = await client.navigate(id, jobUrl);
    log(`navigated to ${page.current_url} (${page.title})`);
    const steps: StepLog[] = [];
    for (let step = 1; step <= maxSteps; step++) {
      const analysis = await client.analyze(id);
      let filled = 0;
      if (analysis.page_kind === "application_form") {
        const report = await client.fill(id, { ...applicant, resume, humanize: "fast" });
        filled = report.filled_fields.length;
        if (report.missing_required.length > 0 || report.errors.length > 0) {
          throw new Error(`fill left work: ${JSON.stringify({ missing: report.missing_required, errors: report.errors })}`);
        }
      }
      const answer = await client.submit(id, "auto");
      const entry = {
        step,
        page_kind: analysis.page_kind,
        filled,
        outcome: answer.outcome,
        clicked: answer.clicked?.text ?? null,
      };
      steps.push(entry);
      log(`step ${step}: ${entry.page_kind}, filled ${filled}, clicked ${JSON.stringify(entry.clicked)} → ${entry.outcome}`);
      if (answer.outcome === "submitted" && answer.confirmation) {
        return { session_id: id, steps, confirmation: answer.confirmation };
      }
      if (answer.outcome !== "next_step") {
        throw new Error(`step ${step}: ${answer.outcome}: ${JSON.stringify(answer.errors)}`);
      }
    }
    throw new Error(`no confirmation after ${maxSteps} steps`);
  } finally {
    const closed = await client.deleteSession(id);
    log(`session ${id} closed (${closed.state})`);
  }
}
