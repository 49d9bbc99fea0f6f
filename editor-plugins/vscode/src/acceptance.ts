// Reports to the server which suggestion was shown and how much of it was accepted in part,
// with Copilot's notifications (textDocument/didShowCompletion, didPartiallyAcceptCompletion).
// A whole accept needs nothing from here: VS Code runs the item's command, which the language
// client forwards to the server.
//
// VS Code's stable API tells an extension neither when an inline suggestion is displayed nor
// when part of it is accepted, so both are inferred: a suggestion handed to VS Code for a
// request that was not cancelled counts as shown, and an edit that inserts the next piece of
// the shown suggestion at its position, longer than one typed character, as a partial accept
// (Accept Word, Accept Line).
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";

const DID_SHOW = "textDocument/didShowCompletion";
const DID_PARTIALLY_ACCEPT = "textDocument/didPartiallyAcceptCompletion";

interface ShownItem {
  uri: string;
  start: vscode.Position;
  text: string;
  payload: { insertText: string; command: { title: string; command: string; arguments: unknown[] } };
  accepted: number; // characters of `text` accepted so far
}

export class AcceptanceReporter implements vscode.Disposable {
  private shown: ShownItem | undefined;
  private readonly subscription: vscode.Disposable;

  constructor(private readonly client: () => LanguageClient | undefined) {
    this.subscription = vscode.workspace.onDidChangeTextDocument((event) => this.onChange(event));
  }

  itemShown(document: vscode.TextDocument, item: vscode.InlineCompletionItem): void {
    const command = item.command;
    if (command === undefined || typeof item.insertText !== "string") {
      return;
    }
    const start = item.range?.start;
    if (start === undefined) {
      return;
    }
    this.shown = {
      uri: document.uri.toString(),
      start,
      text: item.insertText,
      payload: {
        insertText: item.insertText,
        command: { title: command.title, command: command.command, arguments: command.arguments ?? [] },
      },
      accepted: 0,
    };
    void this.client()?.sendNotification(DID_SHOW, { item: this.shown.payload });
  }

  dispose(): void {
    this.subscription.dispose();
  }

  private onChange(event: vscode.TextDocumentChangeEvent): void {
    const shown = this.shown;
    if (shown === undefined || event.document.uri.toString() !== shown.uri) {
      return;
    }
    const [change] = event.contentChanges;
    if (event.contentChanges.length !== 1 || change === undefined || change.rangeLength !== 0) {
      return;
    }
    const expected = positionAfter(shown.start, shown.text.slice(0, shown.accepted));
    const rest = shown.text.slice(shown.accepted);
    if (!change.range.start.isEqual(expected) || !rest.startsWith(change.text)) {
      return;
    }
    if (change.text.length > 1 && change.text.length < rest.length) {
      shown.accepted += change.text.length;
      void this.client()?.sendNotification(DID_PARTIALLY_ACCEPT, {
        item: shown.payload,
        acceptedLength: shown.accepted,
      });
    } else if (change.text.length === rest.length) {
      this.shown = undefined; // accepted whole: its command reports that
    }
  }
}

function positionAfter(start: vscode.Position, text: string): vscode.Position {
  const lines = text.split("\n");
  const last = lines[lines.length - 1] ?? "";
  return lines.length === 1 ? start.translate(0, last.length) : new vscode.Position(start.line + lines.length - 1, last.length);
}
