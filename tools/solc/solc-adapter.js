#!/usr/bin/env node
// A native-solc stand-in built on solc-js, for py-solc-x and brownie.
//
// py-solc-x finds compilers as files named `solc-v<X.Y.Z>` and runs them in two
// ways only: `--version` (it parses `Version: X.Y.Z+...` from stdout) and
// `--standard-json` (compiler input JSON on stdin, output JSON on stdout).
// Imports are read from disk relative to the working directory, the
// `--base-path`, and any `--include-path` or `--allow-paths` given.
"use strict";

const fs = require("fs");
const path = require("path");

function loadSolc() {
  // The project's own pinned solc-js (node_modules next to tools/).
  const projectRoot = path.resolve(__dirname, "..", "..");
  return require(require.resolve("solc", { paths: [projectRoot] }));
}

function optionValues(argv, name) {
  const values = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === name && i + 1 < argv.length) {
      values.push(...argv[i + 1].split(","));
      i++;
    } else if (arg.startsWith(name + "=")) {
      values.push(...arg.slice(name.length + 1).split(","));
    }
  }
  return values.filter((v) => v.length > 0);
}

function makeImportCallback(roots) {
  return function findImports(importPath) {
    const candidates = path.isAbsolute(importPath)
      ? [importPath]
      : roots.map((root) => path.resolve(root, importPath));
    for (const candidate of candidates) {
      try {
        return { contents: fs.readFileSync(candidate, "utf8") };
      } catch (err) {
        // try the next root
      }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(", ")})` };
  };
}

function readStdin() {
  return fs.readFileSync(0, "utf8");
}

function main(argv) {
  const solc = loadSolc();
  if (argv.includes("--version")) {
    process.stdout.write("solc, the solidity compiler commandline interface (solc-js)\n");
    process.stdout.write(`Version: ${solc.version()}\n`);
    return 0;
  }
  if (argv.includes("--standard-json")) {
    const roots = [process.cwd()]
      .concat(optionValues(argv, "--base-path"))
      .concat(optionValues(argv, "--include-path"))
      .concat(optionValues(argv, "--allow-paths"));
    const input = readStdin();
    try {
      JSON.parse(input);
    } catch (err) {
      const output = {
        errors: [
          {
            component: "general",
            formattedMessage: `Invalid compiler input JSON: ${err.message}`,
            message: `Invalid compiler input JSON: ${err.message}`,
            severity: "error",
            type: "JSONError",
          },
        ],
      };
      process.stdout.write(JSON.stringify(output) + "\n");
      return 0;
    }
    const output = solc.compile(input, { import: makeImportCallback(roots) });
    process.stdout.write(output + "\n");
    return 0;
  }
  process.stderr.write(
    "solc-adapter: only --version and --standard-json are supported (solc-js behind py-solc-x)\n"
  );
  return 1;
}

process.exitCode = main(process.argv.slice(2));
