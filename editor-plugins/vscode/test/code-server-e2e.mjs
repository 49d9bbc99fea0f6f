// Drives VS Code (code-server) in Debian's Chromium with playwright-core, as a person would:
// open a file, wait until the nexttoken language client is ready, type, wait for Monaco's
// ghost text, take a screenshot, press Tab and save. Run by tests/editors/test_vscode.py,
// which starts code-server and checks the saved file; this script prints one JSON line of what
// it saw and exits non-zero with the reason when a step times out.
//
//   node code-server-e2e.mjs '{"url": ..., "file": "main.py", "type": "total = fibo",
//                              "screenshot": "/tmp/shot.png", "profile": "/tmp/chromium"}'
import { chromium } from "playwright-core";

const options = JSON.parse(process.argv[2] ?? "{}");
const timeout = options.timeoutMs ?? 240_000;
const step = (name) => process.stderr.write(`code-server-e2e: ${name}\n`);

const context = await chromium.launchPersistentContext(options.profile, {
  executablePath: options.chromium ?? "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1100, height: 560 },
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(timeout);
  step(`opening ${options.url}`);
  await page.goto(options.url);
  await page.locator(".monaco-workbench").waitFor();

  step(`opening ${options.file}`);
  await page.locator(".monaco-workbench").click({ position: { x: 600, y: 300 } });
  await page.keyboard.press("Control+P");
  const quickOpen = page.locator(".quick-input-widget input");
  await quickOpen.waitFor();
  await quickOpen.fill(options.file);
  await page.locator(".quick-input-list .monaco-list-row").first().waitFor();
  await page.keyboard.press("Enter");
  const editor = page.locator(".editor-instance .monaco-editor").first();
  await editor.waitFor();

  step("waiting for the language client");
  const ready = page.locator('[aria-label="nexttoken ready"]').first();
  const failed = page.locator('[aria-label="nexttoken failed"]').first();
  await Promise.race([ready.waitFor(), failed.waitFor()]);
  if (await failed.isVisible()) {
    throw new Error(`the extension failed: ${await failed.getAttribute("title")}`);
  }

  step(`typing ${JSON.stringify(options.type)}`);
  await editor.locator(".view-lines").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type(options.type, { delay: 40 });

  step("waiting for ghost text");
  const ghost = page.locator(".ghost-text-decoration, .ghost-text-decoration-preview").first();
  await ghost.waitFor();
  const ghostText = await page
    .locator(".ghost-text-decoration, .ghost-text-decoration-preview")
    .allTextContents();
  if (options.screenshot) {
    await page.screenshot({ path: options.screenshot });
  }

  step("accepting with Tab and saving");
  await page.keyboard.press("Tab");
  await ghost.waitFor({ state: "detached" });
  await page.keyboard.press("Control+S");
  await page.locator(".tab.active.dirty").waitFor({ state: "detached" });
  process.stdout.write(JSON.stringify({ ghostText: ghostText.join("") }) + "\n");
} catch (error) {
  process.stderr.write(`code-server-e2e: failed: ${error}\n`);
  process.exitCode = 1;
} finally {
  await context.close();
}
