import type { GrantedTopic } from "../model/kafkaTopics";
/** The gateway's REST API, same origin, with the signed-in user's bearer token. */
import type { ConditionPreset } from "../model/conditions";
import type {
  Definition,
  NodeType,
  Problem,
  Run,
  RunSummary,
  Version,
  Workflow,
  WorkflowSummary,
  JsonObject,
} from "../model/types";
import type { DeadLetter, DeadLetterSummary } from "../model/deadLetters";
import type { BulkCount, BulkOutcome } from "../model/bulk";
import type { NodeTestResult, Pin } from "../model/nodeTests";
import type {
  Notification,
  NotificationSettings,
  NotificationSettingsBody,
  NotificationSummary,
} from "../model/notifications";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Problem[] = [],
  ) {
    super(message);
  }
}

export interface Session {
  token: string;
  tenantId: string;
  email: string;
  expiresAt: number;
}

const SESSION_KEY = "millrace.session";

export function loadSession(): Session | null {
  try {
    const raw = localStorage.getItem(SESSION_KEY);
    if (!raw) return null;
    const session = JSON.parse(raw) as Session;
    return session.expiresAt > Date.now() ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(session: Session | null): void {
  if (session) localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else localStorage.removeItem(SESSION_KEY);
}

export async function signIn(tenantId: string, email: string, password: string): Promise<Session> {
  const body = await request<{ access_token: string; expires_in: number }>(null, "POST", "/api/v1/auth/token", {
    tenant_id: tenantId,
    email,
    password,
  });
  return { token: body.access_token, tenantId, email, expiresAt: Date.now() + body.expires_in * 1000 };
}

let onUnauthenticated: () => void = () => {};
export function setUnauthenticatedHandler(handler: () => void): void {
  onUnauthenticated = handler;
}

async function request<T>(token: string | null, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    // RFC 9457 problem details: `detail` for people, `code` and `errors` (JSON pointers) for us.
    const problem = (parsed ?? {}) as {
      code?: string;
      detail?: string;
      errors?: { pointer: string; detail: string }[];
    };
    if (response.status === 401 && token) onUnauthenticated();
    throw new ApiError(
      response.status,
      problem.code ?? `http_${response.status}`,
      problem.detail ?? (text || response.statusText),
      Array.isArray(problem.errors) ? problem.errors.map((e) => ({ pointer: e.pointer, message: e.detail })) : [],
    );
  }
  return parsed as T;
}

export function api(token: string) {
  const call = <T>(method: string, path: string, body?: unknown) => request<T>(token, method, `/api/v1${path}`, body);
  return {
    /** Any operation of the API, for the console's pages (paths below /api/v1). */
    get: <T>(path: string) => call<T>("GET", path),
    post: <T>(path: string, body?: unknown) => call<T>("POST", path, body),
    put: <T>(path: string, body?: unknown) => call<T>("PUT", path, body),
    patch: <T>(path: string, body?: unknown) => call<T>("PATCH", path, body),
    del: (path: string) => call<null>("DELETE", path),
    me: () => call<{ roles: string[]; permissions: string[] }>("GET", "/me"),
    nodeTypes: () => call<NodeType[]>("GET", "/node-types"),
    conditionPresets: () => call<ConditionPreset[]>("GET", "/condition-presets"),
    kafkaTopics: () => call<{ items: GrantedTopic[] }>("GET", "/kafka/topics"),
    sampleRecords: (pipelineId: string) =>
      call<{ items: { data: JsonObject }[] }>("GET", `/pipelines/${encodeURIComponent(pipelineId)}/records?limit=20`),
    listWorkflows: (query = "") =>
      call<{ items: WorkflowSummary[]; next_offset: number | null }>("GET", `/workflows${query}`),
    getWorkflow: (id: string) => call<Workflow>("GET", `/workflows/${id}`),
    createWorkflow: (name: string, definition: Definition, description = "") =>
      call<Workflow>("POST", "/workflows", { name, description, definition }),
    updateWorkflow: (id: string, name: string, definition: Definition, description?: string) =>
      call<Workflow>("PUT", `/workflows/${id}`, { name, description, definition }),
    validate: (definition: Definition) =>
      call<{ valid: boolean; problems: Problem[] }>("POST", "/workflows/validate", { definition }),
    duplicate: (id: string) => call<Workflow>("POST", `/workflows/${id}/duplicate`),
    archive: (id: string) => call<Workflow>("POST", `/workflows/${id}/archive`),
    activate: (id: string, version?: number) =>
      call<Workflow>("POST", `/workflows/${id}/activate`, version ? { version } : {}),
    pause: (id: string) => call<Workflow>("POST", `/workflows/${id}/pause`),
    versions: (id: string) => call<Version[]>("GET", `/workflows/${id}/versions`),
    version: (id: string, version: number) => call<Version>("GET", `/workflows/${id}/versions/${version}`),
    webhook: (id: string) => call<{ url: string; method: string }>("GET", `/workflows/${id}/webhook`),
    startRun: (id: string, input: JsonObject, version?: number) =>
      call<{ run_id: string; workflow_version: number }>(
        "POST",
        `/workflows/${id}/runs`,
        version ? { input, version } : { input },
      ),
    listRuns: (workflowId: string, status?: string, offset = 0) =>
      call<{ items: RunSummary[]; next_offset: number | null }>(
        "GET",
        `/runs?workflow_id=${workflowId}&limit=50&offset=${offset}${status ? `&status=${status}` : ""}`,
      ),
    getRun: (id: string) => call<Run>("GET", `/runs/${id}`),
    cancelRun: (id: string) => call<{ accepted: string }>("POST", `/runs/${id}/cancel`),
    retryRun: (id: string) => call<{ accepted: string }>("POST", `/runs/${id}/retry`),
    rerunRun: (id: string, input?: JsonObject) =>
      call<{ run_id: string; workflow_version: number; rerun_of: string }>(
        "POST",
        `/runs/${id}/rerun`,
        input === undefined ? {} : { input },
      ),
    bulkRuns: (body: Record<string, unknown>) =>
      call<BulkCount | { results: BulkOutcome[] }>("POST", "/runs/bulk", body),
    continueRun: (id: string, action: "retry" | "skip") =>
      call<{ accepted: string }>("POST", `/runs/${id}/continue`, { action }),
    listDeadLetters: (query: string) =>
      call<{ items: DeadLetterSummary[]; next_offset: number | null }>("GET", `/dead-letters${query}`),
    getDeadLetter: (id: number) => call<DeadLetter>("GET", `/dead-letters/${id}`),
    replayDeadLetter: (id: number) => call<DeadLetter>("POST", `/dead-letters/${id}/replay`),
    discardDeadLetter: (id: number) => call<DeadLetter>("POST", `/dead-letters/${id}/discard`),
    testNode: (
      id: string,
      nodeId: string,
      body: { definition?: Definition; execute_side_effects?: boolean; input?: JsonObject },
    ) => call<NodeTestResult>("POST", `/workflows/${id}/nodes/${encodeURIComponent(nodeId)}/test`, body),
    pins: (id: string) => call<Pin[]>("GET", `/workflows/${id}/pins`),
    pin: (id: string, nodeId: string, output: JsonObject) =>
      call<Pin>("PUT", `/workflows/${id}/nodes/${encodeURIComponent(nodeId)}/pin`, { output }),
    unpin: (id: string, nodeId: string) =>
      call<null>("DELETE", `/workflows/${id}/nodes/${encodeURIComponent(nodeId)}/pin`),
    listNotifications: (query: string) =>
      call<{ items: NotificationSummary[]; next_cursor: string | null }>("GET", `/notifications${query}`),
    getNotification: (id: string) => call<Notification>("GET", `/notifications/${id}`),
    retryNotification: (id: string) => call<Notification>("POST", `/notifications/${id}/retry`),
    notificationSettings: () => call<NotificationSettings>("GET", "/settings/notifications"),
    saveNotificationSettings: (body: NotificationSettingsBody) =>
      call<NotificationSettings>("PUT", "/settings/notifications", body),
  };
}

export type Api = ReturnType<typeof api>;
