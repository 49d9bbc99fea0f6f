// nexttoken for VS Code: starts `nexttoken serve` (or the configured command) as a language
// server over stdio and lets vscode-languageclient turn its textDocument/inlineCompletion
// answers into ghost text. Around that: a status bar item, commands, settings sent to the
// server, and reports of shown and accepted suggestions for the local statistics.
import * as vscode from "vscode";
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
} from "vscode-languageclient/node";

import { AcceptanceReporter } from "./acceptance";
import { ProgressTracker } from "./progress";
import { ExtensionSettings, SECTION, documentSelector, readSettings, setEnabled } from "./settings";
import { StatusItem } from "./status";

const STATS_REQUEST = "nexttoken/stats";

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("nexttoken", { log: true });
  const status = new StatusItem("nexttoken.toggle");
  const reporter = new AcceptanceReporter(() => client);
  context.subscriptions.push(output, status, reporter);

  let settings = readSettings();
  status.setEnabled(settings.server.enabled);

  const start = async (): Promise<void> => {
    status.starting();
    client = createClient(settings, output, status, reporter, () => settings.server.enabled);
    // Before start: the server asks for a progress token as soon as it is initialized.
    const tracker = followProgress(client, status);
    try {
      await client.start();
    } catch (error) {
      status.failed(`could not start ${settings.command.join(" ")}: ${String(error)}`);
      output.error(`could not start the server: ${String(error)}`);
      return;
    }
    if (client.state === State.Running) {
      status.show(tracker.current());
    }
  };

  context.subscriptions.push(
    vscode.commands.registerCommand("nexttoken.toggle", async () => {
      await setEnabled(!readSettings().server.enabled);
    }),
    vscode.commands.registerCommand("nexttoken.showLog", () => output.show()),
    vscode.commands.registerCommand("nexttoken.showStats", () => showStats(output)),
    vscode.commands.registerCommand("nexttoken.restart", async () => {
      await client?.stop();
      await start();
    }),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration(SECTION)) {
        return;
      }
      const previous = settings;
      settings = readSettings();
      status.setEnabled(settings.server.enabled);
      const restart =
        previous.command.join("\0") !== settings.command.join("\0") ||
        previous.languages.join("\0") !== settings.languages.join("\0");
      if (restart) {
        await client?.stop();
        await start();
      } else {
        await client?.sendNotification("workspace/didChangeConfiguration", {
          settings: { [SECTION]: settings.server },
        });
      }
    }),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}

function createClient(
  settings: ExtensionSettings,
  output: vscode.LogOutputChannel,
  status: StatusItem,
  reporter: AcceptanceReporter,
  enabled: () => boolean,
): LanguageClient {
  const [command, ...args] = settings.command;
  // Plain stdio: a `transport` option would append --stdio to the command line.
  const serverOptions: ServerOptions = { command: command ?? "nexttoken", args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: documentSelector(settings.languages),
    initializationOptions: { [SECTION]: settings.server },
    outputChannel: output,
    middleware: {
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        if (!enabled()) {
          return undefined;
        }
        const started = Date.now();
        const result = await next(document, position, context, token);
        const items = Array.isArray(result) ? result : (result?.items ?? []);
        const [first] = items;
        if (!token.isCancellationRequested && first !== undefined) {
          status.latency(Date.now() - started);
          reporter.itemShown(document, first);
        }
        return result;
      },
    },
  };
  const languageClient = new LanguageClient("nexttoken", "nexttoken", serverOptions, clientOptions);
  languageClient.onDidChangeState((event) => {
    if (event.newState === State.Stopped) {
      status.failed("the server stopped; run 'nexttoken: Restart the server'");
    }
  });
  return languageClient;
}

// Model loading and indexing are reported with work-done progress; the status bar shows them
// instead of a notification.
function followProgress(languageClient: LanguageClient, status: StatusItem): ProgressTracker {
  const tracker = new ProgressTracker();
  languageClient.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
    const subscription = languageClient.onProgress(WorkDoneProgress.type, token, (value) => {
      if (value.kind === "begin") {
        status.show(tracker.begin(token, value.title));
      } else if (value.kind === "end") {
        subscription.dispose();
        status.show(tracker.end(token, value.message));
      }
    });
  });
  return tracker;
}

async function showStats(output: vscode.LogOutputChannel): Promise<void> {
  if (client === undefined || client.state !== State.Running) {
    void vscode.window.showWarningMessage("nexttoken: the server is not running.");
    return;
  }
  try {
    const stats = await client.sendRequest(STATS_REQUEST, {});
    const document = await vscode.workspace.openTextDocument({
      language: "json",
      content: JSON.stringify(stats, null, 2),
    });
    await vscode.window.showTextDocument(document, { preview: true });
  } catch (error) {
    output.error(`nexttoken/stats failed: ${String(error)}`);
  }
}
