// Smoke test of the generated TypeScript stubs against a running graphrun server:
// RunService.Wait and RunService.Stream over gRPC (HTTP/2, plaintext).
//
//   npm run build && node dist/smoke.js [port]      (default port 50051, as `make serve`)
//
// Prints a JSON summary on stdout; exits 1 if anything is not as expected.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RunService } from "./gen/graphrun/v1/run_service_pb.js";
import { RunStatus, type RunSpecSchema } from "./gen/graphrun/v1/run_pb.js";
import type { MessageEvent, RunEvent } from "./gen/graphrun/v1/event_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";

const QUESTION = "Wann wurde die Heizungsanlage gewartet?";
const EXPECTED = "15. Januar 2025";
const TIMEOUT_MS = 60_000;

function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`check failed: ${what}`);
}

function contentOf(message: unknown): string {
  const content = (message as { content?: unknown } | undefined)?.content;
  return typeof content === "string" ? content : JSON.stringify(content ?? "");
}

async function main(): Promise<void> {
  const port = Number(process.argv[2] ?? process.env.GRAPHRUN_PORT ?? 50051);
  check(Number.isInteger(port) && port > 0, `a port number, got ${process.argv[2]}`);
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` });
  const runs = createClient(RunService, transport);
  const spec: MessageInitShape<typeof RunSpecSchema> = {
    assistantId: "agent",
    input: { messages: [{ role: "user", content: QUESTION }] },
  };

  // Wait: the whole conversation, ending with the answer.
  let runIdHeader: string | null = null;
  const waited = await runs.wait({ spec }, {
    timeoutMs: TIMEOUT_MS,
    onHeader: (headers) => { runIdHeader = headers.get("graphrun-run-id"); },
  });
  const run = waited.run;
  check(run, "Wait returned a run");
  check(run.status === RunStatus.SUCCESS, `Wait run status SUCCESS, got ${RunStatus[run.status]}`);
  check(runIdHeader === run.runId, "graphrun-run-id header names the run");
  const messages = (waited.state?.values?.messages ?? []) as unknown[];
  check(Array.isArray(messages) && messages.length > 0, "Wait state has messages");
  const answer = contentOf(messages[messages.length - 1]);
  check(answer.includes(EXPECTED), `last message contains "${EXPECTED}": ${answer}`);

  // Stream: metadata first, end last, numbered 1..n.
  const events: RunEvent[] = [];
  for await (const response of runs.stream({ spec, streamMode: ["messages"] }, { timeoutMs: TIMEOUT_MS })) {
    check(response.event, "each response carries an event");
    events.push(response.event);
  }
  check(events.length >= 2, `at least a metadata and an end event, got ${events.length}`);
  const first = events[0].attributes;
  const last = events[events.length - 1].attributes;
  check(first.case === "metadata", `first event is metadata, got ${first.case}`);
  check(last.case === "end", `last event is end, got ${last.case}`);
  const endRun = last.value.run;
  check(endRun?.status === RunStatus.SUCCESS, `end status SUCCESS, got ${endRun && RunStatus[endRun.status]}`);
  check(endRun.runId === first.value.runId, "end event's run is the metadata event's run");
  const sequences = events.map((e) => Number(e.sequence));
  const sequencesOk = sequences.every((s, i) => s === i + 1);
  check(sequencesOk, `sequences are 1..${events.length}: ${sequences.join(",")}`);
  const counts: Record<string, number> = {};
  for (const e of events) counts[e.attributes.case ?? "unset"] = (counts[e.attributes.case ?? "unset"] ?? 0) + 1;
  check((counts.message ?? 0) > 0, "stream mode messages produced message events");
  // The answer arrives as token deltas, then once complete; the deltas add up to it.
  const messageEvents: MessageEvent[] = events.flatMap((e) => (e.attributes.case === "message" ? [e.attributes.value] : []));
  const complete = messageEvents.find((m) => !m.delta && m.message?.role === "ai" && contentOf(m.message).includes(EXPECTED));
  check(complete, `a complete streamed ai message contains "${EXPECTED}"`);
  const deltas = messageEvents.filter((m) => m.delta && m.messageId === complete.messageId);
  check(deltas.length > 0, "the answer was streamed as token deltas");
  check(deltas.map((m) => contentOf(m.message)).join("") === contentOf(complete.message),
    "the answer's deltas add up to the complete message");

  console.log(JSON.stringify({
    ok: true,
    wait: {
      run_id: run.runId,
      thread_id: run.threadId,
      status: RunStatus[run.status],
      messages: messages.length,
      answer_contains_expected: true,
    },
    stream: {
      run_id: endRun.runId,
      events: events.length,
      first: first.case,
      last: last.case,
      status: RunStatus[endRun.status],
      sequences_ok: sequencesOk,
      counts,
      answer_deltas: deltas.length,
    },
  }));
}

main().catch((err: unknown) => {
  const detail = err instanceof ConnectError ? `${Code[err.code]}: ${err.rawMessage}` : String(err);
  console.error(`smoke failed: ${detail}`);
  console.log(JSON.stringify({ ok: false, error: detail }));
  process.exit(1);
});
