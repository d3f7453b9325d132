// The bundled demo job board (../../demo/) served by node:http, like `cargo run --example demo`
// serves it: static pages plus the two form endpoints, recording what the "employer" received.

import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

export const DEMO_DIR = fileURLToPath(new URL("../../demo/", import.meta.url));

const TYPES: Record<string, string> = { ".html": "text/html; charset=utf-8", ".pdf": "application/pdf", ".json": "application/json" };

export class DemoSite {
  /** Applications received, by number - 1: field name → value (files as `name (bytes)`). */
  readonly applications: Record<string, string>[] = [];
  /** Confirmation ids handed out. */
  readonly confirmed: string[] = [];
  private server?: Server;

  async start(port = 0): Promise<string> {
    this.server = createServer((req, res) => {
      this.route(req.method ?? "GET", req.url ?? "/", req.headers["content-type"] ?? "", req)
        .then(({ status, headers, body }) => res.writeHead(status, headers).end(body))
        .catch((err: Error) => res.writeHead(400, { "content-type": "text/plain" }).end(err.message));
    });
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private async route(
    method: string,
    url: string,
    contentType: string,
    body: AsyncIterable<Buffer>,
  ): Promise<{ status: number; headers: Record<string, string>; body?: Buffer | string }> {
    const path = new URL(url, "http://demo").pathname;
    if (method === "POST" && (path === "/apply/step1" || path === "/apply/submit")) {
      const fields = await readMultipart(contentType, body);
      if (path === "/apply/step1") {
        this.applications.push(fields);
        return { status: 303, headers: { location: `/step2.html?app=${this.applications.length}` } };
      }
      const application = this.applications[Number(fields.app) - 1];
      if (!application) throw new Error("unknown application");
      Object.assign(application, fields);
      const id = `DEMO-${1000 + Number(fields.app)}`;
      this.confirmed.push(id);
      return { status: 303, headers: { location: `/confirmation.html?id=${id}` } };
    }
    if (method !== "GET") return { status: 405, headers: {} };
    const file = normalize(path === "/" ? "index.html" : path.slice(1));
    if (file.startsWith("..")) return { status: 404, headers: {} };
    try {
      const content = await readFile(join(DEMO_DIR, file));
      return { status: 200, headers: { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }, body: content };
    } catch {
      return { status: 404, headers: {} };
    }
  }
}

/** Parses a multipart/form-data body with the platform's own parser (undici's Request). */
async function readMultipart(contentType: string, body: AsyncIterable<Buffer>): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const form = await new Request("http://demo/", {
    method: "POST",
    headers: { "content-type": contentType },
    body: Buffer.concat(chunks),
  }).formData();
  const fields: Record<string, string> = {};
  for (const [name, value] of form.entries()) {
    fields[name] = typeof value === "string" ? value : `${value.name} (${value.size} bytes)`;
  }
  return fields;
}
