// What the status bar shows while the server reports work-done progress. Several tasks can run
// at once (loading the model, indexing each workspace folder): the item stays busy until the
// last one ends. A failed model load stays shown over tasks that end after it, until the next
// load begins. No vscode import, so that it runs (and is tested) under plain Node.

export type Shown =
  | { kind: "busy"; what: string }
  | { kind: "ready" }
  | { kind: "failed"; why: string };

// The server's token for loading a model (lsp_server/server.py); its end says "ready" or "failed".
const MODEL_LOAD = "nexttoken/model-load/";

export class ProgressTracker {
  private readonly active = new Map<string, string>();
  private failure: string | undefined;

  begin(token: string | number, title: string): Shown {
    const key = String(token);
    if (key.startsWith(MODEL_LOAD)) {
      this.failure = undefined;
    }
    this.active.set(key, title.replace(/^nexttoken:\s*/, ""));
    return this.current();
  }

  end(token: string | number, message: string | undefined): Shown {
    const key = String(token);
    this.active.delete(key);
    if (key.startsWith(MODEL_LOAD) && message === "failed") {
      this.failure = "the model did not load; see the log";
    }
    return this.current();
  }

  current(): Shown {
    if (this.failure !== undefined) {
      return { kind: "failed", why: this.failure };
    }
    const running = [...this.active.values()];
    if (running.length > 0) {
      return { kind: "busy", what: running[running.length - 1] };
    }
    return { kind: "ready" };
  }
}
