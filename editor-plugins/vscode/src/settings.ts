// The extension's settings, read from VS Code's configuration. Only the fields the server knows
// (lsp_server/settings.py) are sent to it: it warns about any other name.
import * as vscode from "vscode";
import type { DocumentSelector } from "vscode-languageclient/node";

export const SECTION = "nexttoken";

export interface ServerSettings {
  enabled: boolean;
  modelDir: string;
  maxNewTokens: number;
  debounceMs: number;
  candidates: number;
}

export interface ExtensionSettings {
  server: ServerSettings;
  command: string[];
  languages: string[];
}

export function readSettings(): ExtensionSettings {
  const config = vscode.workspace.getConfiguration(SECTION);
  const command = config.get<string[]>("serverCommand", ["nexttoken", "serve"]);
  return {
    server: {
      enabled: config.get<boolean>("enabled", true),
      modelDir: config.get<string>("modelDir", ""),
      maxNewTokens: config.get<number>("maxNewTokens", 64),
      debounceMs: config.get<number>("debounceMs", 0),
      candidates: config.get<number>("candidates", 3),
    },
    command: command.length > 0 ? command : ["nexttoken", "serve"],
    languages: config.get<string[]>("languages", ["*"]),
  };
}

export function documentSelector(languages: string[]): DocumentSelector {
  const schemes = ["file", "untitled"];
  if (languages.length === 0 || languages.includes("*")) {
    return schemes.map((scheme) => ({ scheme }));
  }
  return languages.flatMap((language) => schemes.map((scheme) => ({ scheme, language })));
}

export async function setEnabled(enabled: boolean): Promise<void> {
  await vscode.workspace
    .getConfiguration(SECTION)
    .update("enabled", enabled, vscode.ConfigurationTarget.Global);
}
