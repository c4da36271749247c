// Starts the end-to-end stack (`python -m tests.e2e.stack` from the repo root), waits for the
// JSON line it prints ({base_url, ollama_control_url, agent_pid, ...}), saves it for the specs
// and returns the teardown that stops the stack.
// OBT_E2E_STACK_CMD replaces the command; OBT_E2E_BASE_URL (+ OBT_E2E_OLLAMA_CONTROL_URL,
// OBT_E2E_AGENT_PID) points at a stack that is already running instead.
import { spawn } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stackFile, type StackInfo } from './stack';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const START_TIMEOUT_MS = 120_000;

function fromEnvironment(): StackInfo | null {
  const base = process.env.OBT_E2E_BASE_URL;
  if (!base) return null;
  return {
    base_url: base,
    ollama_control_url: process.env.OBT_E2E_OLLAMA_CONTROL_URL ?? '',
    agent_pid: Number(process.env.OBT_E2E_AGENT_PID ?? 0) || null
  };
}

function stackCommand(): { command: string; args: string[] } {
  const custom = process.env.OBT_E2E_STACK_CMD;
  if (custom) return { command: 'sh', args: ['-c', custom] };
  if (!existsSync(join(repoRoot, 'tests/e2e/stack.py'))) {
    throw new Error(
      "tests/e2e/stack.py does not exist yet: the E2E specs need the server team's stack script " +
        '(`python -m tests.e2e.stack`), or set OBT_E2E_BASE_URL / OBT_E2E_STACK_CMD.'
    );
  }
  const venv = join(repoRoot, '.venv/bin/python');
  return { command: existsSync(venv) ? venv : 'python3', args: ['-m', 'tests.e2e.stack'] };
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  // This run's own file: engineers sharing a tree may run the suite at the same time.
  process.env.OBT_E2E_STACK_FILE ??= join(tmpdir(), `obt-e2e-stack-${process.pid}.json`);
  const file = stackFile();
  const preset = fromEnvironment();
  if (preset) {
    writeFileSync(file, JSON.stringify(preset));
    return async () => rmSync(file, { force: true });
  }
  if (!existsSync(join(repoRoot, 'obt/static/index.html'))) {
    throw new Error('The dashboard is not built: run `pnpm build` (or `make dashboard`) first.');
  }

  const { command, args } = stackCommand();
  // Its own process group, so teardown stops the stack and everything it started.
  const child = spawn(command, args, { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });

  const info = await new Promise<StackInfo>((resolveInfo, reject) => {
    let buffer = '';
    const timer = setTimeout(
      () => reject(new Error(`the stack printed no JSON within ${START_TIMEOUT_MS / 1000} s\n${stderr}`)),
      START_TIMEOUT_MS
    );
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line.startsWith('{')) continue;
        try {
          const parsed = JSON.parse(line) as StackInfo;
          if (parsed.base_url) {
            clearTimeout(timer);
            resolveInfo(parsed);
          }
        } catch {
          // Not the JSON line; keep reading.
        }
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the stack exited (${code ?? signal}) before it was ready\n${stderr}`));
    });
  });
  writeFileSync(file, JSON.stringify(info));
  child.stdout.resume();

  return async () => {
    rmSync(file, { force: true });
    if (child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    process.kill(-child.pid, 'SIGTERM');
    const forced = setTimeout(() => {
      if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, 20_000);
    await exited;
    clearTimeout(forced);
  };
}
