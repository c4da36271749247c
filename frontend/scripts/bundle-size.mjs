// Prints the gzip size of the JavaScript a first visit loads: the scripts the built
// index.html references plus the route's page module, each with its static imports
// (transitively). Reports every route and the heaviest one, which is the budgeted figure.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(process.argv[2] ?? join(here, '../../obt/static'));
const manifestPath = join(here, '../.svelte-kit/output/client/.vite/manifest.json');
const indexPath = join(root, 'index.html');
if (!existsSync(indexPath)) {
  console.error(`no build at ${root}: run \`pnpm build\` first`);
  process.exit(1);
}

const gzipped = new Map();
const sizeOf = (file) => {
  if (!gzipped.has(file)) gzipped.set(file, gzipSync(readFileSync(file), { level: 9 }).length);
  return gzipped.get(file);
};
const toFile = (ref, fromFile) => (ref.startsWith('/') ? join(root, ref) : resolve(dirname(fromFile), ref));

/** A module and everything it imports statically (`import ... from "x.js"`, `import "x.js"`). */
function closure(files) {
  const seen = new Set();
  const queue = [...files];
  while (queue.length) {
    const file = queue.shift();
    if (seen.has(file) || !existsSync(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(
      /(?:^|[;\s}])(?:import|export)\s*(?:[\w*{}\s,$]+from\s*)?["']([^"']+\.js)["']/g
    )) {
      queue.push(toFile(m[1], file));
    }
  }
  return seen;
}

const html = readFileSync(indexPath, 'utf8');
const entries = new Set();
for (const m of html.matchAll(/(?:src|href)="([^"]+\.js)"/g)) entries.add(toFile(m[1], indexPath));
for (const m of html.matchAll(/import\(\s*["']([^"']+\.js)["']\s*\)/g)) entries.add(toFile(m[1], indexPath));
const shell = closure(entries);

// Name each page node after its route source, when the Vite manifest is there.
const names = new Map();
if (existsSync(manifestPath)) {
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  for (const [source, chunk] of Object.entries(manifest)) {
    if (!chunk.file?.includes('nodes/')) continue;
    // Generated node modules re-export a route component: name the node after that route.
    let name = source;
    const generated = join(here, '..', source);
    if (existsSync(generated)) {
      const route = readFileSync(generated, 'utf8').match(
        /src\/routes(\/.*?)?\/\+(page|layout|error)\.svelte/
      );
      if (route) name = `${route[1] ?? '/'} (${route[2]})`;
    }
    names.set(join(root, chunk.file), name);
  }
}

const total = (files) => [...files].reduce((sum, file) => sum + sizeOf(file), 0);
const kb = (bytes) => `${(bytes / 1024).toFixed(1).padStart(7)} KB`;

console.log('Shell (index.html and its static imports):');
for (const file of [...shell].sort((a, b) => sizeOf(b) - sizeOf(a)))
  console.log(`  ${kb(sizeOf(file))}  ${relative(root, file)}`);
console.log(`  ${kb(total(shell))}  shell total`);

const nodesDir = join(root, '_app/immutable/nodes');
let worst = { name: '(shell only)', bytes: total(shell) };
console.log('\nFirst load per page (shell + page module and its static imports):');
for (const node of readdirSync(nodesDir).map((f) => join(nodesDir, f))) {
  if (shell.has(node)) continue;
  const files = new Set([...shell, ...closure([node])]);
  const bytes = total(files);
  const name = names.get(node) ?? relative(root, node);
  console.log(`  ${kb(bytes)}  ${name}`);
  if (bytes > worst.bytes) worst = { name, bytes };
}
console.log(`\nFirst-load JS (gzip, heaviest page ${worst.name}): ${(worst.bytes / 1024).toFixed(1)} KB`);
