// The status bar item: what the server is doing (starting, loading the model, indexing), the
// latency of the last suggestion when it is ready, or that suggestions are off. A click toggles.
import * as vscode from "vscode";

import type { Shown } from "./progress";

type State =
  | { kind: "starting" }
  | { kind: "busy"; what: string }
  | { kind: "ready" }
  | { kind: "failed"; why: string };

export class StatusItem implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private state: State = { kind: "starting" };
  private enabled = true;
  private latencyMs: number | undefined;

  constructor(toggleCommand: string) {
    this.item = vscode.window.createStatusBarItem("nexttoken.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "nexttoken";
    this.item.command = toggleCommand;
    this.render();
    this.item.show();
  }

  starting(): void {
    this.set({ kind: "starting" });
  }

  failed(why: string): void {
    this.set({ kind: "failed", why });
  }

  show(shown: Shown): void {
    this.set(shown);
  }

  setEnabled(enabled: boolean): void {
    this.enabled = enabled;
    this.render();
  }

  latency(ms: number): void {
    this.latencyMs = ms;
    this.render();
  }

  dispose(): void {
    this.item.dispose();
  }

  private set(state: State): void {
    this.state = state;
    this.render();
  }

  private render(): void {
    const [text, label, tooltip] = this.describe();
    this.item.text = text;
    this.item.tooltip = `${tooltip}\nClick to turn suggestions ${this.enabled ? "off" : "on"}.`;
    this.item.accessibilityInformation = { label };
  }

  private describe(): [string, string, string] {
    switch (this.state.kind) {
      case "starting":
        return ["$(sync~spin) nexttoken", "nexttoken starting", "nexttoken: starting the server"];
      case "busy":
        return [`$(sync~spin) nexttoken: ${this.state.what}`, `nexttoken ${this.state.what}`, `nexttoken: ${this.state.what}`];
      case "failed":
        return ["$(error) nexttoken", "nexttoken failed", `nexttoken: ${this.state.why}`];
      case "ready":
        if (!this.enabled) {
          return ["$(circle-slash) nexttoken", "nexttoken off", "nexttoken: suggestions are off"];
        }
        if (this.latencyMs === undefined) {
          return ["$(zap) nexttoken", "nexttoken ready", "nexttoken: ready"];
        }
        return [
          `$(zap) nexttoken ${Math.round(this.latencyMs)} ms`,
          "nexttoken ready",
          `nexttoken: ready; the last suggestion took ${Math.round(this.latencyMs)} ms`,
        ];
    }
  }
}
